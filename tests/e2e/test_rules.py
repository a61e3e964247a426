"""Trace-query rules in the production layout: gunicorn serves the API, one ``flask aiops worker``
evaluates the rule and delivers its alert to a real webhook on loopback. The test waits for the
receiver, never for a fixed time."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e import helpers as h
from tests.support.receivers import Receiver

pytestmark = pytest.mark.e2e


def test_a_rule_fires_once_to_its_webhook(tmp_path):
    env = h.shop_env(h.sqlite_url(tmp_path), AIOPS_SCHEDULER="1", AIOPS_DETECTION_INTERVAL="3600",
                     AIOPS_RULES_INTERVAL="0.5", AIOPS_NOTIFY_POLL="0.2")
    with Receiver() as hook, h.running(tmp_path, env, workers=2) as server:
        body = {"name": "inventory errors", "kind": "error_status", "severity": "critical",  # no rate limit
                "query": '{ name = "inventory" && status = error }', "webhook_url": hook.url("/rule")}
        created = server.post("/aiops/rules", json=body)
        assert created.status_code == 201, created.text
        h.inject(server, "error", endpoint="inventory", rate=1.0)
        tally = h.checkouts(server.url, 3, 1)
        assert sum(tally.values()) == 3
        h.wait_for(lambda: hook.count >= 1, "the rule's alert at its webhook")
        got = hook.requests[0].json
        assert got["rule"] == "inventory errors" and got["anomaly_type"] == "error_status"
        assert got["span_name"] == "inventory" and got["error_message"]
        assert got["affected_traces"] >= 1 and got["total_traces"] >= got["affected_traces"]
        # An evaluation between two checkouts saw fewer failed traces (another alert). Once the
        # traffic stopped, later evaluations find the same failed traces: no new alert, no message.
        h.wait_for(lambda: server.get("/aiops/alerts").json()["alerts"][0]["seen"] >= 3,
                   "the last alert to be seen again")
        alerts = server.get("/aiops/alerts").json()["alerts"]
        assert 1 <= len(alerts) <= 3 and alerts[0]["affected_traces"] == 3
        h.wait_for(lambda: hook.count == len(alerts), "every alert at the webhook")
        assert len({r.json["dedup_key"] for r in hook.requests}) == len(alerts)  # each sent once
        h.wait_for(lambda: server.get("/aiops/alerts").json()["alerts"][0]["seen"] >= 5, "more evaluations")
        assert len(server.get("/aiops/alerts").json()["alerts"]) == len(alerts) and hook.count == len(alerts)
        text = server.get("/metrics").text
        counted = {s.labels["type"]: s.value for f in text_string_to_metric_families(text)
                   for s in f.samples if s.name == "trace_anomalies_total"}
        assert counted["error_status"] == len(alerts)
    log = (tmp_path / "server.log").read_text()
    assert "aiops-rules" in log  # the worker process runs the job; web workers schedule nothing
