"""The product's own log records carry the trace and span of the request that emitted them
(telemetry.log_bridge), with either recorder; the demo's faults leave log lines; a log failure
never fails a request."""

from __future__ import annotations

import json
import logging

import pytest
import requests
from sqlalchemy import select

from telemetry import log_bridge
from telemetry.columns import KIND_SERVER
from telemetry.db import db
from telemetry.models import LogRecord
from tests.support.loopback import LoopbackServer, stored


def stored_logs(app) -> list[LogRecord]:
    with app.app_context():
        app.extensions[log_bridge.EXTENSION][0].flush()
        rows = list(db.session.scalars(select(LogRecord).order_by(LogRecord.id)))
        db.session.expunge_all()
        return rows


@pytest.fixture(params=["lean", "otel"])
def server(request, app_factory):
    s = LoopbackServer(app_factory(TESTING=False, AIOPS_RECORDER=request.param, AIOPS_DEMO_WORK=0))
    yield s
    s.stop()


def test_a_failing_call_leaves_error_logs_in_the_spans_that_failed(server):
    app = server.app
    assert app.test_client().post("/simulate/error?endpoint=payment&rate=1").status_code == 200
    assert requests.post(server.url + "/checkout", json={"amount": 3}, timeout=10).status_code == 502

    spans = {s.endpoint: s for s in stored(app, service="shop", kind=KIND_SERVER)}
    [trace_id] = {s.trace_id for s in spans.values()}
    logs = {row.body: row for row in stored_logs(app)}
    failed = logs["payment failed: injected error on payment"]
    assert (failed.trace_id, failed.span_id) == (trace_id, spans["payment"].span_id)
    assert (failed.severity_number, failed.severity_text, failed.service) == (17, "ERROR", "shop")
    assert json.loads(failed.attributes)["exception.type"] == "InjectedFault"
    caller = logs["call to payment answered 500"]
    assert (caller.trace_id, caller.span_id) == (trace_id, spans["checkout"].span_id)


def test_logs_outside_a_request_are_not_stored(app):
    logging.getLogger("simulation.shop").error("no request here")
    with app.test_request_context("/"):
        logging.getLogger("simulation.shop").error("a request context but no span")
    assert stored_logs(app) == []


def test_a_log_failure_never_fails_the_request(app, client, monkeypatch):
    buffer = app.extensions[log_bridge.EXTENSION][0]

    def broken(row):
        raise RuntimeError("log buffer is broken")

    monkeypatch.setattr(buffer, "add", broken)
    assert client.post("/simulate/delay?endpoint=payment&duration=1").status_code == 200
    assert client.post("/payment", json={"amount": 1}).status_code == 200
    monkeypatch.undo()
    assert client.post("/payment", json={"amount": 1}).status_code == 200
    [row] = stored_logs(app)
    assert row.body == "payment: slow backend, 1 ms spent waiting" and row.severity_text == "WARN"


def test_a_body_with_nul_or_a_lone_surrogate_is_stored_cleaned():
    """Cleaned as OTLP ingest cleans a body: uncleaned, it failed its whole buffered batch."""
    from opentelemetry._logs import LogRecord as ApiLogRecord
    from opentelemetry._logs import SeverityNumber

    record = ApiLogRecord(timestamp=1, trace_id=1, span_id=2, severity_number=SeverityNumber.ERROR,
                          body="bad\x00byte \udcff here")
    row = log_bridge.log_row(record, "shop")
    assert row[4] == "badbyte ? here"
    assert log_bridge.log_row(ApiLogRecord(timestamp=1, trace_id=1, span_id=2, body=""), "shop")[4] is None
