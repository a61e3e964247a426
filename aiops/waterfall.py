"""Lay out one trace as a waterfall: rows in call order with offsets in percent."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from telemetry.models import KIND_CLIENT


def layout(spans: Iterable) -> list[dict]:
    """Depth-first rows (parents before children) with ``left``/``width`` in % of the trace."""
    spans = list(spans)
    if not spans:
        return []
    ids = {s.span_id for s in spans}
    children = defaultdict(list)
    roots = []
    for s in spans:
        if s.parent_span_id in ids:
            children[s.parent_span_id].append(s)
        else:
            roots.append(s)  # true roots, and orphans whose parent never arrived
    start = min(s.start_time for s in spans)
    end = max(s.start_time + s.duration_ms / 1000.0 for s in spans)
    total = max(end - start, 1e-6)
    rows: list[dict] = []

    def walk(span, depth: int) -> None:
        rows.append({
            "span": span,
            "depth": depth,
            "client": span.kind == KIND_CLIENT,
            "left": round(100.0 * (span.start_time - start) / total, 3),
            "width": max(round(100.0 * (span.duration_ms / 1000.0) / total, 3), 0.3),
        })
        for child in sorted(children[span.span_id], key=lambda c: c.start_time):
            if len(rows) < 500:
                walk(child, depth + 1)

    for root in sorted(roots, key=lambda s: s.start_time):
        walk(root, 0)
    return rows
