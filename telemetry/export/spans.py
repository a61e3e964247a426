"""Span rows -> the OpenTelemetry SDK's ``ReadableSpan`` (what the official exporter takes), and rows
<-> OTLP/JSON lines (the fallback file's format, the Collector file exporter's and ``flask aiops
replay``'s).

Ids, start and end are the stored ones (nanoseconds from the stored epoch seconds and
milliseconds), so the receiver stores the same span (its times to the float's precision, a
fraction of a microsecond). The mapping is the inverse of
:mod:`telemetry.otlp.spans`: the endpoint is the span name, the method, status code and peer are
the HTTP attributes ingest reads, the error flag is the status (ERROR; OK for a 5xx that was not
an error), an exception is an ``exception`` event. A row of kind UNSPECIFIED goes out as INTERNAL
(the SDK has no unspecified kind). The stored ``attributes`` (:mod:`telemetry.attributes`: the
span's own and its resource's, such as ``k8s.pod.name``, or the ``aiops.*`` figures of the
product's own work) go out as span attributes (the columns' keys win); the resource carries only
``service.name``, since the row no longer tells which came from the resource. A fallback line gives
them back when read, as ingest would keep them.

:func:`otlp_parts` says it once; the SDK's span and the JSON line are two spellings of it. The
lines are written and read here as plain JSON, not through protobuf's JSON mapping (seven times
slower each way: an outage of a minute at 2,000 spans/s spills and replays 120,000 spans), and read
back only as this module writes them (tests hold them to ingest's mapping of the same line).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

from telemetry.attributes import decode, encode, kept
from telemetry.columns import KIND_CLIENT, KIND_INTERNAL, KIND_UNSPECIFIED

SCOPE = InstrumentationScope("aiops.export")
_KINDS = {1: SpanKind.INTERNAL, 2: SpanKind.SERVER, 3: SpanKind.CLIENT, 4: SpanKind.PRODUCER,
          5: SpanKind.CONSUMER}
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2  # OTLP's Status.code, as StatusCode's values


def _context(trace_id: int, span_id: str) -> SpanContext:
    return SpanContext(trace_id, int(span_id, 16), is_remote=False, trace_flags=_SAMPLED)


def nanoseconds(epoch: float) -> int:
    """Epoch seconds as integer nanoseconds, from the float's shortest decimal form (``x * 1e9``
    would add a rounding error of up to 256 ns at today's epoch)."""
    return int((Decimal(repr(float(epoch))) * 1_000_000_000).to_integral_value())


def otlp_parts(row: tuple) -> tuple[int, dict, int, int, int, dict | None]:
    """What a row (``SPAN_FIELDS`` order) says in OTLP's terms: (kind, attributes, status code,
    start and end in ns, the ``exception`` event's attributes or None)."""
    (_, _, _, _, _, kind, method, status_code, error, start, duration_ms, peer, exc_type, exc_message,
     exc_stack, stored) = row
    attributes = decode(stored)
    if method:
        attributes["http.request.method"] = method
    if status_code is not None:
        attributes["http.response.status_code"] = status_code
    if peer and kind == KIND_CLIENT:
        attributes["peer.service"] = peer
    if error:
        status = STATUS_ERROR
    else:  # stored as no error though a 5xx: it was marked OK
        status = STATUS_OK if status_code is not None and status_code >= 500 else STATUS_UNSET
    start_ns = nanoseconds(start)
    exception = None
    if exc_type or exc_message or exc_stack:
        found = {"exception.type": exc_type, "exception.message": exc_message,
                 "exception.stacktrace": exc_stack}
        exception = {k: v for k, v in found.items() if v}
    end_ns = start_ns + round(duration_ms * 1e6)
    return (kind if kind in _KINDS else KIND_INTERNAL), attributes, status, start_ns, end_ns, exception


def readable(row: tuple, resources: dict[str, Resource]) -> ReadableSpan:
    """One row as a span the official exporter encodes."""
    trace_id, span_id, parent, service, endpoint = row[:5]
    kind, attributes, status, start_ns, end_ns, exception = otlp_parts(row)
    trace = int(trace_id, 16)
    events = (Event("exception", exception, timestamp=end_ns),) if exception else ()
    resource = resources.get(service)
    if resource is None:
        resource = resources[service] = Resource({"service.name": service})
    return ReadableSpan(
        name=endpoint, context=_context(trace, span_id),
        parent=_context(trace, parent) if parent else None, resource=resource, attributes=attributes,
        events=events, kind=_KINDS[kind], status=Status(StatusCode(status)),
        start_time=start_ns, end_time=end_ns, instrumentation_scope=SCOPE)


def readable_spans(rows: Iterable[tuple]) -> list[ReadableSpan]:
    resources: dict[str, Resource] = {}
    return [readable(row, resources) for row in rows]


def _value(value) -> dict:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # int64 is a string in OTLP/JSON
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _attributes(values: dict) -> list[dict]:
    return [{"key": key, "value": _value(value)} for key, value in values.items()]


def _json_span(row: tuple) -> dict:
    kind, attributes, status, start_ns, end_ns, exception = otlp_parts(row)
    span = {"traceId": row[0], "spanId": row[1], "name": row[4], "kind": kind,
            "startTimeUnixNano": str(start_ns), "endTimeUnixNano": str(end_ns),
            "attributes": _attributes(attributes), "status": {"code": status} if status else {}}
    if row[2]:
        span["parentSpanId"] = row[2]
    if exception:
        span["events"] = [{"timeUnixNano": str(end_ns), "name": "exception",
                           "attributes": _attributes(exception)}]
    return span


def json_line(rows: Sequence[tuple]) -> str:
    """One ``ExportTraceServiceRequest`` of ``rows`` as one OTLP/JSON line (hex ids), no newline:
    a resource per service, as the SDK's encoder groups them."""
    services: dict[str, list[dict]] = {}
    for row in rows:
        services.setdefault(row[3], []).append(_json_span(row))
    return json.dumps({"resourceSpans": [
        {"resource": {"attributes": _attributes({"service.name": service})},
         "scopeSpans": [{"scope": {"name": SCOPE.name}, "spans": spans}]}
        for service, spans in services.items()]}, separators=(",", ":"))


def _scalar(value: dict):
    for key, cast in (("stringValue", str), ("intValue", int), ("doubleValue", float), ("boolValue", bool)):
        if key in value:
            return cast(value[key])
    return None


def _values(attributes: list[dict]) -> dict:
    return {kv["key"]: _scalar(kv.get("value", {})) for kv in attributes}


def _row(span: dict, service: str) -> tuple:
    """The row a span of :func:`json_line` was made from."""
    attributes = _values(span.get("attributes", ()))
    kind = span.get("kind", KIND_UNSPECIFIED)
    status_code = attributes.get("http.response.status_code")
    status = span.get("status", {}).get("code", STATUS_UNSET)
    error = status == STATUS_ERROR or (status != STATUS_OK and status_code is not None and status_code >= 500)
    events = [e for e in span.get("events", ()) if e.get("name") == "exception"]
    exception = _values(events[-1].get("attributes", ())) if events else {}
    start_ns, end_ns = int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])
    row = (span["traceId"], span["spanId"], span.get("parentSpanId") or None, service, span["name"], kind,
           attributes.get("http.request.method"), status_code, error, start_ns / 1e9,
           (end_ns - start_ns) / 1e6, attributes.get("peer.service") if kind == KIND_CLIENT else None,
           exception.get("exception.type"), exception.get("exception.message"),
           exception.get("exception.stacktrace"), encode(kept(attributes.items())))
    return row


def rows_of_line(line: str) -> list[tuple]:
    """The rows of one line :func:`json_line` wrote (ingest would map them alike). A line that does
    not decode raises ``ValueError``, ``KeyError`` or ``TypeError``."""
    rows = []
    for resource_spans in json.loads(line)["resourceSpans"]:
        service = _values(resource_spans.get("resource", {}).get("attributes", ())).get("service.name")
        for scope_spans in resource_spans.get("scopeSpans", ()):
            rows += [_row(span, service) for span in scope_spans.get("spans", ())]
    return rows
