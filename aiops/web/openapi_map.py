"""The OpenAPI description of ``GET /aiops/map`` (the service map), added to the document by
:func:`aiops.web.openapi.add_paths`."""

from __future__ import annotations

from aiops.detection.service_map import STATUSES
from aiops.web.incident_queries import MAX_ID_CHARS
from aiops.web.openapi import JSON, MOMENT, NO_NUL, error, query
from aiops.web.openapi_schemas import BOOLEAN, INTEGER, NUMBER, STRING, TIME, nullable, obj, ref

STATS = {
    "calls": {**INTEGER, "description": "calls in the range (estimated when sampled)"},
    "calls_per_s": NUMBER,
    "error_rate": {**NUMBER, "description": "share of failed calls, 0..1"},
    "p95_ms": nullable(NUMBER),
}
STAT_NAMES = ("calls", "calls_per_s", "error_rate", "p95_ms")

SCHEMAS = {
    "MapNode": obj(
        ("id", "service", "endpoint", "external", *STAT_NAMES, "status", "root", "incidents"),
        id={**STRING, "description": "what edges name: the service, the endpoint (one-service systems) "
                                     "or the external peer"},
        service=STRING,
        endpoint=nullable({**STRING, "description": "set when the nodes are one service's endpoints"}),
        external={**BOOLEAN, "description": "a peer seen only through its callers' CLIENT spans"},
        **STATS,
        status={"enum": list(STATUSES)},
        root={**BOOLEAN, "description": "the root cause of an active incident"},
        incidents={"type": "array", "items": STRING,
                   "description": "active incidents it is the root of, then those whose path it is on"},
        endpoints={"type": "array", "description": "a service node's busiest endpoints",
                   "items": obj(("endpoint", *STAT_NAMES), endpoint=STRING, **STATS)},
    ),
    "MapEdge": obj(
        ("caller", "callee", "caller_service", "callee_service", *STAT_NAMES, "traces"),
        caller={**STRING, "description": "a node id"}, callee={**STRING, "description": "a node id"},
        caller_service=STRING, callee_service=STRING, **STATS,
        traces=obj(("service", "endpoint"), service=STRING, endpoint=nullable(STRING)),
    ),
    "MapPath": obj(
        ("incident", "root", "nodes", "edges"),
        incident=STRING,
        root=nullable({**STRING, "description": "the root cause's node (null: not in the range)"}),
        nodes={"type": "array", "items": STRING, "description": "the path's nodes, the root's first"},
        edges={"type": "array", "description": "the calls between two of the path's nodes",
               "items": {"type": "array", "items": STRING, "minItems": 2, "maxItems": 2,
                         "description": "[caller, callee]"}},
    ),
    "ServiceMap": obj(
        ("since", "until", "by", "spans_read", "sampled", "nodes", "edges"),
        since=TIME, until=TIME,
        by={"enum": ["service", "endpoint"], "description": "endpoint: one service, its endpoints as nodes"},
        spans_read={**INTEGER, "description": "spans the map was built from (bounded)"},
        sampled={**BOOLEAN, "description": "the range held more spans than a map reads: rates are estimates"},
        nodes={"type": "array", "items": ref("MapNode")},
        edges={"type": "array", "items": ref("MapEdge")},
        path=ref("MapPath"),  # with ?incident=: its propagation path on this map
    ),
}


def paths() -> dict:
    return {"/aiops/map": {"get": {
        "summary": "The service map: nodes and caller -> callee edges with calls/s, error share and p95",
        "description": "Built from the range's spans (at most a bounded sample). Poll with If-None-Match: "
                       "the ETag changes when a detection cycle finishes or an incident changes.",
        "parameters": [query("since", MOMENT, "start of the range (default 15m, or the incident's)"),
                       query("until", MOMENT, "end of the range (default now, or the incident's)"),
                       query("incident", {"type": "string", "maxLength": MAX_ID_CHARS, "pattern": NO_NUL},
                             "an incident's id: its propagation path (path), over its range unless "
                             "since or until is given")],
        "responses": {
            "200": {"description": "OK", "headers": {"ETag": {"schema": STRING}},
                    "content": {JSON: {"schema": ref("ServiceMap")}}},
            "304": {"description": "Not modified since the ETag given in If-None-Match"},
            "400": error(400, "since or until is not a time or duration (the message says what it "
                              "expected), or the range ends before it starts"),
            "404": error(404, "No incident with this id"),
        },
    }}}
