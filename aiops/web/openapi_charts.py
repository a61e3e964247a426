"""The OpenAPI description of ``GET /aiops/series`` (:mod:`aiops.web.charts`), added to the
document with :func:`aiops.web.openapi.add_paths`."""

from __future__ import annotations

from aiops.web.incident_queries import MAX_SERVICE_CHARS
from aiops.web.openapi import NO_NUL, error, ok, query
from aiops.web.openapi_schemas import BOOLEAN, INTEGER, NUMBER, STRING, TIME, nullable, obj, ref
from aiops.web.series_queries import MAX_ENDPOINT_CHARS, MAX_INCIDENTS
from telemetry.series import MAX_POINTS, MAX_STEP, TARGET_POINTS

MS = nullable({**NUMBER, "description": "milliseconds; null: no request in the bucket"})
# What telemetry.times.moment takes (it strips whitespace and lowercases the unit first).
MOMENT = {"anyOf": [{"type": "string", "pattern": "^\\s*[0-9]{1,6}[smhdwSMHDW]\\s*$"},
                    {"type": "string", "pattern": "^\\s*[0-9]{1,12}(\\.[0-9]{1,6})?\\s*$"},
                    {"type": "string", "format": "date-time", "maxLength": 64}],
          "description": "a duration back from now (15m, 6h, 7d), epoch seconds or ISO 8601"}
SCHEMAS = {
    "SeriesPoint": obj(
        ("t", "p50_ms", "p95_ms", "baseline_ms", "error_rate", "requests"),
        t={**TIME, "description": "the bucket's start"}, p50_ms=MS, p95_ms=MS,
        baseline_ms=nullable({**NUMBER, "description": "the endpoint's learned baseline (today's on every "
                                                       "point: no history is kept); null: none learned"}),
        error_rate=nullable({**NUMBER, "description": "0..1; null: no request"}),
        requests={**INTEGER, "minimum": 0}),
    "SeriesIncident": obj(
        ("id", "title", "status", "severity", "root", "first_detected", "resolved_at"),
        id=STRING, title=STRING, status=STRING, severity=STRING,
        root={**BOOLEAN, "description": "the endpoint is the incident's root cause (else: affected)"},
        first_detected=TIME, resolved_at=nullable(TIME)),
    "Series": obj(
        ("service", "endpoint", "since", "until", "step", "sample_every", "baseline", "points", "incidents"),
        service=STRING, endpoint=STRING, since=TIME, until=TIME,
        step={**INTEGER, "minimum": 1, "description": "seconds per point"},
        sample_every={**NUMBER, "minimum": 1, "description": "spans each duration read for the percentiles "
                                                             "stands for (1: exact)"},
        baseline=nullable(obj(("latency_ms", "slow_above_ms", "error_rate", "ready", "learned_at"),
                              latency_ms=NUMBER, slow_above_ms=NUMBER, error_rate=NUMBER, ready=BOOLEAN,
                              learned_at=nullable(TIME))),
        points={"type": "array", "maxItems": MAX_POINTS, "items": ref("SeriesPoint")},
        incidents={"type": "array", "maxItems": MAX_INCIDENTS, "items": ref("SeriesIncident")}),
}


def paths() -> dict:
    return {
        "/aiops/series": {"get": {
            "summary": "One endpoint over time: p50/p95 latency, error rate and requests per step, its "
                       "baseline and the incidents in the range",
            "description": f"At most {MAX_POINTS} points: without 'step' one is chosen for at most "
                           f"{TARGET_POINTS}; a step giving more is a 400 naming the least step. Answers an "
                           "ETag; with If-None-Match it is a 304 until the next detection cycle.",
            "parameters": [
                query("service", {"type": "string", "minLength": 1, "maxLength": MAX_SERVICE_CHARS,
                                  "pattern": NO_NUL}, "the service", required=True),
                query("endpoint", {"type": "string", "minLength": 1, "maxLength": MAX_ENDPOINT_CHARS,
                                   "pattern": NO_NUL}, "the endpoint (span name)", required=True),
                query("since", {**MOMENT, "default": "1h"}, "the range's start"),
                query("until", MOMENT, "the range's end; default: now"),
                query("step", {"type": "string", "pattern": "^\\s*[1-9][0-9]{0,4}[sSmMhHdD]?\\s*$"},
                      f"seconds (300) or a duration (5m), 1 s to {MAX_STEP} s; at most {MAX_POINTS} "
                      "points over the range"),
            ],
            "responses": {**ok(ref("Series")),
                          "304": {"description": "Not modified since the ETag given in If-None-Match"},
                          "400": error(400, "A parameter is missing or not what it must be (the message "
                                            "names it and what it expected)")},
        }},
    }
