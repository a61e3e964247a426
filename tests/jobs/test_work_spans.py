"""The worker's own work as spans (telemetry.work_spans): a detection cycle and an outbox delivery
pass that sent something are each a root span of the service "aiops", stored like the product's
other spans and exported, with their figures as attributes, to a real OTLP/HTTP endpoint on
loopback (tests.support.receivers, decoding what the official exporter sent)."""

from __future__ import annotations

import gzip
import time

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from sqlalchemy import select

from aiops import outbox
from aiops.jobs import worker as worker_module
from aiops.jobs.cycle import run_claimed
from aiops.jobs.worker import CYCLE_SPAN, DELIVERY_SPAN, Worker
from aiops.settings import settings_of
from telemetry.columns import KIND_INTERNAL, KIND_SERVER
from telemetry.db import db
from telemetry.models import Span
from telemetry.otlp.mapping import scalar
from tests.conftest import sqlite_only
from tests.support.factories import insert_spans, span_row
from tests.support.receivers import Receiver

pytestmark = sqlite_only  # the store is not the subject


def stored(app, endpoint: str) -> list[Span]:
    app.extensions["aiops_buffer"].flush()
    with app.app_context():
        return list(db.session.scalars(select(Span).where(Span.endpoint == endpoint)))


def exported(receiver: Receiver) -> dict[str, tuple[str, dict]]:
    """Span id -> (name, attributes) of every span the receiver was sent."""
    found = {}
    for request in receiver.requests:
        body = request.body
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        for rs in ExportTraceServiceRequest.FromString(body).resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    attributes = {kv.key: scalar(kv.value) for kv in span.attributes}
                    found[span.span_id.hex()] = (span.name, attributes)
    return found


def wait_for(condition, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def exporting(app_factory, tmp_path):
    with Receiver() as receiver:
        app = app_factory(AIOPS_EXPORT_OTLP_ENDPOINT=receiver.url(), AIOPS_EXPORT_FALLBACK_DIR=str(tmp_path))
        yield app, receiver


def test_a_detection_cycle_is_a_span_of_the_product_exported_with_its_figures(exporting):
    app, receiver = exporting
    now = time.time()
    insert_spans(app, [span_row(trace_id=f"{i + 1:032x}", span_id=f"{i + 1:016x}", service="shop",
                                endpoint="checkout", kind=KIND_SERVER, method="POST", status_code=200,
                                error=False, start_time=now - 1, duration_ms=5.0) for i in range(7)])
    summary = Worker(app).detect()
    [span] = stored(app, CYCLE_SPAN)
    assert (span.service, span.kind, span.parent_span_id, span.error) == ("aiops", KIND_INTERNAL, None, False)
    assert span.start_time == summary["started_at"] and span.duration_ms == summary["duration_ms"]
    wait_for(lambda: span.span_id in exported(receiver))
    name, attributes = exported(receiver)[span.span_id]
    assert name == CYCLE_SPAN
    assert attributes == {"aiops.cycle.spans": 7, "aiops.cycle.anomalies": 0,
                          "aiops.cycle.incidents_opened": 0, "aiops.cycle.incidents_resolved": 0,
                          "aiops.cycle.notifications_queued": 0}
    # The next cycle reads that span in its window and, the product's own, analyses nothing of it.
    with app.app_context():
        again = run_claimed(settings_of(app), force=True)
    assert again["spans"] == 1 and again["endpoints"] == 0 and again["anomalies"] == []


def test_a_delivery_pass_is_a_span_only_when_it_sent_something(exporting, monkeypatch):
    app, receiver = exporting
    taken = iter([0, 3])
    monkeypatch.setattr(outbox, "tick", lambda app: next(taken))
    worker = Worker(app)
    assert worker.deliver() == 0
    assert stored(app, DELIVERY_SPAN) == []
    assert worker.deliver() == 3
    [span] = stored(app, DELIVERY_SPAN)
    assert (span.service, span.kind) == ("aiops", KIND_INTERNAL)
    wait_for(lambda: span.span_id in exported(receiver))
    assert exported(receiver)[span.span_id] == (DELIVERY_SPAN, {"aiops.outbox.messages": 3})


def test_a_failed_cycle_is_an_error_span_with_its_exception(app, monkeypatch):
    def broken(settings, force):
        raise RuntimeError("database gone")

    monkeypatch.setattr(worker_module, "run_claimed", broken)
    assert Worker(app).detect() is None
    [span] = stored(app, CYCLE_SPAN)
    assert span.error and span.exception_type == "RuntimeError" and span.exception_message == "database gone"


def test_a_span_that_cannot_be_recorded_never_fails_the_work(app, monkeypatch):
    class Broken:
        def add(self, row):
            raise OSError("no space left")

    monkeypatch.setitem(app.extensions, "aiops_buffer", Broken())
    assert Worker(app).detect()["spans"] == 0


def test_nothing_is_recorded_when_recording_is_off(app_factory):
    app = app_factory(AIOPS_RECORD_REQUESTS=False)
    Worker(app).detect()
    assert stored(app, CYCLE_SPAN) == []
