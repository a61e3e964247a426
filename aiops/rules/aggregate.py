"""Judging a rule over the traces its query matched, pure: matches in, a value, a verdict and the
alert's fields out (:mod:`aiops.rules.evaluation` reads the matches from the store).

- ``count``: how many traces matched;
- ``rate``: matched traces / traces with a span in the window (0..1; 0 when the window is empty);
- ``p95``: the 95th percentile (nearest rank) of the matched spans' durations in ms (None: none).

A rule fires when the value is above its threshold. An alert's identity is the set of traces it
fired on (:func:`fingerprint`): the same set found again is the same alert, seen once more.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aiops.kinds import RuleKind

ERROR_KINDS = (RuleKind.ERROR_STATUS, RuleKind.HIGH_ERROR_RATE)
MAX_MESSAGE = 1000  # characters of an exception message an alert carries


@dataclass(frozen=True)
class Matched:
    """One trace the query matched, and the spans it selected (rows with the span columns)."""

    trace_id: str
    spans: Sequence


def p95(values: Iterable[float]) -> float | None:
    """The nearest-rank 95th percentile (None for no values)."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def aggregate(aggregation: str, matched: Sequence[Matched], total_traces: int) -> float | None:
    if aggregation == "count":
        return float(len(matched))
    if aggregation == "rate":
        return len(matched) / total_traces if total_traces else 0.0
    if aggregation == "p95":
        return p95(s.duration_ms for m in matched for s in m.spans)
    raise ValueError(f"unknown aggregation {aggregation!r}")


def fires(value: float | None, threshold: float) -> bool:
    return value is not None and value > threshold


def fingerprint(trace_ids: Iterable[str]) -> str:
    """The alert's identity: SHA-256 of the sorted, distinct trace ids."""
    return hashlib.sha256("\n".join(sorted(set(trace_ids))).encode()).hexdigest()


def error_message(span) -> str:
    """What went wrong in a failed span: its exception, else its HTTP status, else "error status"."""
    if span.exception_message or span.exception_type:
        text = ": ".join(p for p in (span.exception_type, span.exception_message) if p)
    elif span.status_code:
        text = f"HTTP {span.status_code}"
    else:
        text = "error status"
    return text[:MAX_MESSAGE]


def example(kind: str, matched: Sequence[Matched]) -> dict:
    """The span an alert names: for the error kinds the newest failed one; else the slowest one.
    Its trace, name, service, and ``duration_ms`` or ``error_message`` (the other None)."""
    spans = [s for m in matched for s in m.spans]
    if not spans:
        return {"trace_id": None, "span_name": None, "service": None, "duration_ms": None,
                "error_message": None}
    if kind in ERROR_KINDS:
        failed = [s for s in spans if s.error] or spans
        span = max(failed, key=lambda s: (s.start_time, s.span_id))
        latency, message = None, error_message(span)
    else:
        span = max(spans, key=lambda s: (s.duration_ms, s.span_id))
        latency, message = round(span.duration_ms, 3), (error_message(span) if span.error else None)
    return {"trace_id": span.trace_id, "span_name": span.endpoint, "service": span.service,
            "duration_ms": latency, "error_message": message}
