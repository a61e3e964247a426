"""OTLP request bodies (protobuf or OTLP/JSON) -> the official messages. Pure logic (no Flask).

Decoding uses the official messages (``opentelemetry-proto``) and
``google.protobuf.json_format``; nothing here parses protobuf by hand. The one
thing ``json_format`` cannot do is OTLP/JSON's ids: the OTLP spec encodes
``traceId``/``spanId``/``parentSpanId`` as hex strings where proto3 JSON
expects base64, so :func:`parse_json` rewrites them before ``ParseDict``.
Enums may be integers or names and 64-bit integers strings or numbers, as
proto3 JSON allows; unknown fields are ignored, as the OTLP spec requires.
Invalid UTF-8 or lone surrogates become U+FFFD (:mod:`telemetry.otlp.strings`),
so one bad string never costs its batch.
"""

from __future__ import annotations

import base64
import binascii
import json

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from telemetry.otlp.errors import OtlpError
from telemetry.otlp.strings import SURROGATE_ESCAPE, repair_surrogates, repair_utf8

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
CONTENT_TYPES = (PROTOBUF, JSON)

# An id that was not valid hex in OTLP/JSON: decodes to 1 byte, so the span is rejected.
_BAD_ID = base64.b64encode(b"\xff").decode()


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
    return message_from_json(load_json(body, object_hook), message_type)


def json_kind(doc) -> type:
    """Which request an OTLP/JSON document is, told apart by content: ``resourceLogs``, ``resourceMetrics``,
    else a trace request."""
    if isinstance(doc, dict):
        if "resourceLogs" in doc or "resource_logs" in doc:
            return ExportLogsServiceRequest
        if "resourceMetrics" in doc or "resource_metrics" in doc:
            return ExportMetricsServiceRequest
    return ExportTraceServiceRequest


def parse_json_any(body: bytes | str):
    """A trace, logs or metrics request, told apart by content (:func:`json_kind`), as replay needs."""
    doc = load_json(body)
    return message_from_json(doc, json_kind(doc))


def load_json(body: bytes | str, object_hook=None):
    """JSON text (UTF-8 bytes or str) -> Python objects, invalid UTF-8 and lone surrogates repaired;
    :class:`OtlpError` when it is not JSON. ``object_hook`` sees every object as it is built."""
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


def message_from_json(doc, message_type=ExportTraceServiceRequest):
    """A loaded OTLP/JSON document (hex ids, as :func:`load_json` returns it) -> the message;
    :class:`OtlpError` when it does not have the message's shape."""
    name = message_type.DESCRIPTOR.name
    if not isinstance(doc, dict):
        raise OtlpError(f"body must be a JSON object (an {name})")
    misplaced = _not_a_message(doc, message_type)
    if misplaced is not None:
        raise OtlpError(f"body is not a valid {name} (JSON): {misplaced} must be an object")
    if message_type is ExportMetricsServiceRequest:
        _drop_exemplars(doc)
    else:
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


_METRIC_DATA = ("gauge", "sum", "histogram", "exponentialHistogram", "exponential_histogram", "summary")


def _drop_exemplars(doc: dict) -> None:
    """Drop metric points' exemplars (in place): nothing downstream reads them, and their hex trace
    ids would need the spans' rewrite to decode."""
    for rm in _items(doc, "resourceMetrics", "resource_metrics"):
        for sm in _items(rm, "scopeMetrics", "scope_metrics") if isinstance(rm, dict) else ():
            for metric in _items(sm, "metrics") if isinstance(sm, dict) else ():
                for data in (metric.get(k) for k in _METRIC_DATA) if isinstance(metric, dict) else ():
                    for point in _items(data, "dataPoints", "data_points") if isinstance(data, dict) else ():
                        if isinstance(point, dict):
                            point.pop("exemplars", None)


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
