"""Schemathesis hooks for the live run (``tests/e2e/test_openapi_live.py``), loaded by the CLI
through ``SCHEMATHESIS_HOOKS``; the run's settings come in ``AIOPS_ST_*`` variables.

- A page cursor is opaque: only the server makes valid ones, so any other string is rightly a
  400. The run draws ``?cursor=`` from cursors the server gave out (positive cases get a 200) and
  from everything else (negative cases, which must be a 400).
- Every answer's status is written to ``AIOPS_ST_SEEN`` (``METHOD /path status`` lines).
- Every fault the run injects is cleared right after the call that injected it, so no request
  that follows hangs on a timeout fault, burns CPU in a hog, or fails on purpose. The fault
  endpoints themselves are still exercised with every parameter the document allows.
- A new silence must end in the future and its regexes must compile, which no schema can say: a
  schema-valid ``POST /aiops/silences`` gets times around now (a start before the end) and its
  regex matchers an escaped value (a regex that matches the text). Negative cases are sent as made.
- Likewise a schema-valid ``GET /api/search``, and a schema-valid rule body, get a TraceQL query
  that parses (and a rate a threshold below 1), and ``start`` not
  after ``end``; the ``since`` and ``until`` of ``RANGES``, and ``min_ms`` and ``max_ms``, come in
  order.
  A schema-valid ``GET /aiops/series`` gets a range that ends after it starts and a step that
  gives at most 2,000 points over it.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime

import requests
import schemathesis

CURSORS = {"/aiops/incidents": "incidents", "/aiops/notifications": "notifications", "/aiops/logs": "logs",
           "/aiops/logs/templates": "templates", "/aiops/traces": "traces", "/aiops/alerts": "alerts",
           "/aiops/metrics/points": "metric_points"}
# Paths taking since/until (a duration back or a time), and their default since.
RANGES = {"/aiops/traces": "1h", "/aiops/map": "15m", "/aiops/changes": "1h"}


@schemathesis.hook
def before_load_schema(context, raw_schema: dict) -> None:
    cursors = json.loads(os.environ["AIOPS_ST_CURSORS"])
    for path, name in CURSORS.items():
        for parameter in raw_schema["paths"][path]["get"]["parameters"]:
            if parameter["name"] == "cursor":
                parameter["schema"] = {"type": "string", "enum": [cursors[name]]}


@schemathesis.hook
def after_call(context, case, response) -> None:
    with open(os.environ["AIOPS_ST_SEEN"], "a") as seen:  # what the test reports and checks
        seen.write(f"{case.method.upper()} {case.path} {response.status_code}\n")
    injected = case.path.startswith("/simulate/") and not case.path.endswith("/clear")
    if case.method.upper() == "POST" and injected:
        cleared = requests.post(os.environ["AIOPS_ST_BASE_URL"] + "/simulate/clear", timeout=30,
                                headers={"Authorization": f"Bearer {os.environ['AIOPS_ST_TOKEN']}"})
        cleared.raise_for_status()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Schema-valid text is rarely a query that parses: a positive search gets one of these.
TRACEQL = ["{}", "{ status = error }", '{ resource.service.name = "aiops" && duration > 1ms }',
           '{ span.http.route =~ "/api/.*" } || { kind = client }']


def _valid_search(case) -> None:
    """A positive ``GET /api/search``: a query that parses, and ``start`` not after ``end``."""
    query = case.query if isinstance(case.query, dict) else None
    if query is None:
        return
    if "q" in query:
        query["q"] = TRACEQL[len(str(query["q"])) % len(TRACEQL)]
    start, end = query.get("start"), query.get("end")
    try:
        if start is not None and end is None and float(start) > time.time():
            query["end"] = start  # end's default, now, would be before it
        elif start is not None and end is not None and float(end) < float(start):
            query["start"], query["end"] = end, start
    except (TypeError, ValueError):
        pass


def _valid_range(case, default_since: str) -> None:
    """A positive call with ``since``/``until`` (and ``min_ms``/``max_ms``): a range the server
    takes (checked as it checks it), the pairs swapped when the first would come after the second."""
    from telemetry import times

    query = case.query if isinstance(case.query, dict) else None
    if query is None:
        return
    try:
        if float(query["min_ms"]) > float(query["max_ms"]):
            query["min_ms"], query["max_ms"] = query["max_ms"], query["min_ms"]
    except (KeyError, TypeError, ValueError):
        pass
    if not ({"since", "until"} & set(query)):
        return
    now = time.time()
    for name in ("since", "until"):  # schema-valid, yet no time the server reads: the default
        try:
            times.moment(str(query.get(name) or "0s"), now)
        except ValueError:
            query.pop(name, None)
    try:
        times.time_range(query.get("since"), query.get("until"), now, default_since)
    except ValueError:  # out of order
        query["since"], query["until"] = query.get("until") or "0s", query.get("since") or default_since


def _valid_rule(case) -> None:
    """A positive ``POST /aiops/rules`` or ``PUT /aiops/rules/{id}``: a query that parses (where the
    body has one, or its kind needs one), a rate's threshold below 1."""
    body = case.body
    if not isinstance(body, dict):
        return
    custom = body.get("kind", "query") == "query"
    if "query" in body or custom:
        body["query"] = TRACEQL[len(str(body.get("query"))) % len(TRACEQL)]
    threshold = body.get("threshold")
    if body.get("aggregation") == "rate" and isinstance(threshold, int | float) and threshold >= 1:
        body["threshold"] = 0.5


# Ranges with a step each that fits them (and fits the default range, 1h).
SERIES_RANGES = [("15m", "30s"), ("6h", "5m"), ("7d", "1h")]


def _valid_series(case) -> None:
    """A positive ``GET /aiops/series``: since before until, and a step that fits the range."""
    query = case.query if isinstance(case.query, dict) else None
    if query is None:
        return
    since, step = SERIES_RANGES[len(str(query.get("since", ""))) % len(SERIES_RANGES)]
    for name, value in (("since", since), ("until", "0s"), ("step", step)):
        if name in query:
            query[name] = value


@schemathesis.hook
def before_call(context, case, kwargs) -> None:
    meta = getattr(case, "meta", None)
    positive = meta is None or meta.generation.mode.is_positive
    if positive and case.method.upper() == "GET" and case.path == "/api/search":
        _valid_search(case)
        return
    if positive and case.method.upper() == "GET" and case.path in RANGES:
        _valid_range(case, RANGES[case.path])
        return
    if positive and case.method.upper() in ("POST", "PUT") and case.path.startswith("/aiops/rules"):
        _valid_rule(case)
        return
    if positive and case.method.upper() == "GET" and case.path == "/aiops/series":
        _valid_series(case)
        return
    if not (positive and case.method.upper() == "POST" and case.path == "/aiops/silences"):
        return
    body = case.body
    if not isinstance(body, dict):
        return
    now = time.time()
    if isinstance(body.get("starts_at"), str):
        body["starts_at"] = _iso(now - 60)
    body["ends_at"] = _iso(now + 3600)
    for matcher in body.get("matchers") or []:
        regex = isinstance(matcher, dict) and matcher.get("regex") is True
        if regex and isinstance(matcher.get("value"), str):
            matcher["value"] = re.escape(matcher["value"][:100])
