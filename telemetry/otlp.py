"""OTLP trace payloads -> span rows. Pure logic: bytes in, tuples out (no Flask).

Decoding uses the official messages (``opentelemetry-proto``) and
``google.protobuf.json_format``; nothing here parses protobuf by hand. The one
thing ``json_format`` cannot do is OTLP/JSON's ids: the OTLP spec encodes
``traceId``/``spanId``/``parentSpanId`` as hex strings where proto3 JSON
expects base64, so :func:`parse_json` rewrites them before ``ParseDict``.
Enums may be integers or names and 64-bit integers strings or numbers, as
proto3 JSON allows; unknown fields are ignored, as the OTLP spec requires.

How a span becomes a row (``telemetry.models.SPAN_FIELDS`` order):

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
- ``peer`` (CLIENT spans only): ``peer.service``, else ``server.address``,
  else ``net.peer.name``: the service or host called;
- ``exception_*``: from the span's last ``exception`` event;
- ``start_time`` in epoch seconds, ``duration_ms`` from start and end.

A span that cannot be stored is *rejected* (counted, with a reason) while the
rest of its batch is kept: a trace id that is not 16 bytes (32 hex digits) or
is all zero, a span id that is not 8 bytes or is all zero, a parent span id
that is neither empty nor 8 bytes, a missing start time, an end before the
start. Live ingest adds :class:`SpanChecks` (times far from now, absurd
durations, too many attributes or events, the product's own service name);
replay does not. Strings are cut to their column sizes and NUL characters
dropped, and invalid UTF-8 or lone surrogates become U+FFFD
(:mod:`telemetry.otlp_strings`), so a batch that decoded never fails in the
database for its content, and one bad string never costs its batch.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from telemetry.columns import KIND_CLIENT, KIND_CONSUMER, KIND_SERVER, KIND_UNSPECIFIED
from telemetry.otlp_strings import SURROGATE_ESCAPE, repair_surrogates, repair_utf8

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
CONTENT_TYPES = (PROTOBUF, JSON)

UNKNOWN_SERVICE = "unknown_service"
UNNAMED = "<unnamed>"
STATUS_OK, STATUS_ERROR = 1, 2  # opentelemetry.proto.trace.v1.Status.StatusCode

# Column sizes of telemetry.models.Span (PostgreSQL enforces them).
_MAX_SERVICE, _MAX_ENDPOINT, _MAX_METHOD, _MAX_PEER, _MAX_EXC_TYPE = 255, 512, 16, 512, 255
_MAX_TEXT = 32 * 1024  # exception message and stack: enough to read, bounded to store

_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_WANTED = frozenset({
    "http.route",
    "http.response.status_code", "http.status_code",
    "http.request.method", "http.method",
    "peer.service", "server.address", "net.peer.name",
})
_EXCEPTION_KEYS = frozenset({"exception.type", "exception.message", "exception.stacktrace"})
# An id that was not valid hex in OTLP/JSON: decodes to 1 byte, so the span is rejected.
_BAD_ID = base64.b64encode(b"\xff").decode()


class OtlpError(ValueError):
    """The payload cannot be decoded: the whole request is bad (HTTP 400)."""


class PayloadTooLarge(OtlpError):
    """The (decompressed) payload is over the configured limit (HTTP 413)."""


class Overloaded(OtlpError):
    """The process is decoding all it may at once (HTTP 503: the exporter retries later)."""


OVERLOADED = "the server is decoding all it may at once (AIOPS_OTLP_INFLIGHT_BYTES); retry later"


# -- bodies -------------------------------------------------------------------------


def read_body(chunks: Iterable[bytes], *, coding: str | None, limit: int,
              reserve: Callable[[int], bool] | None = None) -> bytes:
    """Join a body read in chunks, decompressing it on the way, at most ``limit`` bytes.

    ``coding`` is the Content-Encoding: ``gzip``, ``deflate`` (zlib format, as
    HTTP defines it and the Python exporter sends it) or None. The limit
    applies to the decompressed size and is checked as the data streams, so a
    small "gzip bomb" stops at ``limit`` bytes of output, never fully inflated.
    ``reserve(n)`` is asked for every ``n`` bytes the body grows by (the
    process's in-flight budget); a False raises :class:`Overloaded`.
    Raises :class:`PayloadTooLarge` or :class:`OtlpError`.
    """
    out = _Growing(reserve)
    if coding is None:
        for chunk in chunks:
            out.add(chunk)
            if len(out.data) > limit:
                raise PayloadTooLarge(f"body is over the limit of {limit} bytes (AIOPS_OTLP_MAX_BYTES)")
        return bytes(out.data)

    wbits = _WBITS[coding]
    inflater = zlib.decompressobj(wbits)
    seen_input = False
    try:
        for chunk in chunks:
            data = chunk
            seen_input = seen_input or bool(chunk)
            while data:
                # max_length caps what one call may produce (never 0: 0 means no cap).
                out.add(inflater.decompress(data, limit + 1 - len(out.data)))
                if len(out.data) > limit:
                    raise PayloadTooLarge(f"decompressed body is over the limit of {limit} bytes "
                                          "(AIOPS_OTLP_MAX_BYTES)")
                if inflater.eof:
                    data = inflater.unused_data
                    if data:  # another member follows (concatenated gzip is valid gzip)
                        if coding != "gzip":
                            raise OtlpError(f"body is not valid {coding}: data after the end of the stream")
                        inflater = zlib.decompressobj(wbits)
                else:
                    data = inflater.unconsumed_tail
    except zlib.error as exc:
        raise OtlpError(f"body is not valid {coding}: {exc}") from None
    if seen_input and not inflater.eof:
        raise OtlpError(f"body is not valid {coding}: the stream is truncated")
    return bytes(out.data)


class _Growing:
    """A body being read, asking the in-flight budget for each piece before keeping it."""

    def __init__(self, reserve: Callable[[int], bool] | None):
        self.data = bytearray()
        self.reserve = reserve

    def add(self, piece: bytes) -> None:
        if self.reserve is not None and piece and not self.reserve(len(piece)):
            raise Overloaded(OVERLOADED)
        self.data += piece


# -- decoding -----------------------------------------------------------------------


def parse_protobuf(body: bytes, message_type=ExportTraceServiceRequest):
    """Decode protobuf; a string that is not valid UTF-8 is repaired (U+FFFD), not fatal.

    The strict decoder refuses the whole batch for one bad string, and a 400
    is never retried, so the valid spans (or log records) beside it would be lost.
    ``message_type`` is the request: ``ExportTraceServiceRequest`` or ``ExportLogsServiceRequest``.
    """
    name = message_type.DESCRIPTOR.name
    try:
        return message_type.FromString(body)
    except (DecodeError, RecursionError, ValueError) as exc:
        error = exc
    repaired = repair_utf8(body, message_type)
    if repaired is not None:
        try:
            return message_type.FromString(repaired)
        except (DecodeError, RecursionError, ValueError):
            pass
    raise OtlpError(f"body is not a valid {name} (protobuf): {error}") from None


def parse_json(body: bytes | str, object_hook=None, message_type=ExportTraceServiceRequest):
    """Decode OTLP/JSON (hex ids, enums as integers or names, int64 as strings or numbers).

    Invalid UTF-8 and lone surrogates (``"\\ud800"``) become U+FFFD instead of
    failing the whole batch. ``object_hook`` sees every object as it is
    built (the decoding limits count them).
    """
    return _message(_load_json(body, object_hook), message_type)


def parse_json_any(body: bytes | str):
    """A trace or a logs request, told apart by content (``resourceLogs`` or not), as replay needs."""
    doc = _load_json(body)
    logs = isinstance(doc, dict) and ("resourceLogs" in doc or "resource_logs" in doc)
    return _message(doc, ExportLogsServiceRequest if logs else ExportTraceServiceRequest)


def _load_json(body: bytes | str, object_hook=None):
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8", "replace")
    try:
        doc = json.loads(body, object_hook=object_hook)
    except OtlpError:  # the object hook's limit
        raise
    except (ValueError, RecursionError) as exc:
        raise OtlpError(f"body is not valid JSON: {exc}") from None
    if SURROGATE_ESCAPE.search(body):
        doc = repair_surrogates(doc)
    return doc


def _message(doc, message_type):
    name = message_type.DESCRIPTOR.name
    if not isinstance(doc, dict):
        raise OtlpError(f"body must be a JSON object (an {name})")
    misplaced = _not_a_message(doc, message_type)
    if misplaced is not None:
        raise OtlpError(f"body is not a valid {name} (JSON): {misplaced} must be an object")
    _hex_ids_to_base64(doc, _ID_PATHS[message_type])
    message = message_type()
    try:
        json_format.ParseDict(doc, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise OtlpError(f"body is not a valid {name} (JSON): {exc}") from None
    return message


def _not_a_message(doc: dict, message_type=ExportTraceServiceRequest) -> str | None:
    """The path of the first value that stands where a message belongs but is not an object.

    ``json_format`` with ``ignore_unknown_fields`` reads a string there as a
    mapping of its characters, all unknown fields: ``{"resourceSpans": ["x"]}``
    would be one empty resource and a 200, where a wrong type is a 400.
    """
    todo = [(doc, message_type.DESCRIPTOR, "")]
    while todo:
        value, descriptor, path = todo.pop()
        for fd in descriptor.fields:
            if fd.message_type is None or fd.message_type.GetOptions().map_entry:
                continue
            key = fd.json_name if fd.json_name in value else fd.name
            item = value.get(key)
            # protobuf 7 has is_repeated and no label; older ones have only label
            repeated = fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == fd.LABEL_REPEATED
            if item is None or (repeated and not isinstance(item, list)):  # json_format reports that one
                continue
            for i, sub in enumerate(item if repeated else [item]):
                where = f"{path}.{key}[{i}]" if repeated else f"{path}.{key}"
                if isinstance(sub, dict):
                    todo.append((sub, fd.message_type, where))
                elif sub is not None:
                    return where.lstrip(".")
    return None


def parse(body: bytes, content_type: str, message_type=ExportTraceServiceRequest):
    if not body:
        # A zero-length body is technically an empty protobuf message, but no
        # exporter sends one: it is a client or proxy bug worth a clear 400.
        raise OtlpError(f"empty body: expected an {message_type.DESCRIPTOR.name}")
    if content_type == JSON:
        return parse_json(body, message_type=message_type)
    return parse_protobuf(body, message_type)


def _items(obj: dict, *names: str) -> list:
    for name in names:
        value = obj.get(name)
        if value is not None:
            return value if isinstance(value, list) else []  # json_format reports the type
    return []


def _hex_to_b64(value: str) -> str:
    try:
        return base64.b64encode(binascii.unhexlify(value)).decode()
    except (binascii.Error, ValueError):
        return _BAD_ID


# Where each request keeps its records (JSON and proto names), for the hex id rewrite.
_ID_PATHS = {
    ExportTraceServiceRequest: (("resourceSpans", "resource_spans"), ("scopeSpans", "scope_spans"),
                                ("spans",)),
    ExportLogsServiceRequest: (("resourceLogs", "resource_logs"), ("scopeLogs", "scope_logs"),
                               ("logRecords", "log_records")),
}
_ID_KEYS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")


def _hex_ids_to_base64(doc: dict, paths=_ID_PATHS[ExportTraceServiceRequest]) -> None:
    """Rewrite OTLP/JSON hex ids as the base64 proto3 JSON expects (in place).

    A string that is not hex becomes an id of the wrong length, so that span
    (or log record) alone is rejected. Span links are dropped: nothing downstream reads them.
    """
    (resources, scopes, records) = paths
    for rs in _items(doc, *resources):
        if not isinstance(rs, dict):
            continue
        for ss in _items(rs, *scopes):
            if not isinstance(ss, dict):
                continue
            for record in _items(ss, *records):
                if not isinstance(record, dict):
                    continue
                record.pop("links", None)
                for key in _ID_KEYS:
                    value = record.get(key)
                    if isinstance(value, str):
                        record[key] = _hex_to_b64(value)


def to_json_dict(message: Message) -> dict:
    """A message as OTLP/JSON: proto3 JSON with hex ids and integer enums (for clients and tests)."""
    doc = json_format.MessageToDict(message, use_integers_for_enums=True)

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                    node[key] = base64.b64decode(value).hex()
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(doc)
    return doc


# -- mapping ------------------------------------------------------------------------


@dataclass
class Mapped:
    """The rows of one request, and what was rejected and why."""

    rows: list[tuple] = field(default_factory=list)
    rejected: int = 0
    reasons: Counter = field(default_factory=Counter)
    noun: str = "span"

    @property
    def error_message(self) -> str:
        if not self.rejected:
            return ""
        why = "; ".join(f"{n} x {reason}" for reason, n in self.reasons.most_common())
        return f"{self.rejected} {self.noun}(s) rejected: {why}"


def clean(value: str | None, limit: int) -> str | None:
    if not value:
        return None
    if "\x00" in value:
        value = value.replace("\x00", "")
    if not value.isascii():
        # Lone surrogates (possible from JSON escapes) cannot be stored as UTF-8.
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value[:limit] or None


def scalar(any_value):
    which = any_value.WhichOneof("value")
    if which == "string_value":
        return any_value.string_value
    if which == "int_value":
        return any_value.int_value
    if which == "double_value":
        return any_value.double_value
    if which == "bool_value":
        return any_value.bool_value
    return None


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
        clean(_text(attrs.get("exception.type")), _MAX_EXC_TYPE),
        clean(_text(attrs.get("exception.message")), _MAX_TEXT),
        clean(_text(attrs.get("exception.stacktrace")), _MAX_TEXT),
    )


def service_name(resource) -> str:
    for kv in resource.attributes:
        if kv.key == "service.name":
            name = scalar(kv.value)
            if name not in (None, ""):
                return clean(str(name), _MAX_SERVICE) or UNKNOWN_SERVICE
    return UNKNOWN_SERVICE


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


def span_row(span, service: str) -> tuple:
    """One OTLP ``Span`` (already validated) as a row in ``SPAN_FIELDS`` order."""
    attrs = _wanted_attrs(span.attributes)
    kind = span.kind if KIND_UNSPECIFIED <= span.kind <= KIND_CONSUMER else KIND_UNSPECIFIED
    method = clean(_text(attrs.get("http.request.method") or attrs.get("http.method")), _MAX_METHOD)
    status_code = _status_code(attrs.get("http.response.status_code", attrs.get("http.status_code")))
    route = attrs.get("http.route")
    if kind == KIND_SERVER and isinstance(route, str):
        endpoint = f"{method} {route}" if method else route
    else:
        endpoint = span.name
    peer = None
    if kind == KIND_CLIENT:
        peer = attrs.get("peer.service") or attrs.get("server.address") or attrs.get("net.peer.name")
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
        *_exception(span.events),
    )


def iter_spans(request: ExportTraceServiceRequest) -> Iterator[tuple[str, object]]:
    """(service name, span) for every span of the request."""
    for rs in request.resource_spans:
        service = service_name(rs.resource)
        for ss in rs.scope_spans:
            for span in ss.spans:
                yield service, span


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
    for service, span in iter_spans(request):
        reason = _invalid(span)
        if reason is None and checks is not None:
            reason = checks.why(service, span)
        if reason is not None:
            result.rejected += 1
            result.reasons[reason] += 1
            continue
        result.rows.append(span_row(span, service))
    return result


# -- responses ----------------------------------------------------------------------


def encode(message: Message, content_type: str) -> bytes:
    """``message`` in the request's encoding."""
    if content_type == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


def export_response(mapped: Mapped) -> ExportTraceServiceResponse:
    """An empty response (full success), or a partial success naming what was rejected."""
    if not mapped.rejected:
        return ExportTraceServiceResponse()
    return ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(
            rejected_spans=mapped.rejected, error_message=mapped.error_message
        )
    )


def status_body(code: int, message: str, content_type: str) -> bytes:
    """A ``google.rpc.Status`` (the OTLP/HTTP error body) in the request's encoding."""
    return encode(status_pb2.Status(code=code, message=message), content_type)
