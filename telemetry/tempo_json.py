"""Stored spans in the JSON shapes of Grafana Tempo's HTTP API. Pure: rows in, dicts out.

- :func:`search_trace`: one entry of ``GET /api/search``'s ``traces`` (``traceID``,
  ``rootServiceName``, ``rootTraceName``, ``startTimeUnixNano``, ``durationMs``, and the matched
  spans as ``spanSet`` and ``spanSets``), as Tempo's API documentation shows it;
- :func:`trace_batches`: ``GET /api/traces/<id>``'s answer, ``{"batches": [ResourceSpans...]}``:
  OTLP/JSON grouped by service, as Tempo answers it. Like Tempo's own answer (grafana/tempo#5437) the
  ids are base64, the protobuf JSON mapping's encoding of bytes, not OTLP/JSON's hex; enums are their
  names (``SPAN_KIND_SERVER``) and 64-bit integers strings. That is exactly protobuf's JSON mapping of
  OTLP's ``TracesData`` (with ``batches`` for ``resourceSpans``), so :func:`trace_protobuf` is the
  same answer parsed by protobuf's own JSON parser: what Tempo sends for ``Accept:
  application/protobuf`` (its ``Trace`` message has the resource spans as field 1, as ``TracesData``).

Checked against Tempo's documentation, not against a running Tempo.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from telemetry.traceql import nodes
from telemetry.traceql.evaluate import TraceFacts, field_value, kind_name, route_of

NO_ROOT = "<root span not yet received>"  # what Tempo names a trace whose root span is missing


def _ns(seconds: float) -> int:
    """Epoch nanoseconds of a stored time: a double of epoch seconds holds microseconds, no finer."""
    return round(seconds * 1e6) * 1000


def any_value(value) -> dict:
    """An OTLP ``AnyValue`` in the protobuf JSON mapping (an int64 is a string)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _attribute(key: str, value) -> dict:
    return {"key": key, "value": any_value(value)}


def _shown(fields: Sequence[nodes.Field]) -> list[tuple[nodes.Field, str]]:
    """The queried fields a search shows per matched span, with their key: attributes by name,
    ``status`` and ``kind``; not ``name`` and ``duration`` (the span entry has those already)."""
    out = []
    for field in fields:
        if not field.intrinsic:
            out.append((field, field.name))
        elif field.name in ("status", "kind"):
            out.append((field, field.name))
    return out


def search_span(span, facts: TraceFacts, shown: list[tuple[nodes.Field, str]]) -> dict:
    attributes = []
    for field, key in shown:
        value = field_value(field, span, facts)
        if value is not None:
            attributes.append(_attribute(key, value))
    entry = {"spanID": span.span_id, "name": span.endpoint,
             "startTimeUnixNano": str(_ns(span.start_time)),
             "durationNanos": str(int(round(span.duration_ms * 1e6)))}
    if attributes:
        entry["attributes"] = attributes
    return entry


def search_trace(facts: TraceFacts, matched: Sequence, fields: Sequence[nodes.Field],
                 spans_per_set: int) -> dict:
    """One trace of a search answer; ``matched`` are the spans the query selected (at most
    ``spans_per_set`` shown, ``matched`` counts all)."""
    shown = _shown(fields)
    spanset = {"spans": [search_span(s, facts, shown) for s in matched[:spans_per_set]],
               "matched": len(matched)}
    entry = {"traceID": facts.trace_id,
             "rootServiceName": facts.root.service if facts.root is not None else NO_ROOT,
             "startTimeUnixNano": str(_ns(facts.start_time)),
             "durationMs": int(round(facts.duration_ms))}
    if facts.root is not None:
        entry["rootTraceName"] = facts.root.endpoint
    entry["spanSet"] = spanset  # older clients read the first spanset here
    entry["spanSets"] = [spanset]
    return entry


def _id(hex_id: str | None) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode("ascii") if hex_id else ""


def _span_attributes(span, stored: dict) -> list[dict]:
    found = {**stored, "http.request.method": span.method, "http.response.status_code": span.status_code,
             "http.route": route_of(span) or stored.get("http.route"), "peer.service": span.peer}
    return [_attribute(key, value) for key, value in found.items() if value is not None]


def otlp_span(span, stored: dict | None = None) -> dict:
    """One stored span as an OTLP/JSON ``Span`` (Tempo's encoding: base64 ids); ``stored``: its
    ``attributes`` column, decoded (the span's and its resource's, shown as span attributes)."""
    end = span.start_time + span.duration_ms / 1000.0
    out = {"traceId": _id(span.trace_id), "spanId": _id(span.span_id), "name": span.endpoint,
           "kind": f"SPAN_KIND_{kind_name(span).upper()}",
           "startTimeUnixNano": str(_ns(span.start_time)), "endTimeUnixNano": str(_ns(end)),
           "attributes": _span_attributes(span, stored or {}), "status": {}}
    if span.parent_span_id:
        out["parentSpanId"] = _id(span.parent_span_id)
    if span.error:
        out["status"] = {"code": "STATUS_CODE_ERROR"}
        if span.exception_message:
            out["status"]["message"] = span.exception_message
    if span.exception_type or span.exception_message:
        event = [(k, v) for k, v in (("exception.type", span.exception_type),
                                     ("exception.message", span.exception_message),
                                     ("exception.stacktrace", span.exception_stack)) if v]
        out["events"] = [{"timeUnixNano": str(_ns(end)), "name": "exception",
                          "attributes": [_attribute(k, v) for k, v in event]}]
    return out


def trace_batches(spans: Sequence, attributes: dict[str, dict] | None = None) -> dict:
    """``{"batches": [...]}``: one ``ResourceSpans`` per service, in the order services appear;
    ``attributes``: span id -> stored attributes (:func:`telemetry.span_attrs.of_trace`)."""
    attributes = attributes or {}
    by_service: dict[str, list[dict]] = {}
    for span in spans:
        by_service.setdefault(span.service, []).append(otlp_span(span, attributes.get(span.span_id)))
    return {"batches": [
        {"resource": {"attributes": [_attribute("service.name", service)]},
         "scopeSpans": [{"scope": {}, "spans": found}]}
        for service, found in by_service.items()
    ]}


def trace_protobuf(spans: Sequence, attributes: dict[str, dict] | None = None) -> bytes:
    """The trace as a serialized OTLP ``TracesData`` (wire-compatible with Tempo's ``Trace``)."""
    from google.protobuf import json_format
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    data = {"resourceSpans": trace_batches(spans, attributes)["batches"]}
    return json_format.ParseDict(data, TracesData()).SerializeToString()
