"""Span rows -> the OpenTelemetry SDK's ``ReadableSpan`` (what the official exporter takes), and rows
<-> OTLP/JSON lines (the fallback file's format, the Collector file exporter's and ``flask aiops
replay``'s).

Ids, start and end are the stored ones (nanoseconds from the stored epoch seconds and
milliseconds), so the receiver stores the same span (its times to the float's precision, a
fraction of a microsecond). The mapping is the inverse of
:mod:`telemetry.otlp.spans`: the endpoint is the span name, the method, status code and peer are
the HTTP attributes ingest reads, the error flag is the status (ERROR; OK for a 5xx that was not
an error), an exception is an ``exception`` event. A row of kind UNSPECIFIED goes out as INTERNAL
(the SDK has no unspecified kind). A row of the product's own work
(:class:`~telemetry.columns.AttributedRow`) adds its ``aiops.*`` attributes, which a fallback line
gives back when read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

from telemetry import otlp
from telemetry.columns import KIND_CLIENT, AttributedRow
from telemetry.otlp.mapping import scalar
from telemetry.work_spans import PREFIX

SCOPE = InstrumentationScope("aiops.export")
_KINDS = {1: SpanKind.INTERNAL, 2: SpanKind.SERVER, 3: SpanKind.CLIENT, 4: SpanKind.PRODUCER,
          5: SpanKind.CONSUMER}
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def _context(trace_id: int, span_id: str) -> SpanContext:
    return SpanContext(trace_id, int(span_id, 16), is_remote=False, trace_flags=_SAMPLED)


def _status(error: bool, status_code: int | None, message: str | None) -> Status:
    if error:
        return Status(StatusCode.ERROR, message)
    ok_5xx = status_code is not None and status_code >= 500  # stored as no error: it was marked OK
    return Status(StatusCode.OK) if ok_5xx else Status(StatusCode.UNSET)


def nanoseconds(epoch: float) -> int:
    """Epoch seconds as integer nanoseconds, from the float's shortest decimal form (``x * 1e9``
    would add a rounding error of up to 256 ns at today's epoch)."""
    return int((Decimal(repr(float(epoch))) * 1_000_000_000).to_integral_value())


def readable(row: tuple, resources: dict[str, Resource]) -> ReadableSpan:
    """One row (``SPAN_FIELDS`` order) as a span the official exporter encodes."""
    (trace_id, span_id, parent, service, endpoint, kind, method, status_code, error, start, duration_ms,
     peer, exc_type, exc_message, exc_stack) = row
    trace = int(trace_id, 16)
    attributes = {}
    if method:
        attributes["http.request.method"] = method
    if status_code is not None:
        attributes["http.response.status_code"] = status_code
    if peer and kind == KIND_CLIENT:
        attributes["peer.service"] = peer
    extra = getattr(row, "attributes", None)
    if extra:
        attributes.update(extra)
    start_ns = nanoseconds(start)
    end_ns = start_ns + round(duration_ms * 1e6)
    events = ()
    if exc_type or exc_message or exc_stack:
        found = {"exception.type": exc_type, "exception.message": exc_message,
                 "exception.stacktrace": exc_stack}
        events = (Event("exception", {k: v for k, v in found.items() if v}, timestamp=end_ns),)
    resource = resources.get(service)
    if resource is None:
        resource = resources[service] = Resource({"service.name": service})
    return ReadableSpan(
        name=endpoint, context=_context(trace, span_id),
        parent=_context(trace, parent) if parent else None, resource=resource, attributes=attributes,
        events=events, kind=_KINDS.get(kind, SpanKind.INTERNAL), status=_status(error, status_code, None),
        start_time=start_ns, end_time=end_ns, instrumentation_scope=SCOPE)


def readable_spans(rows: Iterable[tuple]) -> list[ReadableSpan]:
    resources: dict[str, Resource] = {}
    return [readable(row, resources) for row in rows]


def json_line(rows: Sequence[tuple]) -> str:
    """One ``ExportTraceServiceRequest`` of ``rows`` as one OTLP/JSON line (hex ids), no newline."""
    return json.dumps(otlp.to_json_dict(encode_spans(readable_spans(rows))), separators=(",", ":"))


def rows_of_line(line: str) -> list[tuple]:
    """The rows of one OTLP/JSON line, as ingest maps them (no live checks: the spans keep their
    own clock). A line that does not decode raises :class:`telemetry.otlp.OtlpError`."""
    request = otlp.parse_json(line)
    rows = otlp.to_rows(request).rows
    work = _work_attributes(request)
    if not work:
        return rows
    return [AttributedRow(row, work[row[0], row[1]]) if (row[0], row[1]) in work else row for row in rows]


def _work_attributes(request) -> dict[tuple[str, str], dict]:
    """The ``aiops.*`` attributes of the work spans in ``request``, by (trace id, span id)."""
    found = {}
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                mine = {kv.key: scalar(kv.value) for kv in span.attributes if kv.key.startswith(PREFIX)}
                if mine:
                    found[span.trace_id.hex(), span.span_id.hex()] = mine
    return found
