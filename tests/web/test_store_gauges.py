"""The gauges ``GET /metrics`` reads from the store at scrape time (aiops.web.store_gauges), on a real
database; several workers and instances agreeing: tests/e2e/test_prometheus.py."""

from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from aiops.kinds import Channel, IncidentKind, Severity
from aiops.settings import settings_of
from telemetry.db import begin_write, db
from tests.conftest import dispose_app, make_app
from tests.support.factories import T0, add_incident, add_notification


@pytest.fixture
def app(db_url):
    app = make_app(db_url, PROPAGATE_EXCEPTIONS=False)  # production error handling: a 500 is a 500
    yield app
    dispose_app(app)


def scrape(client) -> dict:
    r = client.get("/metrics")
    assert r.status_code == 200, r.data
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.get_data(as_text=True))
        for s in family.samples
    }


def open_count(sample: dict, kind: str, severity: str) -> float:
    return sample[("aiops_incidents_open", (("kind", kind), ("severity", severity)))]


def test_an_empty_store_reads_as_zeros_and_no_cycle_yet(app, client):
    sample = scrape(client)
    assert all(open_count(sample, k, s) == 0 for k in IncidentKind for s in Severity)
    assert all(sample[("aiops_outbox_pending", (("channel", c),))] == 0 for c in Channel)
    assert not any(name == "aiops_outbox_oldest_pending_timestamp_seconds" for name, _ in sample)
    assert not any(name == "aiops_detection_last_cycle_timestamp_seconds" for name, _ in sample)
    assert sample[("aiops_detection_interval_seconds", ())] == settings_of(app).detection_interval
    for collector in ("incidents", "detection", "outbox"):
        assert ("aiops_scrape_errors_total", (("collector", collector),)) in sample


def test_a_cycle_that_opens_an_incident_shows_as_open_by_kind_and_severity(app, client):
    for _ in range(settings_of(app).min_baseline_samples + 5):
        client.post("/payment")
    before = time.time()
    assert client.post("/aiops/analyze").get_json()["incidents_opened"] == []
    client.post("/simulate/error?endpoint=payment&rate=1")
    for _ in range(10):
        assert client.post("/payment").status_code == 500
    [opened] = client.post("/aiops/analyze").get_json()["incidents_opened"]
    after = time.time()
    incident = client.get(f"/aiops/incidents/{opened}").get_json()
    assert (incident["report"]["kind"], incident["severity"]) == ("errors", "critical")

    sample = scrape(client)
    assert open_count(sample, "errors", "critical") == 1
    assert sum(v for (name, _), v in sample.items() if name == "aiops_incidents_open") == 1
    assert before <= sample[("aiops_detection_last_cycle_timestamp_seconds", ())] <= after

    assert client.post(f"/aiops/incidents/{opened}/acknowledge").status_code == 200
    assert open_count(scrape(client), "errors", "critical") == 1  # acknowledged is still active
    assert client.post(f"/aiops/incidents/{opened}/resolve").status_code == 200
    assert open_count(scrape(client), "errors", "critical") == 0


def test_resolved_incidents_are_not_open(app, client):
    add_incident(app, "INC-1", status="resolved", severity="critical")
    add_incident(app, "INC-2", status="open", severity="low")  # no anomalies: the report says unknown
    sample = scrape(client)
    assert open_count(sample, "unknown", "low") == 1
    assert sum(v for (name, _), v in sample.items() if name == "aiops_incidents_open") == 1


def test_the_outbox_backlog_by_channel_with_its_oldest_message(app, client):
    with app.app_context():
        add_incident()
        add_notification("webhook", at=T0 + 5)
        add_notification("webhook", at=T0, dedup_key="other")
        delivered = add_notification("slack", at=T0 - 100)
        begin_write()
        db.session.execute(text("UPDATE notifications SET status = 'delivered' WHERE id = :id"),
                           {"id": delivered})
        db.session.commit()
        add_notification("pagerduty", at=T0 + 50)
        db.session.remove()
    sample = scrape(client)
    pending = {c: sample[("aiops_outbox_pending", (("channel", c),))] for c in Channel}
    assert pending == {"webhook": 2, "slack": 0, "pagerduty": 1, "remediation": 0, "rule": 0}
    oldest = "aiops_outbox_oldest_pending_timestamp_seconds"
    assert sample[(oldest, (("channel", "webhook"),))] == T0
    assert sample[(oldest, (("channel", "pagerduty"),))] == T0 + 50
    assert (oldest, (("channel", "slack"),)) not in sample


def test_a_store_failure_at_scrape_time_leaves_those_gauges_out_and_counts_it(app, client):
    """The anomalies table is gone: the incident gauges fail; the others and the counters are served
    (on PostgreSQL the failed statement's transaction is rolled back first)."""
    with app.app_context():
        add_incident()
        add_notification("webhook")
        begin_write()
        db.session.execute(text("DROP TABLE anomalies"))
        db.session.commit()
        db.session.remove()
    before = scrape(client)
    after = scrape(client)
    assert not any(name == "aiops_incidents_open" for name, _ in after)
    assert after[("aiops_outbox_pending", (("channel", "webhook"),))] == 1
    assert ("aiops_detection_interval_seconds", ()) in after
    def errors(sample, collector):
        return sample[("aiops_scrape_errors_total", (("collector", collector),))]

    assert errors(after, "incidents") - errors(before, "incidents") == 1
    assert errors(after, "outbox") == errors(before, "outbox")
    assert ("aiops_spans_written_total", ()) in after


def test_every_collector_added_is_served(db_url):
    """Other packages add their own store reads the same way (telemetry.selfmetrics.add_collector)."""
    from prometheus_client.core import GaugeMetricFamily

    from telemetry import selfmetrics

    app = make_app(db_url)
    try:
        selfmetrics.add_collector(app, "extra", lambda: [GaugeMetricFamily("aiops_test_extra", "x", value=7)])
        assert scrape(app.test_client())[("aiops_test_extra", ())] == 7
    finally:
        dispose_app(app)
