"""``GET /metrics``: the product's own Prometheus metrics (multi-worker behaviour: tests/e2e).

All apps in one test process share that process's metric values (as the apps
of one gunicorn worker would), so every test compares before and after.
"""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aiops.settings import reconfigure, settings_of
from telemetry import selfmetrics
from telemetry.buffer import SpanBuffer
from tests.conftest import dispose_app, make_app
from tests.support.factories import (
    T0,
    add_incident,
    add_notification,
    good_logs_request,
    good_request,
    log_record,
    logs_request,
    make_request,
    make_span,
    notification,
)
from tests.support.otlp_http import PB, post
from tests.support.receivers import Receiver


@pytest.fixture
def app(db_url):
    # Production error handling: an injected fault is a 500 response, not a test crash.
    app = make_app(db_url, PROPAGATE_EXCEPTIONS=False)
    yield app
    dispose_app(app)


def scrape(client, **headers) -> dict:
    """``{(sample name, ((label, value), ...)): value}`` from the text format, parsed by the library."""
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.data
    assert r.mimetype == "text/plain"
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.get_data(as_text=True))
        for s in family.samples
    }


def delta(before: dict, after: dict, name: str, **labels) -> float:
    key = (name, tuple(sorted((k, str(v)) for k, v in labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_every_family_is_exported_and_parses(client):
    assert client.post("/aiops/analyze").status_code == 200  # detection's families: its process counts
    r = client.get("/metrics")
    assert r.status_code == 200 and r.mimetype == "text/plain"
    families = {f.name: f.type for f in text_string_to_metric_families(r.get_data(as_text=True))}
    expected = {
        "aiops_spans_recorded": "counter", "aiops_spans_written": "counter",
        "aiops_spans_dropped": "counter", "aiops_spans_pending": "gauge",
        "aiops_spans_ingested": "counter", "aiops_spans_rejected": "counter",
        "aiops_store_errors": "counter", "aiops_detection_cycle_duration_seconds": "histogram",
        "aiops_detection_cycle_failures": "counter", "aiops_anomalies": "counter",
        "aiops_incidents_opened": "counter", "aiops_notification_attempts": "counter",
        "aiops_incident_storm_groups": "counter", "aiops_logs_ingested": "counter",
        "aiops_logs_rejected": "counter", "aiops_log_batches": "counter",
        "aiops_scrape_errors": "counter",
        # read from the store at scrape time (aiops.web.store_gauges)
        "aiops_incidents_open": "gauge", "aiops_outbox_pending": "gauge",
        "aiops_outbox_oldest_pending_timestamp_seconds": "gauge",
        "aiops_detection_last_cycle_timestamp_seconds": "gauge", "aiops_detection_interval_seconds": "gauge",
        "aiops_silences_active": "gauge",  # read from the store at scrape time
        "trace_anomalies": "counter",  # the design's name; every rule kind, 0 until one alerts
    }
    # A labelled family appears with its first sample (incidents: once one is opened).
    labelled = {"aiops_spans_recorded", "aiops_incidents_opened", "aiops_notification_attempts",
                "aiops_outbox_oldest_pending_timestamp_seconds"}
    # The export's and the Tempo source's families appear once one of them ran in this process (an
    # earlier test of the same run: the whole suite runs in one process); their own tests check them.
    on_use = {name for name in families if name.startswith(("aiops_export_", "aiops_tempo_"))}
    assert labelled | (set(families) - on_use) == set(expected)
    assert all(expected[name] == kind for name, kind in families.items() if name not in on_use)
    openmetrics = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert openmetrics.mimetype == "application/openmetrics-text"
    assert openmetrics.get_data(as_text=True).endswith("# EOF\n")


def test_requests_move_the_span_counters_once_flushed(app, client):
    buffer = app.extensions["aiops_buffer"]
    buffer.flush()
    before = scrape(client)  # this request is recorded too, under the service "aiops"
    for _ in range(5):
        assert client.get("/health").status_code == 200
    client.get("/inventory")  # and its call to the demo's external peer (a CLIENT span)
    buffer.flush()  # (the writer thread may have written some already)
    after = scrape(client)
    assert delta(before, after, "aiops_spans_recorded_total", service="shop") == 7
    assert delta(before, after, "aiops_spans_recorded_total", service="aiops") == 1
    assert delta(before, after, "aiops_spans_written_total") == 8
    assert delta(before, after, "aiops_spans_dropped_total") == 0
    assert after[("aiops_spans_pending", ())] == 0


def test_the_product_route_is_recorded_under_aiops(app, client):
    from sqlalchemy import select

    from telemetry.db import db
    from telemetry.models import Span

    client.get("/metrics")
    app.extensions["aiops_buffer"].flush()
    with app.app_context():
        rows = db.session.execute(select(Span.service, Span.endpoint)).all()
        db.session.remove()
    assert ("aiops", "metrics") in [tuple(r) for r in rows]


def test_a_cycle_counts_its_duration_anomalies_and_incidents(app, client):
    before = scrape(client)
    for _ in range(settings_of(app).min_baseline_samples + 5):
        client.post("/payment")
    assert client.post("/aiops/analyze").get_json()["incidents_opened"] == []
    client.post("/simulate/error?endpoint=payment&rate=1")
    for _ in range(10):
        assert client.post("/payment").status_code == 500
    summary = client.post("/aiops/analyze").get_json()
    assert len(summary["incidents_opened"]) == 1
    after = scrape(client)
    assert delta(before, after, "aiops_detection_cycle_duration_seconds_count") == 2
    assert delta(before, after, "aiops_detection_cycle_duration_seconds_sum") > 0
    assert delta(before, after, "aiops_detection_cycle_duration_seconds_bucket", le="+Inf") == 2
    assert delta(before, after, "aiops_anomalies_total", type="error") == 1
    assert delta(before, after, "aiops_anomalies_total", type="latency") == 0
    assert delta(before, after, "aiops_incidents_opened_total", type="error", severity="critical") == 1
    assert delta(before, after, "aiops_detection_cycle_failures_total") == 0


def test_a_failed_cycle_is_counted(app, client, monkeypatch):
    import aiops.jobs.cycle

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    before = scrape(client)
    monkeypatch.setattr(aiops.jobs.cycle, "run_cycle", broken)
    with app.app_context(), pytest.raises(RuntimeError):
        aiops.jobs.cycle.run_claimed(settings_of(app), force=True)
    after = scrape(client)
    assert delta(before, after, "aiops_detection_cycle_failures_total") == 1
    assert delta(before, after, "aiops_detection_cycle_duration_seconds_count") == 0


def test_otlp_ingest_counts_stored_rejected_and_store_errors(app, client, monkeypatch):
    before = scrape(client)
    assert post(client, good_request(3).SerializeToString(), PB).status_code == 200
    partial = make_request({"svc": [make_span(1), make_span(2, trace_id=b"\x01" * 5)]})
    assert post(client, partial.SerializeToString(), PB).status_code == 200

    import telemetry.ingest

    def broken(engine, rows):
        raise RuntimeError("database is down")

    monkeypatch.setattr(telemetry.ingest, "insert_spans", broken)
    assert post(client, good_request(2).SerializeToString(), PB).status_code == 503
    after = scrape(client)
    assert delta(before, after, "aiops_spans_ingested_total") == 4
    assert delta(before, after, "aiops_spans_rejected_total") == 1
    assert delta(before, after, "aiops_store_errors_total", source="otlp") == 1
    assert delta(before, after, "aiops_store_errors_total", source="recorder") == 0


def test_otlp_log_ingest_counts_records_and_batches_accepted_rejected_and_failed(app, client, monkeypatch):
    before = scrape(client)
    assert post(client, good_logs_request(3).SerializeToString(), PB, path="/v1/logs").status_code == 200
    partial = logs_request({"a": [log_record(1), log_record(2, time_ns=None)]})
    assert post(client, partial.SerializeToString(), PB, path="/v1/logs").status_code == 200
    invalid = logs_request({"a": [log_record(1, time_ns=None), log_record(2, time_ns=None)]})
    assert post(client, invalid.SerializeToString(), PB, path="/v1/logs").status_code == 400

    import telemetry.ingest

    def broken(engine, rows):
        raise RuntimeError("database is down")

    monkeypatch.setattr(telemetry.ingest, "insert_logs", broken)
    assert post(client, good_logs_request(2).SerializeToString(), PB, path="/v1/logs").status_code == 503
    after = scrape(client)
    assert delta(before, after, "aiops_logs_ingested_total") == 4
    assert delta(before, after, "aiops_logs_rejected_total") == 3
    assert delta(before, after, "aiops_log_batches_total", outcome="accepted") == 2
    assert delta(before, after, "aiops_log_batches_total", outcome="rejected") == 1
    assert delta(before, after, "aiops_log_batches_total", outcome="failed") == 1
    assert delta(before, after, "aiops_store_errors_total", source="otlp_logs") == 1
    assert delta(before, after, "aiops_store_errors_total", source="otlp") == 0
    assert delta(before, after, "aiops_spans_ingested_total") == 0  # logs are not spans


# -- the span writer's report, without an app ---------------------------------------------


def test_the_buffer_reports_each_flush_once():
    reports = []
    failing = [True]

    def writer(rows):
        if failing[0]:
            raise RuntimeError("store down")

    buffer = SpanBuffer(writer, flush_interval=3600, max_size=3, on_flush=lambda **kw: reports.append(kw))
    for i in range(5):  # two are dropped: the buffer holds three
        buffer.add(("t", f"s{i}", None, "shop"))
    assert buffer.flush() == 0
    buffer.add(("t", "s9", None, "shop"))  # dropped: three still wait for a retry
    failing[0] = False
    assert buffer.flush() == 3
    assert [(len(r["fresh"]), r["written"], r["dropped"], r["failed"], r["pending"]) for r in reports] == [
        (3, 0, 2, True, 3),
        (0, 3, 1, False, 0),
    ]
    assert buffer.flush() == 0 and len(reports) == 2  # nothing to write, nothing to report


def test_a_failing_listener_never_stops_the_writer():
    def listener(**kw):
        raise RuntimeError("metrics broken")

    written = []
    buffer = SpanBuffer(written.extend, flush_interval=3600, on_flush=listener)
    buffer.add(("row",))
    assert buffer.flush() == 1 and written == [("row",)]


def test_buffer_flushed_counts_recorder_store_errors(client):
    before = scrape(client)
    selfmetrics.buffer_flushed(fresh=[], written=0, dropped=4, failed=True, pending=0)
    after = scrape(client)
    assert delta(before, after, "aiops_store_errors_total", source="recorder") == 1
    assert delta(before, after, "aiops_spans_dropped_total") == 4


def test_outbox_sends_are_counted_by_channel_and_outcome(app, client):
    from aiops.outbox import deliver_due
    before = scrape(client)
    with Receiver([503], default=202) as hook:
        reconfigure(app, webhook_url=hook.url("/hook"))
        with app.app_context():
            add_incident()
            rid = add_notification("webhook")
            deliver_due(settings_of(app), now=T0)
            deliver_due(settings_of(app), now=notification(rid).next_attempt_at)
            assert notification(rid).status == "delivered"
    after = scrape(client)
    for outcome, count in (("retry", 1), ("delivered", 1), ("failed", 0)):
        assert delta(before, after, "aiops_notification_attempts_total", channel="webhook",
                     outcome=outcome) == count, outcome
