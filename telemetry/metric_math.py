"""The arithmetic of OTLP metric points: rates of counters, quantiles from histogram buckets. Pure.

- :func:`counter_rate`: per second between two cumulative points of one series, a reset
  (the value went down, or the start time moved past the last point) counted from zero, as
  Prometheus' ``rate`` does;
- :func:`bucket_quantile`: a quantile of an explicit-bucket histogram, interpolated linearly
  inside its bucket (Prometheus' ``histogram_quantile``), held within the point's min and max;
- :func:`exponential_buckets`: an exponential histogram's buckets as (upper bound, count) pairs,
  so the same quantile applies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

QUANTILES = ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))  # the derived series of a histogram
MAX_BUCKETS = 4096  # a point with more buckets is rejected (the SDKs' exponential default is 160)
MIN_SCALE, MAX_SCALE = -10, 20  # the exponential histogram's scale range (OTLP data model)


def counter_rate(
    value: float, when: float, start: float, previous: tuple[float, float, float] | None
) -> float | None:
    """Per second since ``previous`` (its ``(start, time, value)``) for a cumulative counter.

    A reset (the value fell, or this point's start is after the previous point) counts the new
    value as all that happened since the previous point (or since ``start`` when that is later).
    None without a previous point or with no time between them.
    """
    if previous is None:
        return None
    p_start, p_time, p_value = previous
    if when <= p_time:
        return None
    reset = value < p_value or (start > 0 and p_start > 0 and start > p_start and start >= p_time)
    if reset:
        since = start if start > p_time else p_time
        return value / (when - since) if when > since else None
    return (value - p_value) / (when - p_time)


def delta_rate(value: float, when: float, start: float) -> float | None:
    """Per second of a delta point (its value over its own interval), None without a start."""
    return value / (when - start) if start > 0 and when > start else None


def bucket_quantile(
    q: float,
    bounds: Sequence[float],
    counts: Sequence[float],
    low: float | None = None,
    high: float | None = None,
) -> float | None:
    """The ``q`` quantile of a histogram whose bucket ``i`` counts values in
    ``(bounds[i-1], bounds[i]]`` (``len(counts) == len(bounds) + 1``; the last is unbounded).

    Linear inside the bucket; the first bucket starts at ``low`` (the point's min) or 0 when its
    upper bound is positive, the last ends at ``high`` (its max) or its lower bound. None when
    empty or malformed.
    """
    total = sum(counts)
    if total <= 0 or len(counts) != len(bounds) + 1:
        return None
    rank = q * total
    seen = 0.0
    for i, n in enumerate(counts):
        if n <= 0:
            continue
        if seen + n >= rank:
            if i > 0:
                lower = bounds[i - 1]
            else:
                lower = low if low is not None else min(0.0, bounds[0]) if bounds else (high or 0.0)
            upper = bounds[i] if i < len(bounds) else (high if high is not None else lower)
            value = lower + (upper - lower) * ((rank - seen) / n)
            return _clamp(value, low, high)
        seen += n
    return _clamp(bounds[-1] if bounds else None, low, high)


def _clamp(value: float | None, low: float | None, high: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    if low is not None and value < low:
        value = low
    if high is not None and value > high:
        value = high
    return value


def exponential_buckets(
    scale: int,
    zero_count: float,
    positive: tuple[int, Sequence[float]],
    negative: tuple[int, Sequence[float]],
) -> tuple[list[float], list[float]]:
    """An exponential histogram as explicit buckets ``(bounds, counts)`` for :func:`bucket_quantile`.

    Bucket ``index`` of the positive range holds ``(base**index, base**(index + 1)]`` with
    ``base = 2 ** 2 ** -scale``; the negative range mirrors it; the zero bucket is the value 0.
    Gaps between the ranges become empty buckets; bounds past a float's range are held at its largest.
    """
    base = 2.0 ** (2.0**-scale)

    def edge(index: int) -> float:
        try:
            return min(base**index, _LARGEST)
        except OverflowError:
            return _LARGEST if index > 0 else 0.0

    intervals: list[tuple[float, float, float]] = []  # (lower, upper, count), ascending
    neg_offset, neg_counts = negative
    for k in range(len(neg_counts) - 1, -1, -1):  # the most negative first
        intervals.append((-edge(neg_offset + k + 1), -edge(neg_offset + k), float(neg_counts[k])))
    if zero_count:
        intervals.append((0.0, 0.0, float(zero_count)))
    pos_offset, pos_counts = positive
    for k, n in enumerate(pos_counts):
        intervals.append((edge(pos_offset + k), edge(pos_offset + k + 1), float(n)))
    if not intervals:
        return [], [0.0]
    bounds, counts = [intervals[0][0]], [0.0]
    for lower, upper, n in intervals:
        if lower > bounds[-1]:
            bounds.append(lower)
            counts.append(0.0)
        bounds.append(upper)
        counts.append(n)
    counts.append(0.0)
    return bounds, counts


_LARGEST = 1.7976931348623157e308


def quantile_name(q: float) -> str:
    """``0.99`` -> ``p99``, ``0.999`` -> ``p99.9``, ``0.5`` -> ``p50`` (a summary's quantiles)."""
    text = f"{q * 100:.4f}".rstrip("0").rstrip(".")
    return "p" + text
