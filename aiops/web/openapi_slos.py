"""The OpenAPI description of ``/aiops/slos`` (paths and schemas), added to the document by
:func:`aiops.web.openapi.add_paths` (a module of its own, like the demo's)."""

from __future__ import annotations

from aiops.slos import rules, spec
from aiops.web.openapi_crud import Words, crud_paths
from aiops.web.openapi_schemas import NUMBER, STRING, TIME, nullable, obj, ref

TEXT = "^[^\\u0000-\\u001f\\u007f]*$"  # no control characters (a 400)
WINDOW_RATES = obj(tuple(rules.WINDOWS), **dict.fromkeys(rules.WINDOWS, NUMBER))
WINDOW_RATES["description"] = "burn rate per alert window: 1 spends the budget exactly over the SLO period"


NONE = {"type": "null", "description": "not for this SLI"}
THRESHOLD = {"type": "number", "exclusiveMinimum": 0, "maximum": spec.MAX_THRESHOLD_MS,
             "description": "a good request finishes within it"}
MIN_RPS = {"type": "number", "exclusiveMinimum": 0, "maximum": spec.MAX_RPS,
           "description": "a good minute serves at least this many requests a second"}


def _variant(sli: str, threshold: dict, min_rps: dict) -> dict:
    """The body of one SLI: ``threshold_ms`` belongs to latency, ``min_rps`` to throughput."""
    required = ["name", "service", "sli", "objective"]
    required += ["threshold_ms"] if threshold is THRESHOLD else ["min_rps"] if min_rps is MIN_RPS else []
    schema = obj(
        required,
        name={"type": "string", "minLength": 1, "maxLength": spec.MAX_NAME, "pattern": TEXT},
        service={"type": "string", "minLength": 1, "maxLength": spec.MAX_SERVICE, "pattern": TEXT},
        endpoint=nullable({"type": "string", "maxLength": spec.MAX_ENDPOINT, "pattern": TEXT,
                           "description": "null, empty or absent: the whole service"}),
        sli={"const": sli},
        objective={"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 100,
                   "description": "percent of good events, e.g. 99.9"},
        threshold_ms=threshold, min_rps=min_rps,
        window_days={"type": "integer", "minimum": 1, "maximum": spec.MAX_WINDOW_DAYS, "default": 30},
    )
    schema["additionalProperties"] = False
    return schema


SCHEMAS = {
    "SloBody": {"oneOf": [_variant("availability", NONE, NONE), _variant("latency", THRESHOLD, NONE),
                          _variant("throughput", NONE, MIN_RPS)]},
    "Slo": obj(
        ("id", "name", "service", "endpoint", "sli", "objective", "window_days", "status",
         "budget_remaining", "burn_rates", "history"),
        id={"type": "integer"}, name=STRING, service=STRING, endpoint=nullable(STRING),
        sli={"enum": list(spec.SLIS)}, objective=NUMBER, threshold_ms=nullable(NUMBER),
        min_rps=nullable(NUMBER), window_days={"type": "integer"},
        source={"enum": ["api", "config"]}, created_at=TIME, updated_at=TIME, evaluated_at=nullable(TIME),
        status={"enum": list(rules.STATUSES)}, error_budget=NUMBER,
        budget_remaining=nullable({"type": "number", "description": "share of the period's budget left "
                                                                    "(below 0: overspent)"}),
        burn_rates=WINDOW_RATES,
        history={"type": "array", "items": ref("SloDay"), "description": "30 UTC days, oldest first"},
    ),
    "SloDay": obj(("date", "good", "total", "compliance", "met"), date={"type": "string", "format": "date"},
                  good={"type": "integer"}, total={"type": "integer"}, compliance=nullable(NUMBER),
                  met=nullable({"type": "boolean"})),
    "SloList": obj(("slos",), slos={"type": "array", "items": ref("Slo")}),
}

WORDS = Words(name="SLO", label="an SLO",
              listed="Every SLO with its status, burn rates, budget and daily history",
              create="Create an SLO", created="Created (and judged at once)", one="One SLO")


def paths() -> dict:
    return crud_paths("/aiops/slos", "slos", "slo", WORDS)
