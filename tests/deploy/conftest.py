"""What the shipped rules and dashboard may name: the sample names a real app's ``GET /metrics`` serves."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.factories import add_incident, add_notification


@pytest.fixture
def exported(app, client) -> set[str]:
    """Every sample name ``GET /metrics`` serves once a cycle ran, an SLO exists, something waits
    in the outbox and an exporter reported (the labelled families appear with their first sample:
    an incident opened, a message sent, an SLO judged; the export's once an exporter ran, which
    before this depended on whether an earlier test in the process had exported)."""
    from aiops import instruments
    from telemetry.export.metrics import Reporter
    from telemetry.export.policy import Figures

    assert client.get("/health").status_code == 200
    app.extensions["aiops_buffer"].flush()  # spans recorded, by service
    slo = {"name": "shop availability", "service": "shop", "sli": "availability", "objective": 99.9}
    assert client.post("/aiops/slos", json=slo).status_code == 201
    assert client.post("/aiops/analyze").status_code == 200
    instruments.cycle_finished(0.01, ["error"], [("error", "critical")])
    instruments.notification_attempted("webhook", "delivered")
    Reporter().report(Figures(exported=2, retried=1, dropped=1, breaker_trips=1, last_success=1.0,
                              last_failure=1.0, last_drop=1.0))
    with app.app_context():
        add_incident()
        add_notification("webhook")
    body = client.get("/metrics").get_data(as_text=True)
    return {s.name for family in text_string_to_metric_families(body) for s in family.samples}
