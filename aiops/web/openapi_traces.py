"""The OpenAPI description of ``GET /aiops/traces``, added to the document by
:func:`aiops.web.openapi.add_paths`."""

from __future__ import annotations

from aiops.web import traces
from aiops.web.incident_queries import ATTR_PATTERN, MAX_ATTR_CHARS
from aiops.web.openapi import CURSOR, EMPTY, MOMENT, NO_NUL, error, ok, query
from aiops.web.openapi_schemas import BOOLEAN, INTEGER, NUMBER, STRING, nullable, obj, ref

_MS = {"anyOf": [{"type": "number", "minimum": 0, "maximum": traces.MAX_MS}, EMPTY]}
SCHEMAS = {
    "TraceSummary": obj(
        ("trace_id", "root_service", "root_endpoint", "start", "duration_ms", "spans", "error"),
        trace_id={"type": "string", "pattern": "^[0-9a-f]{32}$"},
        root_service={**STRING, "description": "the root span's service (no root: the earliest span's)"},
        root_endpoint=STRING,
        start={"type": "string", "format": "date-time", "description": "the earliest span's start (UTC)"},
        duration_ms={**NUMBER, "description": "from the earliest start to the latest end"},
        spans=INTEGER, error={**BOOLEAN, "description": "a span of it failed"}),
    "TracePage": obj(("traces", "next"), traces={"type": "array", "items": ref("TraceSummary")},
                     next=nullable({**STRING, "description": "pass back as ?cursor= for the next page"})),
}


def paths() -> dict:
    return {"/aiops/traces": {"get": {
        "summary": "Traces with a span that matches every filter, newest first",
        "parameters": [
            query("service", {"type": "string", "maxLength": traces.MAX_SERVICE_CHARS, "pattern": NO_NUL},
                  "the span's service"),
            query("endpoint", {"type": "string", "maxLength": traces.MAX_ENDPOINT_CHARS, "pattern": NO_NUL},
                  "the span's name"),
            query("min_ms", _MS, "the span took at least this long"),
            query("max_ms", _MS, "the span took at most this long"),
            query("errors", {"type": "string", "enum": [*traces.TRUE, *traces.FALSE]}, "1: the span failed"),
            query("since", MOMENT, f"a duration back from now (15m, 6h, 7d) or a time; default "
                                   f"{traces.DEFAULT_SINCE}"),
            query("until", MOMENT, "as since; default now"),
            query("attr", {"type": "string", "maxLength": MAX_ATTR_CHARS, "pattern": ATTR_PATTERN},
                  "the span's stored attribute (its own or its resource's) has this value: key:value"),
            query("trace_id", {"type": "string", "pattern": "^([0-9a-fA-F]{32})?$"},
                  "that trace, whatever the time range"),
            query("limit", {"type": "integer", "minimum": 1, "maximum": traces.MAX_LIMIT,
                            "default": traces.DEFAULT_LIMIT}, "traces per page"),
            CURSOR,
        ],
        "responses": {**ok(ref("TracePage")), "400": error(400)},
    }}}
