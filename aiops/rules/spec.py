"""What a rule body may say, pure: a JSON object in, a checked :class:`RuleSpec` out, or
:class:`~aiops.slos.spec.SpecError` naming the first field that is wrong (the API answers a 400).

``{"name", "kind": "query" | "high_latency" | "error_status" | "high_error_rate" ("query"),
"query": TraceQL, "window_s": 60, "aggregation": "count" | "rate" | "p95", "threshold",
"severity": "high", "webhook_url": "https://..." (optional)}``.

A rule fires when its aggregate over the last ``window_s`` seconds is above ``threshold``:

- ``count``: the traces that match the query;
- ``rate``: the share of the window's traces that match (0..1), so its threshold is below 1;
- ``p95``: the 95th percentile of the matched spans' durations, in ms (no match: it does not fire).

A built-in kind is a preset: it fills in the query, aggregation and threshold a body leaves out
(:data:`PRESETS`), and names its alerts' ``anomaly_type`` and what they carry (``duration_ms`` of
the slowest matched span, or ``error_message`` of a failed one). A bad query is refused with the
line and column of the error (:class:`telemetry.traceql.TraceQLError`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from aiops.kinds import RuleKind, Severity
from aiops.slos.spec import SpecError, text
from telemetry import traceql

FIELDS = ("name", "kind", "query", "window_s", "aggregation", "threshold", "severity", "webhook_url")
AGGREGATIONS = ("count", "rate", "p95")
KINDS = tuple(RuleKind)
MAX_NAME, MAX_URL = 255, 2048
DEFAULT_WINDOW_S, MAX_WINDOW_S = 60.0, 86_400.0
MAX_THRESHOLD = 1e12
DEFAULT_SEVERITY = Severity.HIGH


@dataclass(frozen=True)
class Preset:
    query: str
    aggregation: str
    threshold: float


PRESETS = {
    RuleKind.HIGH_LATENCY: Preset("{ duration > 1000ms }", "count", 0.0),
    RuleKind.ERROR_STATUS: Preset("{ status = error }", "count", 0.0),
    RuleKind.HIGH_ERROR_RATE: Preset("{ status = error }", "rate", 0.05),
}


@dataclass(frozen=True)
class RuleSpec:
    name: str
    kind: str
    query: str
    window_s: float
    aggregation: str
    threshold: float
    severity: str
    webhook_url: str | None

    def as_dict(self) -> dict:
        return asdict(self)


def check(body: object) -> RuleSpec:
    """The checked rule, or SpecError for the first wrong field (unknown fields are wrong too)."""
    if not isinstance(body, Mapping):
        raise SpecError("body", 'must be a JSON object like {"name": ..., "query": ..., "threshold": ...}')
    unknown = sorted(str(k) for k in body if k not in FIELDS)
    if unknown:
        raise SpecError(unknown[0][:40], f"unknown field (known: {', '.join(FIELDS)})")
    name = text(body, "name", MAX_NAME, True)
    kind = body.get("kind", RuleKind.QUERY)
    if kind not in KINDS:
        raise SpecError("kind", f"must be one of {', '.join(KINDS)}")
    preset = PRESETS.get(kind)
    query = _query(body.get("query"), preset)
    # Left out: the preset's, else any match alerts (count > 0); an explicit null is wrong.
    default = preset.aggregation if preset else "count"
    aggregation = body["aggregation"] if "aggregation" in body else default
    if aggregation not in AGGREGATIONS:
        raise SpecError("aggregation", f"must be one of {', '.join(AGGREGATIONS)}")
    window = _number(body, "window_s", 1.0, MAX_WINDOW_S, DEFAULT_WINDOW_S)
    threshold = _number(body, "threshold", 0.0, MAX_THRESHOLD, preset.threshold if preset else 0.0)
    if aggregation == "rate" and threshold >= 1:
        raise SpecError("threshold", "must be below 1 for a rate (the share of traces that match, 0..1)")
    severity = body.get("severity", DEFAULT_SEVERITY)
    if severity not in set(Severity):
        raise SpecError("severity", f"must be one of {', '.join(Severity)}")
    url = text(body, "webhook_url", MAX_URL, False) or None
    if url is not None:
        try:
            split = urlsplit(url)
            split.port  # noqa: B018 - raises ValueError for a port that is not one
        except ValueError:
            raise SpecError("webhook_url", "must be a valid URL") from None
        if split.scheme not in ("http", "https") or not split.hostname:
            raise SpecError("webhook_url", "must be an http:// or https:// URL with a host")
    return RuleSpec(name, str(kind), query, window, str(aggregation), threshold, str(severity), url)


def _query(value: object, preset: Preset | None) -> str:
    """The query's text (several lines allowed), checked by parsing it; a preset's when left out."""
    if value is not None and not isinstance(value, str):
        raise SpecError("query", "must be a string")
    query = (value or "").strip()
    if not query:
        if preset is None:
            raise SpecError("query", "is required (a TraceQL query, e.g. { status = error })")
        return preset.query
    if len(query) > traceql.MAX_QUERY_CHARS:
        raise SpecError("query", f"must be at most {traceql.MAX_QUERY_CHARS} characters")
    try:
        query.encode()
    except UnicodeEncodeError:  # a lone surrogate: no database column holds it
        raise SpecError("query", "must be valid Unicode") from None
    parse_query(query)
    return query


def parse_query(query: str):
    """The parsed query, or SpecError naming where it is wrong (``query: ... (line 1, column 12)``)."""
    if "\x00" in query:
        raise SpecError("query", "must not contain NUL characters")
    try:
        return traceql.parse(query)
    except traceql.TraceQLError as exc:
        raise SpecError("query", str(exc)) from None


def _number(body: Mapping, field: str, low: float, high: float, default: float) -> float:
    if field not in body:
        return default
    value = body[field]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecError(field, "must be a number")
    if not low <= value <= high:
        raise SpecError(field, f"must be from {low:g} to {high:g}")
    return float(value)
