"""The OpenAPI description of Tempo's query API (``/api/search``, ``/api/traces/{trace_id}``), added
to the document with :func:`aiops.web.openapi.add_paths`. The shapes are Tempo's documented ones
(:mod:`telemetry.tempo_json`)."""

from __future__ import annotations

from aiops.web.openapi import JSON, NO_NUL, error, ok, query
from aiops.web.openapi_schemas import INTEGER, STRING, obj, ref
from aiops.web.tempo_api import DEFAULT_LIMIT, DEFAULT_SPSS, MAX_LIMIT, MAX_SPSS, PROTOBUF
from telemetry.traceql import MAX_QUERY_CHARS

NANOS = {"type": "string", "pattern": "^[0-9]+$", "description": "nanoseconds, as a decimal string"}
SECONDS = {"type": "string", "pattern": "^[0-9]{1,12}(\\.[0-9]{1,9})?$"}
ANY_VALUE = {"type": "object", "description": "an OTLP AnyValue (stringValue, intValue as a string, "
                                              "doubleValue or boolValue)"}
KEY_VALUE = obj(("key", "value"), key=STRING, value=ref("TempoAnyValue"))
ATTRIBUTES = {"type": "array", "items": ref("TempoKeyValue")}
SPANSET = obj(("spans", "matched"), matched={**INTEGER, "description": "spans of the trace that matched"},
              spans={"type": "array", "items": obj(
                  ("spanID", "name", "startTimeUnixNano", "durationNanos"),
                  spanID=STRING, name=STRING, startTimeUnixNano=NANOS, durationNanos=NANOS,
                  attributes={**ATTRIBUTES, "description": "the queried fields' values on this span"})})
SCHEMAS = {
    "TempoAnyValue": ANY_VALUE,
    "TempoKeyValue": KEY_VALUE,
    "TempoSpanSet": SPANSET,
    "TempoSearch": obj(
        ("traces", "metrics"),
        traces={"type": "array", "items": obj(
            ("traceID", "rootServiceName", "startTimeUnixNano", "durationMs", "spanSet", "spanSets"),
            traceID=STRING,
            rootServiceName={**STRING, "description": "'<root span not yet received>' without a root"},
            rootTraceName=STRING, startTimeUnixNano=NANOS, durationMs=INTEGER,
            spanSet=ref("TempoSpanSet"), spanSets={"type": "array", "items": ref("TempoSpanSet")})},
        metrics=obj(("inspectedTraces", "inspectedSpans"), inspectedTraces=INTEGER, inspectedSpans=INTEGER),
    ),
    "TempoSpan": obj(
        ("traceId", "spanId", "name", "kind", "startTimeUnixNano", "endTimeUnixNano"),
        traceId={**STRING, "description": "base64, as Tempo answers"}, spanId=STRING, parentSpanId=STRING,
        name=STRING, kind={**STRING, "pattern": "^SPAN_KIND_[A-Z]+$"}, startTimeUnixNano=NANOS,
        endTimeUnixNano=NANOS, attributes=ATTRIBUTES, status={"type": "object"}, events={"type": "array"}),
    "TempoTrace": obj(("batches",), batches={"type": "array", "items": obj(
        ("resource", "scopeSpans"), resource=obj(("attributes",), attributes=ATTRIBUTES),
        scopeSpans={"type": "array", "items": obj(("spans",), scope={"type": "object"},
                                                  spans={"type": "array", "items": ref("TempoSpan")})})}),
}
_WHEN = "unix epoch seconds"


def paths() -> dict:
    return {
        "/api/search": {"get": {
            "summary": "Tempo's trace search: traces matching a TraceQL query, newest first",
            "description": "The TraceQL subset of docs/traceql.md. A query that does not parse is a 400 "
                           "whose message gives its line and column. Tempo's tag-based search "
                           "(tags=) is not supported (a 400).",
            "parameters": [
                query("q", {"type": "string", "maxLength": MAX_QUERY_CHARS, "pattern": NO_NUL,
                            "default": "{}"},
                      "a TraceQL query, e.g. { resource.service.name = \"shop\" && status = error }"),
                query("start", SECONDS, f"{_WHEN}; default: an hour before end"),
                query("end", SECONDS, f"{_WHEN}; default: now"),
                query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                                "default": DEFAULT_LIMIT}, "traces at most"),
                query("spss", {"type": "integer", "minimum": 1, "maximum": MAX_SPSS, "default": DEFAULT_SPSS},
                      "spans shown per spanset"),
            ],
            "responses": {"200": {**ok(ref("TempoSearch"))["200"], "links": {"trace": {
                              "operationId": "tempo.trace",
                              "parameters": {"trace_id": "$response.body#/traces/0/traceID"}}}},
                          "400": error(400, "A bad parameter, or a query that does not parse (the "
                                            "message gives the line and column)")},
        }},
        "/api/traces/{trace_id}": {"get": {
            "summary": "Tempo's trace by id: the trace as OTLP/JSON batches",
            "parameters": [{"name": "trace_id", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{1,32}$"},
                            "description": "hex; shorter ids are padded with zeros on the left"}],
            "responses": {"200": {"description": "The trace: OTLP JSON, or with Accept: application/"
                                                 "protobuf a serialized OTLP TracesData (Tempo's Trace)",
                                  "content": {JSON: {"schema": ref("TempoTrace")},
                                              PROTOBUF: {"schema": {"type": "string", "format": "binary"}}}},
                          "400": error(400, "Not 1 to 32 hex digits"),
                          "404": error(404, "No span of this trace is stored")},
        }},
    }
