"""The OpenAPI description of ``POST /v1/metrics`` (:mod:`telemetry.ingest`) and
``GET /aiops/metrics/points`` (:mod:`aiops.web.metric_queries`), added to the document with
:func:`aiops.web.openapi.add_paths`."""

from __future__ import annotations

from aiops.web.metric_queries import DEFAULT_LIMIT, MAX_CHARS, MAX_LIMIT
from aiops.web.openapi import CURSOR, LOG_TIME, NO_NUL, _ingest, error, ok, query
from aiops.web.openapi_schemas import INTEGER, NUMBER, STRING, TIME, nullable, obj, ref

SCHEMAS = {
    "OtlpMetrics": {
        "type": "object",
        "description": "ExportMetricsServiceRequest in OTLP/JSON (int64 as strings or numbers)",
        "properties": {
            "resourceMetrics": {
                "type": ["array", "null"],
                "items": {"type": "object"},
                "description": "null, as in proto3 JSON, is an empty list",
            }
        },
    },
    "OtlpMetricsResponse": {
        "type": "object",
        "description": "ExportMetricsServiceResponse: empty on full success",
        "properties": {
            "partialSuccess": obj((), rejectedDataPoints={"type": ["string", "integer"]}, errorMessage=STRING)
        },
    },
    "MetricPoint": obj(
        ("id", "time", "timestamp", "service", "pod", "host", "name", "attributes", "value"),
        id=INTEGER,
        time={**TIME, "description": "ISO 8601 UTC with milliseconds"},
        timestamp={**NUMBER, "description": "epoch seconds"},
        service=STRING,
        pod=nullable({**STRING, "description": "the resource's k8s.pod.name"}),
        host=nullable({**STRING, "description": "the resource's host.name"}),
        name={
            **STRING,
            "description": "the metric's name, or a series derived from it (<name>.rate, "
            "<name>.count, <name>.sum, <name>.p50/.p95/.p99)",
        },
        attributes={"type": "object", "description": "the point's own attributes (its series)"},
        value=NUMBER,
    ),
    "MetricPointList": obj(
        ("points", "next"),
        points={"type": "array", "items": ref("MetricPoint")},
        next=nullable({**STRING, "description": "cursor of the next page"}),
    ),
}


def _text(name: str, what: str) -> dict:
    return query(name, {"type": "string", "maxLength": MAX_CHARS, "pattern": NO_NUL}, what)


def paths() -> dict:
    return {
        "/v1/metrics": _ingest("metric", "data points", "OtlpMetrics", "OtlpMetricsResponse"),
        "/aiops/metrics/points": {
            "get": {
                "summary": "Stored metric points, newest first, filtered and paged",
                "parameters": [
                    query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                        f"points per page (default {DEFAULT_LIMIT})",
                    ),
                    _text("service", "only this service's"),
                    _text("pod", "only this pod's (k8s.pod.name)"),
                    _text("host", "only this host's (host.name)"),
                    _text("name", "only this metric (exact), or names starting with it when it ends in *"),
                    query(
                        "from", LOG_TIME, "from this time: epoch seconds or ISO 8601 (UTC without an offset)"
                    ),
                    query("to", LOG_TIME, "up to this time (same forms)"),
                    {**CURSOR, "description": "the 'next' value of the previous page"},
                ],
                "responses": {**ok(ref("MetricPointList")), "400": error(400)},
            }
        },
    }
