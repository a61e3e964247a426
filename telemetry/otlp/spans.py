"""OTLP spans -> span rows. Pure logic: decoded messages in, tuples out (no Flask).

How a span becomes a row (``telemetry.columns.SPAN_FIELDS`` order):

- ``service``: the resource's ``service.name`` (``unknown_service`` without one);
- ``endpoint``: the span name, except for a SERVER span with ``http.route``,
  whose endpoint is ``"<method> <route>"`` (just the route without a method).
  That is what the HTTP semantic conventions name such a span anyway, and it
  keeps instrumentations that name server spans after the raw path (one
  endpoint per URL) or the bare method (one endpoint per verb) usable.
  An endpoint is identified by ``(service, endpoint)``, the RCA key;
- ``method``: ``http.request.method`` or the older ``http.method``;
- ``status_code``: ``http.response.status_code`` or the older ``http.status_code``;
- ``error``: status ERROR; with status UNSET also an HTTP status >= 500
  (older instrumentations do not set the status); never with status OK;
- ``peer`` (CLIENT spans only): ``peer.service``, else for a database call (``db.system``, or
  ``db.system.name`` of newer conventions) the system with the database (``db.namespace``, older
  ``db.name``) and host when given, as ``postgresql:orders@db.internal`` (a database sends no
  spans: the map draws it as an external node), else ``server.address``, else ``net.peer.name``:
  the service or host called;
- ``exception_*``: from the span's last ``exception`` event; without one, from the span's own
  ``exception.type``/``exception.message`` attributes (``error.type`` for the type) and, for a
  failed span, its status message (what failed, for :mod:`aiops.detection.patterns`), bounded;
- ``start_time`` in epoch seconds, ``duration_ms`` from start and end;
- ``attributes``: the resource's attributes and the span's (the span's win a clash), bounded, as
  compact JSON (:mod:`telemetry.attributes` has the rules), NULL when none is left.

A span that cannot be stored is *rejected* (counted, with a reason) while the
rest of its batch is kept: a trace id that is not 16 bytes (32 hex digits) or
is all zero, a span id that is not 8 bytes or is all zero, a parent span id
that is neither empty nor 8 bytes, a missing start time, an end before the
start. Live ingest adds :class:`SpanChecks` (times far from now, absurd
durations, too many attributes or events, the product's own service name);
replay does not. Strings are cut to their column sizes and NUL characters
dropped, and invalid UTF-8 or lone surrogates become U+FFFD
(:mod:`telemetry.otlp.strings`), so a batch that decoded never fails in the
database for its content, and one bad string never costs its batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from telemetry.attributes import MAX_RESOURCE_KEYS, Resource, kept, span_text
from telemetry.columns import (
    KIND_CLIENT,
    KIND_CONSUMER,
    KIND_SERVER,
    KIND_UNSPECIFIED,
    MAX_EXC_TYPE,
    MAX_TEXT,
)
from telemetry.otlp.mapping import Mapped, clean, scalar, service_name

UNNAMED = "<unnamed>"
STATUS_OK, STATUS_ERROR = 1, 2  # opentelemetry.proto.trace.v1.Status.StatusCode

# Column sizes of telemetry.models.Span (PostgreSQL enforces them).
_MAX_ENDPOINT, _MAX_METHOD, _MAX_PEER = 512, 16, 512

_WANTED = frozenset({
    "http.route",
    "http.response.status_code", "http.status_code",
    "http.request.method", "http.method",
    "peer.service", "server.address", "net.peer.name",
    "db.system", "db.system.name", "db.namespace", "db.name",
    "exception.type", "exception.message", "error.type",
})
_SCALARS = frozenset({"string_value", "int_value", "double_value", "bool_value"})  # mapping.scalar's
_EXCEPTION_KEYS = frozenset({"exception.type", "exception.message", "exception.stacktrace"})


def _wanted_attrs(attributes, wanted=_WANTED) -> dict:
    out = {}
    for kv in attributes:
        if kv.key in wanted:
            value = scalar(kv.value)
            if value is not None and value != "":
                out[kv.key] = value
    return out


def _status_code(value) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        code = int(value)
    except (TypeError, ValueError):
        return None
    if isinstance(value, float) and value != code:
        return None
    return code if 100 <= code <= 999 else None


def _text(value) -> str | None:
    return None if value is None else str(value)


def _exception(events) -> tuple[str | None, str | None, str | None]:
    found = None
    for event in events:
        if event.name == "exception":
            found = event
    if found is None:
        return None, None, None
    attrs = _wanted_attrs(found.attributes, _EXCEPTION_KEYS)
    return (
        clean(_text(attrs.get("exception.type")), MAX_EXC_TYPE),
        clean(_text(attrs.get("exception.message")), MAX_TEXT),
        clean(_text(attrs.get("exception.stacktrace")), MAX_TEXT),
    )


def _exception_or_status(span, attrs: dict, error: bool) -> tuple[str | None, str | None, str | None]:
    """The last ``exception`` event, else what the span's attributes and status message say."""
    found = _exception(span.events)
    if found != (None, None, None):
        return found
    exc_type = attrs.get("exception.type") or (attrs.get("error.type") if error else None)
    message = attrs.get("exception.message") or (span.status.message if error else None)
    return clean(_text(exc_type), MAX_EXC_TYPE), clean(_text(message), MAX_TEXT), None


def _invalid(span) -> str | None:
    """Why a span cannot be stored, or None."""
    if len(span.trace_id) != 16 or not any(span.trace_id):
        return "invalid trace_id (need 16 bytes, 32 hex digits, not all zero)"
    if len(span.span_id) != 8 or not any(span.span_id):
        return "invalid span_id (need 8 bytes, 16 hex digits, not all zero)"
    if len(span.parent_span_id) not in (0, 8):
        return "invalid parent_span_id (need empty or 8 bytes, 16 hex digits)"
    if not span.start_time_unix_nano:
        return "missing start_time_unix_nano"
    if span.end_time_unix_nano < span.start_time_unix_nano:
        return "end_time_unix_nano before start_time_unix_nano"
    return None


def _peer(attrs: dict):
    """What a CLIENT span called (see the module's docstring)."""
    host = attrs.get("server.address") or attrs.get("net.peer.name")
    system = _text(attrs.get("db.system") or attrs.get("db.system.name"))
    if attrs.get("peer.service") or not system:
        return attrs.get("peer.service") or host
    name = _text(attrs.get("db.namespace") or attrs.get("db.name"))
    return system + (f":{name}" if name else "") + (f"@{_text(host)}" if host else "")


def _attributes(span, resource: Resource) -> tuple[dict, str | None]:
    """The attributes the columns read, and the ``attributes`` column's text: one pass over them."""
    wanted, pairs = {}, []
    for kv in span.attributes:
        any_value = kv.value
        value = any_value.string_value  # most are strings: one access, not two
        if not value:
            which = any_value.WhichOneof("value")
            value = getattr(any_value, which) if which in _SCALARS else None
        key = kv.key
        if key in _WANTED and value is not None and value != "":
            wanted[key] = value
        pairs.append((key, value))
    return wanted, span_text(resource, pairs)


def resource_attributes(resource) -> Resource:
    """What each span of ``resource`` keeps of its attributes (computed once per resource)."""
    return Resource(kept(((kv.key, scalar(kv.value)) for kv in resource.attributes), MAX_RESOURCE_KEYS))


_NO_RESOURCE = Resource({})


def span_row(span, service: str, resource: Resource | None = None) -> tuple:
    """One OTLP ``Span`` (already validated) as a row in ``SPAN_FIELDS`` order; ``resource``: its
    resource's :func:`resource_attributes`."""
    attrs, stored = _attributes(span, resource or _NO_RESOURCE)
    kind = span.kind if KIND_UNSPECIFIED <= span.kind <= KIND_CONSUMER else KIND_UNSPECIFIED
    method = clean(_text(attrs.get("http.request.method") or attrs.get("http.method")), _MAX_METHOD)
    status_code = _status_code(attrs.get("http.response.status_code", attrs.get("http.status_code")))
    route = attrs.get("http.route")
    if kind == KIND_SERVER and isinstance(route, str):
        endpoint = f"{method} {route}" if method else route
    else:
        endpoint = span.name
    peer = _peer(attrs) if kind == KIND_CLIENT else None
    status = span.status.code
    error = status == STATUS_ERROR or (status != STATUS_OK and status_code is not None and status_code >= 500)
    parent = span.parent_span_id.hex() if any(span.parent_span_id) else None
    start_ns, end_ns = span.start_time_unix_nano, span.end_time_unix_nano
    return (
        span.trace_id.hex(),
        span.span_id.hex(),
        parent,
        service,
        clean(endpoint, _MAX_ENDPOINT) or UNNAMED,
        kind,
        method,
        status_code,
        error,
        start_ns / 1e9,
        (end_ns - start_ns) / 1e6,
        clean(_text(peer), _MAX_PEER),
        *_exception_or_status(span, attrs, error),
        stored,
    )


def iter_spans(request: ExportTraceServiceRequest) -> Iterator[tuple[str, Resource, object]]:
    """(service name, the resource's kept attributes, span) for every span of the request."""
    for rs in request.resource_spans:
        service = service_name(rs.resource)
        resource = resource_attributes(rs.resource)
        for ss in rs.scope_spans:
            for span in ss.spans:
                yield service, resource, span


@dataclass(frozen=True)
class SpanChecks:
    """What live ingest also refuses, span by span (replay applies none: its data keeps its own clock).

    A span from 1970 or 2554 would open a latency incident of centuries and
    escape retention; a span under the product's own service name would let
    anyone forge the demo's telemetry; a span with a million attributes costs
    memory for nothing. Each is rejected alone (partial success), never its batch.
    """

    now: float
    max_age: float = 7 * 86400.0
    max_ahead: float = 3600.0
    max_duration: float = 86400.0
    max_attributes: int = 1_000
    max_events: int = 1_000
    own_services: frozenset[str] = frozenset()

    def why(self, service: str, span) -> str | None:
        if service in self.own_services:
            return f"service.name {service!r} is this product's own (only its recorder writes it)"
        if len(span.attributes) > self.max_attributes:
            return f"more than {self.max_attributes} attributes (AIOPS_OTLP_MAX_ATTRIBUTES)"
        if len(span.events) > self.max_events:
            return f"more than {self.max_events} events (AIOPS_OTLP_MAX_EVENTS)"
        start = span.start_time_unix_nano / 1e9
        if start < self.now - self.max_age:
            return f"start time more than {self.max_age:g}s before now (AIOPS_OTLP_MAX_AGE)"
        if start > self.now + self.max_ahead:
            return f"start time more than {self.max_ahead:g}s after now (AIOPS_OTLP_MAX_AHEAD)"
        if (span.end_time_unix_nano - span.start_time_unix_nano) / 1e9 > self.max_duration:
            return f"duration over {self.max_duration:g}s (AIOPS_OTLP_MAX_DURATION)"
        return None


def to_rows(request: ExportTraceServiceRequest, checks: SpanChecks | None = None) -> Mapped:
    """Map every span of ``request``; invalid ones are counted, not raised."""
    result = Mapped()
    for service, resource, span in iter_spans(request):
        reason = _invalid(span)
        if reason is None and checks is not None:
            reason = checks.why(service, span)
        if reason is not None:
            result.rejected += 1
            result.reasons[reason] += 1
            continue
        result.rows.append(span_row(span, service, resource))
    return result
