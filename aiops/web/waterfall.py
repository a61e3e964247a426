"""Lay out one trace as a waterfall: rows in call order with offsets in percent.

Pure logic: span rows in (anything with the span columns as attributes), plain
dicts out. Spans come from telemetry and may be malformed (a parent that never
arrived, a parent cycle, a duplicated span id, a NaN duration): every span still
gets exactly one row, and ``left``/``width`` are always finite numbers in
``0..100``, since the page puts them in a ``style`` attribute.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping

from telemetry.columns import KIND_CLIENT
from telemetry.rows import span_key

MAX_ROWS = 500
MIN_WIDTH = 0.3  # % of the track: a 0 ms span still shows as a sliver
WARN = 13  # OTLP SeverityNumber of WARN: lines at or above it mark their span
MAX_SPAN_LINES = 5  # ERROR/WARN lines listed under one span


def _num(value) -> float:
    """A finite, non-negative float (0.0 for None, NaN, infinities, negatives)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) and value > 0 else 0.0


def _order(spans: Iterable) -> list:
    return sorted(spans, key=lambda s: (_num(s.start_time), str(s.span_id)))


def layout(spans: Iterable, highlight: tuple[str, str] | None = None,
           max_rows: int = MAX_ROWS) -> list[dict]:
    """Depth-first rows (parents before children, siblings by start time).

    Each row: ``span``, ``depth``, ``client`` (a CLIENT span: an outgoing call),
    ``culprit`` (the span speaks for ``highlight``, the incident's root cause),
    ``offset_ms`` and ``duration_ms`` (sanitised), and ``left``/``width`` in % of
    the whole trace. At most ``max_rows`` rows.
    """
    spans = list(spans)
    if not spans:
        return []
    ids = {s.span_id for s in spans}
    children: dict = defaultdict(list)
    roots = []
    for s in spans:
        if s.parent_span_id in ids and s.parent_span_id != s.span_id:
            children[s.parent_span_id].append(s)
        else:
            roots.append(s)  # true roots, and orphans whose parent never arrived
    start = min(_num(s.start_time) for s in spans)
    end = max(_num(s.start_time) + _num(s.duration_ms) / 1000.0 for s in spans)
    total = max(end - start, 1e-6)

    rows: list[dict] = []
    placed: set[int] = set()  # id() of spans already laid out (cycles, duplicate span ids)

    def walk(root) -> None:
        stack = [(root, 0)]
        while stack and len(rows) < max_rows:
            span, depth = stack.pop()
            if id(span) in placed:
                continue
            placed.add(id(span))
            offset_s = _num(span.start_time) - start
            duration_ms = _num(span.duration_ms)
            left = min(max(100.0 * offset_s / total, 0.0), 100.0)
            width = min(max(100.0 * (duration_ms / 1000.0) / total, MIN_WIDTH), 100.0)
            rows.append({
                "span": span,
                "depth": depth,
                "client": span.kind == KIND_CLIENT,
                "culprit": highlight is not None and span_key(span) == tuple(highlight),
                "offset_ms": round(offset_s * 1000.0, 3),
                "duration_ms": round(duration_ms, 3),
                "left": round(left, 3),
                "width": round(width, 3),
            })
            for child in reversed(_order(children.get(span.span_id, ()))):
                stack.append((child, depth + 1))

    for root in _order(roots):
        walk(root)
    # Spans caught in a parent cycle are reachable from no root: lay them out too.
    for span in _order(spans):
        if id(span) not in placed:
            walk(span)
    return rows


def mark_logs(rows: list[dict], lines: Iterable[Mapping], max_lines: int = MAX_SPAN_LINES) -> None:
    """Give each row the ERROR/WARN lines its span logged: ``logs`` (the first ``max_lines``, in the
    order given) and ``log_count`` (all of them). ``lines`` are mappings with ``span_id`` and
    ``severity_number``; a line of no laid-out span marks nothing."""
    by_span: dict = defaultdict(list)
    for line in lines:
        if line.get("span_id") and (line.get("severity_number") or 0) >= WARN:
            by_span[line["span_id"]].append(line)
    for row in rows:
        found = by_span.get(row["span"].span_id, [])
        row["logs"], row["log_count"] = found[:max_lines], len(found)


def total_ms(rows: list[dict]) -> float:
    """The trace's length: from its first start to its last end."""
    return max((r["offset_ms"] + r["duration_ms"] for r in rows), default=0.0)


def ticks(total: float, count: int = 4) -> list[dict]:
    """Evenly spaced axis labels: ``{"left": % of the track, "ms": offset}``."""
    if total <= 0 or count < 1:
        return []
    return [{"left": round(100.0 * i / count, 3), "ms": total * i / count} for i in range(count + 1)]
