"""The OpenAPI description of ``/aiops/rules`` and ``GET /aiops/alerts`` (paths and schemas), added to
the document by :func:`aiops.web.openapi.add_paths`."""

from __future__ import annotations

from aiops.kinds import RuleKind, Severity
from aiops.rules import spec
from aiops.web.openapi import CURSOR, NO_NUL, error, ok, query
from aiops.web.openapi_crud import Words, crud_paths
from aiops.web.openapi_schemas import INTEGER, NUMBER, STRING, STRINGS, TIME, nullable, obj, ref
from aiops.web.openapi_slos import TEXT
from aiops.web.rules import MAX_ALERTS

PRESETS = "; ".join(f"{k}: {p.query} {p.aggregation} > {p.threshold:g}" for k, p in spec.PRESETS.items())
BODY = {
    **obj(("name",),
          name={"type": "string", "minLength": 1, "maxLength": spec.MAX_NAME, "pattern": TEXT},
          kind={"enum": list(spec.KINDS), "default": RuleKind.QUERY.value,
                "description": f"the alerts' anomaly_type; a built-in kind fills in what is left out "
                               f"({PRESETS})"},
          query={"type": "string", "maxLength": 2000, "pattern": NO_NUL,
                 "description": "TraceQL (docs/traceql.md); required for kind query. A query that does not "
                                "parse is a 400 naming its line and column"},
          window_s={"type": "number", "minimum": 1, "maximum": spec.MAX_WINDOW_S, "default": 60,
                    "description": "seconds looked back over"},
          aggregation={"enum": list(spec.AGGREGATIONS),
                       "description": "count: matching traces; rate: their share of the window's traces "
                                      "(0..1); p95: of the matched spans' durations in ms. Left out: the "
                                      "kind's, count for kind query"},
          threshold={"type": "number", "minimum": 0, "maximum": spec.MAX_THRESHOLD,
                     "description": "fires when the aggregate is above it (a rate's: below 1). Left out: "
                                    "the kind's, 0 for kind query (any match fires)"},
          severity={"enum": list(Severity), "default": spec.DEFAULT_SEVERITY.value,
                    "description": "the outbox's rate limit, and a silence's label"},
          webhook_url=nullable({"type": "string", "format": "uri", "maxLength": spec.MAX_URL,
                                "pattern": "^https?://",
                                "description": "http(s) URL the alerts are posted to (none: "
                                               "AIOPS_WEBHOOK_URL); shown masked, and a masked one sent "
                                               "back keeps it"})),
    "additionalProperties": False,
    # A rate is a share (0..1): its threshold is below 1, whether the body names the rate or its
    # kind's preset brings it (spec.check says the same in words).
    "allOf": [
        {"if": {"required": ["aggregation"], "properties": {"aggregation": {"const": "rate"}}},
         "then": {"properties": {"threshold": {"exclusiveMaximum": 1}}}},
        *({"if": {"required": ["kind"], "properties": {"kind": {"const": kind.value}},
                  "not": {"required": ["aggregation"]}},
           "then": {"properties": {"threshold": {"exclusiveMaximum": 1}}}}
          for kind, preset in spec.PRESETS.items() if preset.aggregation == "rate"),
    ],
}
SCHEMAS = {
    "RuleBody": BODY,
    "Rule": obj(
        ("id", "name", "kind", "query", "window_s", "aggregation", "threshold", "severity", "status"),
        id=INTEGER, name=STRING, kind={"enum": list(spec.KINDS)}, query=STRING, window_s=NUMBER,
        aggregation={"enum": list(spec.AGGREGATIONS)}, threshold=NUMBER, severity={"enum": list(Severity)},
        webhook_url=nullable({**STRING, "description": "masked: scheme and host only"}),
        source={"enum": ["api", "config"]}, created_at=TIME, updated_at=TIME, evaluated_at=nullable(TIME),
        status={"enum": ["pending", "ok", "firing", "failed"]}, value=nullable(NUMBER),
        last_error=nullable(STRING)),
    "RuleList": obj(("rules",), rules={"type": "array", "items": ref("Rule")}),
    "RuleAlert": obj(
        ("id", "rule", "anomaly_type", "trace_id", "span_name", "duration_ms", "error_message",
         "affected_traces", "total_traces", "timestamp"),
        id=INTEGER, rule=STRING, rule_id=INTEGER, anomaly_type={"enum": list(spec.KINDS)},
        severity={"enum": list(Severity)}, trace_id=nullable(STRING), span_name=nullable(STRING),
        service=nullable(STRING), duration_ms=nullable(NUMBER), error_message=nullable(STRING),
        affected_traces=INTEGER, total_traces=INTEGER, aggregation={"enum": list(spec.AGGREGATIONS)},
        value=NUMBER, threshold=NUMBER, trace_ids=STRINGS, timestamp={**TIME, "description": "first seen"},
        last_seen=TIME, seen={"type": "integer", "description": "evaluations that found these traces"},
        notification={"enum": ["queued", "silenced", "off"]}),
    "RuleAlertList": obj(("alerts", "next"), alerts={"type": "array", "items": ref("RuleAlert")},
                         next=nullable(STRING)),
}
WORDS = Words(name="rule", label="a rule", listed="Every trace-query rule with its last evaluation",
              create="Create a trace-query rule (the worker evaluates it)", created="Created", one="One rule")


def paths() -> dict:
    limit = query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_ALERTS, "default": 50},
                  "alerts per page")
    return {
        **crud_paths("/aiops/rules", "rules", "rule", WORDS),
        "/aiops/alerts": {
            "get": {"summary": "Alerts raised by trace-query rules, newest first",
                    "parameters": [limit, CURSOR],
                    "responses": {**ok(ref("RuleAlertList")), "400": error(400)}},
        },
    }
