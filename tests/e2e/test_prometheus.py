"""A real Prometheus scrapes the production layout (gunicorn with 2 web workers, one ``flask aiops
worker``, no metrics setting) during an open incident: the worker's figures and the store's gauges
reach it through the web server's ``/metrics``, and the shipped rules load and alert.

Issue 21 measured the layout before: Prometheus saw only the ingest counters.
"""

from __future__ import annotations

import pytest

from tests.e2e import helpers as h
from tests.support.prometheus import PrometheusServer, binary

pytestmark = pytest.mark.e2e


def test_prometheus_sees_the_workers_figures_and_the_store_gauges(tmp_path, db_url):
    binary("prometheus")  # skip (or fail in CI) before starting anything
    env = h.shop_env(db_url)
    with h.running(tmp_path, env, workers=2) as server:
        worker_pid = server.worker_processes[0].pid
        h.warm_up(server)  # two cycles, answered by the worker process
        h.inject(server, "error", endpoint="payment", rate=1)
        h.checkouts(server.url, 30, threads=4)
        summary = h.analyze(server)
        assert summary["incidents_opened"], summary
        incident = h.only_incident(server)
        assert incident["severity"] == "critical", incident

        target = server.url.removeprefix("http://")
        with PrometheusServer(tmp_path, [target]) as prometheus:
            # Three cycles ran, all in the worker process: counted there, served by the web's /metrics.
            h.wait_for(lambda: prometheus.query("aiops_detection_cycle_duration_seconds_count")
                       == {(("instance", target), ("job", "aiops")): 3.0},
                       "Prometheus to scrape the worker's cycle count", timeout=30)
            anomalies = prometheus.query('aiops_anomalies_total{type="error"}')
            assert list(anomalies.values()) and list(anomalies.values())[0] >= 1, anomalies
            opened = prometheus.query("sum(aiops_incidents_opened_total)")
            assert list(opened.values()) == [1.0], opened

            # The store gauges: the open incident under the kind its report gives, the last cycle,
            # the outbox.
            open_now = prometheus.query("aiops_incidents_open > 0")
            assert open_now == {(("instance", target), ("job", "aiops"), ("kind", incident["report"]["kind"]),
                                 ("severity", "critical")): 1.0}, open_now
            assert prometheus.query("time() - aiops_detection_last_cycle_timestamp_seconds < 600")
            assert prometheus.query("aiops_outbox_pending"), "no outbox gauge"
            assert prometheus.query('aiops_scrape_errors_total{collector="incidents"}') == {
                (("collector", "incidents"), ("instance", target), ("job", "aiops")): 0.0}

            # The shipped rules load, and the critical incident alert is on its way.
            groups = {g["name"] for g in prometheus.api("rules")["groups"]}
            assert {"aiops-self", "aiops-slo"} <= groups
            h.wait_for(lambda: any(a["labels"]["alertname"] == "AIOpsCriticalIncidentOpen"
                                   for a in prometheus.api("alerts")["alerts"]),
                       "the critical-incident alert", timeout=30)
            stalled = [a for a in prometheus.api("alerts")["alerts"]
                       if a["labels"]["alertname"] == "AIOpsDetectionStalled"]
            assert stalled == [], stalled
        assert server.worker_processes[0].pid == worker_pid  # one worker did it all
