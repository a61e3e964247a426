"""``GET /metrics`` shows every SLO's burn rates and budget, read from the store at scrape time."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from tests.support.factories import insert_spans, span


def _samples(client) -> dict:
    text = client.get("/metrics").get_data(as_text=True)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name.startswith("aiops_slo_")}


def test_slo_gauges_on_metrics(app, client):
    assert _samples(client) == {}
    now = time.time()
    insert_spans(app, [span("payment", start_time=now - 10 - i, status_code=500 if i < 2 else 200)
                       for i in range(100)])
    body = {"name": 'pay "avail"', "service": "shop", "endpoint": "payment", "sli": "availability",
            "objective": 99.0}
    assert client.post("/aiops/slos", json=body).status_code == 201
    samples = _samples(client)
    assert samples[("aiops_slo_burn_rate", (("slo", 'pay "avail"'), ("window", "5m")))] == 2.0
    assert {labels[1][1] for name, labels in samples if name == "aiops_slo_burn_rate"} == \
        {"5m", "30m", "1h", "6h", "3d"}
    assert samples[("aiops_slo_budget_remaining", (("slo", 'pay "avail"'),))] == -1.0
