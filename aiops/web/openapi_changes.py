"""The OpenAPI description of ``GET /aiops/changes`` (:mod:`aiops.web.changes`), added to the
document with :func:`aiops.web.openapi.add_paths`."""

from __future__ import annotations

from aiops.detection.changes import MAX_FACTORS
from aiops.web.incident_queries import ATTR_PATTERN, MAX_ATTR_CHARS, MAX_SERVICE_CHARS
from aiops.web.openapi import NO_NUL, error, ok, query
from aiops.web.openapi_charts import MOMENT
from aiops.web.openapi_schemas import BOOLEAN, INTEGER, NUMBER, STRING, TIME, nullable, obj, ref
from aiops.web.series_queries import MAX_ENDPOINT_CHARS
from telemetry.span_attrs import MAX_SPANS

SHARE = {**NUMBER, "minimum": 0, "maximum": 1}
SCHEMAS = {
    "ChangeFactor": obj(
        ("field", "value", "source", "bad_share", "good_share", "bad_count", "good_count", "only_bad"),
        field={
            **STRING,
            "description": "an attribute key (span or resource: k8s.pod.name, host.name, ...), "
            "or status_code, exception_type, peer, caller, endpoint",
        },
        value=STRING,
        source={
            "enum": ["attribute", "span"],
            "description": "attribute: a stored attribute; span: a column or what the trace says",
        },
        bad_share={**SHARE, "description": "share of the bad spans that carry the value"},
        good_share={**SHARE, "description": "share of the normal spans that carry it"},
        bad_count={**INTEGER, "minimum": 0},
        good_count={**INTEGER, "minimum": 0},
        only_bad={**BOOLEAN, "description": "seen only among the bad spans (these come first)"},
    ),
    "Changes": obj(
        (
            "service",
            "endpoint",
            "since",
            "until",
            "attr",
            "spans",
            "sampled",
            "slow_above_ms",
            "bad",
            "good",
            "factors",
            "where",
        ),
        service=STRING,
        endpoint=nullable({**STRING, "description": "null: every endpoint of the service"}),
        since=TIME,
        until=TIME,
        attr=nullable(STRING),
        spans={**INTEGER, "minimum": 0, "maximum": MAX_SPANS, "description": "spans compared"},
        sampled={**BOOLEAN, "description": f"the range held more: the newest {MAX_SPANS} were compared"},
        slow_above_ms=nullable(
            {
                **NUMBER,
                "description": "a span slower than this (the sample's 90th "
                "percentile) is bad, as is an error",
            }
        ),
        bad={**INTEGER, "minimum": 0, "description": "slow or failed spans"},
        good={**INTEGER, "minimum": 0, "description": "the other spans"},
        factors={"type": "array", "maxItems": MAX_FACTORS, "items": ref("ChangeFactor")},
        where={
            "type": "array",
            "items": ref("ChangeFactor"),
            "description": "pod, host, version ... values every bad span carries (even when every span "
            "does: a service with one pod still names it)",
        },
    ),
}


def paths() -> dict:
    return {
        "/aiops/changes": {
            "get": {
                "summary": "What changed: values over-represented among an endpoint's slow or failed spans",
                "description": "Compares the bad spans (errors, and spans above the range's 90th percentile) "
                "with the others, over attribute values (span and resource), status codes, "
                "exception types, peers called and the calling service. Values seen only among "
                f"the bad spans come first, then by bad_share - good_share; at most {MAX_FACTORS}.",
                "parameters": [
                    query(
                        "service",
                        {"type": "string", "minLength": 1, "maxLength": MAX_SERVICE_CHARS, "pattern": NO_NUL},
                        "the service",
                        required=True,
                    ),
                    query(
                        "endpoint",
                        {"type": "string", "maxLength": MAX_ENDPOINT_CHARS, "pattern": NO_NUL},
                        "the endpoint (span name); omitted: every endpoint of the service",
                    ),
                    query("since", {**MOMENT, "default": "1h"}, "the range's start"),
                    query("until", MOMENT, "the range's end; default: now"),
                    query(
                        "attr",
                        {
                            "type": "string",
                            "maxLength": MAX_ATTR_CHARS,
                            "pattern": ATTR_PATTERN,
                        },
                        "only spans whose attribute has this value: key:value (k8s.pod.name:checkout-1)",
                    ),
                ],
                "responses": {
                    **ok(ref("Changes")),
                    "400": error(
                        400,
                        "A parameter is missing or not what it must be (the message "
                        "names it and what it expected)",
                    ),
                },
            }
        },
    }
