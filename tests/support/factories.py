"""Test data built by hand: spans (as rows and as OTLP), detection results, incidents, outbox rows.

One place for what many tests need, so a new column or a changed shape is
fixed here once. Builders take plain values with defaults for everything a
test does not care about; those that store something say so in their name
(``add_*``) and return the new row's id.
"""

from __future__ import annotations

import itertools
import time
import zlib
from contextlib import nullcontext
from types import SimpleNamespace

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from aiops.detection.rules import Anomaly
from aiops.rca.analysis import Group
from telemetry.columns import KIND_CLIENT, KIND_INTERNAL, KIND_SERVER, LOG_FIELDS, SPAN_FIELDS

T0 = 1_800_000_000.0  # a fixed clock (January 2027) for tests that hand "now" to the code under test
RECENT_NS = (int(time.time()) - 600) * 1_000_000_000  # ten minutes ago: live ingest refuses old spans
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
FIRST = "2026-01-20T10:30:15Z"  # when the incidents of incident_dict() were first detected

_ids = itertools.count(1)


# -- span rows (what the store holds and the detection cycle reads) ------------------------------


def new_trace_id() -> str:
    return format(next(_ids), "032x")


def span(endpoint: str, duration_ms: float = 10.0, *, trace_id: str | None = None, parent=None,
         service: str = "shop", status_code: int | None = 200, error: bool | None = None,
         exception_type: str | None = None, exception_message: str | None = None,
         start_time: float = 1_000.0) -> SimpleNamespace:
    """A SERVER span with the attributes of a stored row; ``parent`` is another span (its trace is
    inherited)."""
    if error is None:
        error = exception_type is not None or (status_code is not None and status_code >= 500)
    values = dict(
        trace_id=trace_id or (parent.trace_id if parent is not None else new_trace_id()),
        span_id=format(next(_ids), "016x"),
        parent_span_id=parent.span_id if parent is not None else None,
        service=service,
        endpoint=endpoint,
        kind=KIND_SERVER,
        method="GET",
        status_code=status_code,
        error=error,
        start_time=start_time,
        duration_ms=duration_ms,
        peer=None,
        exception_type=exception_type,
        exception_message=exception_message,
        exception_stack=None,
        attributes=None,
    )
    assert set(values) == set(SPAN_FIELDS)
    return SimpleNamespace(**values)


def client(parent, peer: str, duration_ms: float = 10.0, **kw) -> SimpleNamespace:
    """A CLIENT span of ``parent``'s service calling endpoint ``peer`` of the same service
    (the ``peer`` column names the callee *service*, as the demo recorders write it)."""
    s = span(peer, duration_ms, parent=parent, service=parent.service, **kw)
    s.kind = KIND_CLIENT
    s.peer = parent.service
    return s


def span_row(**values) -> tuple:
    """A row for ``store.insert_spans``: the named columns, None for the others."""
    unknown = set(values) - set(SPAN_FIELDS)
    assert not unknown, f"not span columns: {sorted(unknown)}"
    return tuple(values.get(name) for name in SPAN_FIELDS)


def row_of(s: SimpleNamespace) -> tuple:
    """The row of a :func:`span` (or :func:`client`)."""
    return tuple(getattr(s, name) for name in SPAN_FIELDS)


def insert_spans(app, rows) -> None:
    """Store rows (tuples, or spans from :func:`span`) straight into the app's database."""
    from telemetry import store
    from telemetry.db import db

    rows = [r if isinstance(r, tuple) else row_of(r) for r in rows]
    with app.app_context():
        store.insert_spans(db.engine, rows)


def log_row(time: float, body: str, *, service: str = "orders", severity: int = 9,
            severity_text: str | None = None, trace_id: str | None = None,
            span_id: str | None = None) -> tuple:
    """A stored log row (``LOG_FIELDS`` order), as ingest writes it."""
    values = {"time": time, "service": service, "severity_number": severity, "severity_text": severity_text,
              "body": body, "trace_id": trace_id, "span_id": span_id, "attributes": None}
    return tuple(values[f] for f in LOG_FIELDS)


def insert_logs(app, rows) -> None:
    """Store log rows straight into the app's database."""
    from telemetry import store
    from telemetry.db import db

    with app.app_context():
        store.insert_logs(db.engine, rows)


# -- OTLP requests -------------------------------------------------------------------------------


def any_value(value) -> common_pb2.AnyValue:
    if isinstance(value, bool):
        return common_pb2.AnyValue(bool_value=value)
    if isinstance(value, int):
        return common_pb2.AnyValue(int_value=value)
    if isinstance(value, float):
        return common_pb2.AnyValue(double_value=value)
    return common_pb2.AnyValue(string_value=value)


def attributes(d: dict) -> list[common_pb2.KeyValue]:
    return [common_pb2.KeyValue(key=k, value=any_value(v)) for k, v in d.items()]


def make_span(n: int = 1, *, trace: str = "0af7651916cd43dd8448eb211c80319c", parent: str | None = None,
              name: str = "work", kind: int = KIND_INTERNAL, start_ns: int = RECENT_NS, dur_ms: float = 10.0,
              attrs: dict | None = None, status: int = 0, events: list | None = None,
              span_id: bytes | None = None, trace_id: bytes | None = None) -> trace_pb2.Span:
    """An OTLP span; ``n`` is its span id (8 bytes, big-endian) unless ``span_id`` is given."""
    return trace_pb2.Span(
        trace_id=trace_id if trace_id is not None else bytes.fromhex(trace),
        span_id=span_id if span_id is not None else n.to_bytes(8, "big"),
        parent_span_id=bytes.fromhex(parent) if parent else b"",
        name=name, kind=kind, start_time_unix_nano=start_ns,
        end_time_unix_nano=start_ns + int(dur_ms * 1e6),
        attributes=attributes(attrs or {}),
        status=trace_pb2.Status(code=status),
        events=events or [],
    )


def make_request(spans_by_service: dict[str, list[trace_pb2.Span]]) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(resource_spans=[
        trace_pb2.ResourceSpans(
            resource=resource_pb2.Resource(attributes=attributes({"service.name": service})),
            scope_spans=[trace_pb2.ScopeSpans(spans=spans)],
        )
        for service, spans in spans_by_service.items()
    ])


def good_request(count: int = 3, service: str = "orders") -> ExportTraceServiceRequest:
    """``count`` healthy SERVER spans of ``GET /orders/{id}``, a millisecond apart."""
    return make_request({service: [
        make_span(i + 1, name="GET /orders/{id}", kind=KIND_SERVER, start_ns=RECENT_NS + i * 1_000_000,
                  attrs={"http.route": "/orders/{id}", "http.request.method": "GET",
                         "http.response.status_code": 200})
        for i in range(count)
    ]})


def failing_requests(service: str, endpoints: int, *, names: tuple[str, ...] = (),
                     first_id: int = 1) -> ExportTraceServiceRequest:
    """Five failing (500) SERVER spans, one trace each, for each of ``endpoints`` endpoints of
    ``service`` (named ``names``, then ``op<i>``), a second ago: an error spike on every one."""
    now = time.time_ns()
    spans = []
    for e in range(endpoints):
        for _ in range(5):
            n = first_id + len(spans)
            spans.append(make_span(n, trace=f"{zlib.crc32(service.encode()):08x}{n:024x}",
                                   name=names[e] if e < len(names) else f"op{e}", kind=KIND_SERVER,
                                   status=2, start_ns=now - 1_000_000_000 + n * 1000,
                                   attrs={"http.response.status_code": 500}))
    return make_request({service: spans})


# -- OTLP protobuf by hand (for the decoding limits: no SDK builds these) ------------------------


def varint(n: int) -> bytes:
    """Protobuf base-128 varint."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def empty_spans(count: int) -> bytes:
    """An ExportTraceServiceRequest of ``count`` empty spans: 2 bytes each on the wire."""
    scope = b"\x12\x00" * count
    resource = b"\x12" + varint(len(scope)) + scope
    return b"\x0a" + varint(len(resource)) + resource


# -- detection results (what the cycle hands the incident service) -------------------------------


def latency(endpoint: str, observed: float = 900.0, baseline: float = 20.0,
            trace: str = "ab" * 16) -> Anomaly:
    return Anomaly("shop", endpoint, "latency", observed, baseline, 10,
                   f"Latency spike: {observed:.0f}ms (baseline: {baseline:.0f}ms)", [trace])


def error(endpoint: str, rate: float = 1.0, trace: str = "cd" * 16) -> Anomaly:
    return Anomaly("shop", endpoint, "error", rate, None, 10,
                   f"Error spike: {rate:.0%} of 10 requests failed", [trace])


def group(root: str, *anomalies: Anomaly, trace: str = "ab" * 16) -> Group:
    """An RCA group rooted at shop/``root``, with checkout as the second candidate."""
    return Group(root=("shop", root), anomalies=list(anomalies),
                 candidates=[(("shop", root), 0.9), (("shop", "checkout"), 0.1)], example_trace=trace)


def payment_slow() -> Group:
    """payment at 900 ms against a 20 ms baseline: the plainest incident."""
    return group("payment", latency("payment", 900.0, 20.0))


# -- incidents -----------------------------------------------------------------------------------


def add_incident(app=None, incident_id: str = "INC-1", status: str = "open", *, at: float | None = None,
                 **fields) -> str:
    """Store an incident row directly (no detection): payment errors in the shop, last seen ``at``
    (default now), first detected a minute before. In ``app``'s context, or the current one."""
    from aiops.store.models import Incident
    from telemetry.db import begin_write, db

    now = time.time() if at is None else at
    values = dict(
        id=incident_id, status=status, severity="high", title="payment errors", root_service="shop",
        root_endpoint="payment", root_issue="Error spike", candidates=[], affected=["payment"],
        correlated_failures=[], first_detected=now - 60, last_seen=now, clean_cycles=0, timeline=[],
        resolved_at=now if status == "resolved" else None,
    )
    with app.app_context() if app is not None else nullcontext():
        begin_write()
        db.session.add(Incident(**{**values, **fields}))
        db.session.commit()
    return incident_id


def anomaly_dict(endpoint: str, type_: str, observed: float, baseline: float | None = None, *,
                 service: str = "shop", count: int = 40, message: str | None = None, at: str = FIRST) -> dict:
    """An anomaly as an incident's JSON lists it."""
    if message is None:
        message = {
            "latency": f"Latency spike: {observed:.0f}ms (baseline: {baseline or 0:.0f}ms)",
            "error": f"Error spike: {observed:.0%} of {count} requests failed",
            "timeout": f"Timeout: {observed:.0f} calls to it timed out",
        }[type_]
    return {"service": service, "endpoint": endpoint, "type": type_, "observed": observed,
            "baseline": baseline, "request_count": count, "message": message, "detected_at": at,
            "trace_ids": [TRACE]}


def incident_dict(root: str = "payment", *anomalies: dict, service: str = "shop", affected=None,
                  status: str = "open", last_seen: str = "2026-01-20T10:34:15Z", resolved_at=None,
                  seen_cycles: int = 3, reopen_count: int = 0, related_to=None, title: str | None = None,
                  issue: str | None = None, trace: str = TRACE, **overrides) -> dict:
    """An incident as ``GET /aiops/incidents/<id>`` returns it (for reports and notifications)."""
    incident = {
        "id": "INC-1768905015-1",
        "status": status,
        "severity": "high",
        "title": title or f"{root} latency 1242ms (baseline 180ms)",
        "root_cause": {"service": service, "endpoint": root,
                       "issue": issue or "Latency spike: 1242ms (baseline: 180ms)"},
        "root_cause_candidates": [{"service": service, "endpoint": root, "score": 0.91},
                                  {"service": service, "endpoint": "checkout", "score": 0.09}],
        "affected_endpoints": affected if affected is not None else [root, "checkout"],
        "first_detected": FIRST,
        "last_seen": last_seen,
        "resolved_at": resolved_at,
        "trace_correlation": {"trace_id": trace,
                              "correlated_failures": [f"{a['endpoint']}_{a['type']}" for a in anomalies]},
        "anomalies": list(anomalies),
        "timeline": [{"at": FIRST, "event": "detected", "by": "aiops", "detail": "payment latency"}],
        "confirmed": True,
        "seen_cycles": seen_cycles,
        "reopen_count": reopen_count,
        "related_to": related_to,
        "remediation": None,
    }
    incident.update(overrides)
    return incident


# -- the notification outbox ---------------------------------------------------------------------


def add_notification(channel: str = "webhook", incident_id: str = "INC-1", event: str = "trigger",
                     payload: dict | None = None, at: float = T0, dedup_key: str | None = None) -> int:
    """Queue one outbox row, due at ``at`` (in the current app context); its id."""
    from aiops.store.models import Notification
    from telemetry.db import begin_write, db

    begin_write()
    dedup_key = dedup_key or f"aiops-{incident_id}"
    row = Notification(
        channel=channel, incident_id=incident_id, event=event, dedup_key=dedup_key, severity="high",
        payload=payload if payload is not None else {"event": event, "dedup_key": dedup_key},
        status="pending", attempts=0, created_at=at, next_attempt_at=at,
    )
    db.session.add(row)
    db.session.commit()
    return row.id


def notification(row_id: int):
    """The outbox row as stored now (after whatever the code under test committed)."""
    from aiops.store.models import Notification
    from telemetry.db import db

    db.session.rollback()
    return db.session.get(Notification, row_id)


# --- OTLP log requests --------------------------------------------------------------------------

LOG_T0 = (int(time.time()) - 600) * 1_000_000_000  # ten minutes ago: inside live ingest's time bounds
LOG_TRACE = "0af7651916cd43dd8448eb211c80319c"


def log_record(n: int = 1, *, body="order failed", severity: int = 17, text: str = "",
                time_ns: int | None = LOG_T0, observed_ns: int = 0, trace: str | None = LOG_TRACE,
                span: bytes | None = None, attrs: dict | None = None, trace_id: bytes | None = None):
    return logs_pb2.LogRecord(
        time_unix_nano=(time_ns + n) if time_ns else 0, observed_time_unix_nano=observed_ns,
        severity_number=severity, severity_text=text,
        body=body if isinstance(body, common_pb2.AnyValue) else common_pb2.AnyValue(string_value=body),
        trace_id=trace_id if trace_id is not None else (bytes.fromhex(trace) if trace else b""),
        span_id=span if span is not None else (n.to_bytes(8, "big") if trace else b""),
        attributes=attributes(attrs or {}),
    )


def logs_request(records_by_service: dict) -> ExportLogsServiceRequest:
    return ExportLogsServiceRequest(resource_logs=[
        logs_pb2.ResourceLogs(
            resource=resource_pb2.Resource(attributes=attributes({"service.name": service})),
            scope_logs=[logs_pb2.ScopeLogs(log_records=records)],
        )
        for service, records in records_by_service.items()
    ])


def good_logs_request(count: int = 3, service: str = "orders") -> ExportLogsServiceRequest:
    return logs_request({service: [log_record(i + 1) for i in range(count)]})
