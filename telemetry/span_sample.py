"""A bounded read of the spans of any time range, for the service map: its cost follows a cap, never
the range or the table.

The part of the range that holds spans (from its oldest to its newest span: two index seeks) is
cut into :data:`SLICES` equal slices, and each gives at most its share of
:data:`MAX_SPANS`, newest first: one backward scan of ``ix_spans_start_time`` with a ``LIMIT`` per
slice, so a 7-day range holding a million spans reads as many rows as a quiet 15 minutes that
holds the cap. Slices, rather than the newest spans of the whole range, so a service that only
ran on Monday is still on a week's map.

A slice that held more than its share was *sampled*: the rows it gave cover only its newest part,
so each stands for ``occupied length / covered length`` spans (its ``weight``), where the occupied
part runs from the slice's oldest span (one more index seek) to its newest: call rates and error
shares stay estimates of the whole slice, and a demo that ran for ten minutes of a 7-day range is
not extrapolated over a day. A slice that held fewer is read whole (weight 1): the map of a quiet
range is exact.

Rows come through the session's driver cursor as plain named tuples (the detection cycle's way,
:func:`telemetry.store.logs_after`): tens of thousands of SQLAlchemy ``Row`` objects cost more than
the query.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass

from telemetry.db import db

MAX_SPANS = 20_000  # rows one map reads, at most (bench/map.py)
SLICES = 6

MapSpan = namedtuple("MapSpan", ("trace_id", "span_id", "parent_span_id", "service", "endpoint", "kind",
                                 "error", "start_time", "duration_ms", "peer"))
_COLUMNS = ", ".join(MapSpan._fields)


@dataclass(frozen=True)
class Sample:
    spans: list[MapSpan]
    weights: list[float]  # per span: how many spans of the range it stands for (1: read whole)
    sampled: bool  # some slice held more than its share


def slices(since: float, until: float, count: int = SLICES) -> list[tuple[float, float]]:
    """``count`` equal ``[start, end)`` slices of the range (the last one ends at ``until``)."""
    step = (until - since) / count
    return [(since + i * step, until if i == count - 1 else since + (i + 1) * step) for i in range(count)]


def weight(first: float, oldest_read: float, newest_read: float) -> float:
    """What each row of a sampled slice stands for: the span of time its spans occupy (from its
    ``first`` span to the newest read) over the span of time the rows read cover."""
    covered = max(newest_read - oldest_read, 1e-3)
    return max(1.0, (newest_read - first) / covered)


def spans_between(since: float, until: float, ignore_services: Sequence[str] = (),
                  limit: int = MAX_SPANS, count: int = SLICES) -> Sample:
    """The spans that started in ``[since, until]`` (all of them, or a bounded sample; see the
    module's docstring), leaving out ``ignore_services``."""
    conn = db.session.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    ignored = list(dict.fromkeys(ignore_services))
    where = f"start_time >= {mark} AND start_time {{op}} {mark}"
    if ignored:
        where += f" AND service NOT IN ({', '.join([mark] * len(ignored))})"
    share = max(1, limit // count)
    spans: list[MapSpan] = []
    weights: list[float] = []
    sampled = False
    cur = conn.connection.cursor()

    def edge(start: float, end: float, op: str, order: str) -> float | None:
        """The oldest (``order`` ASC) or newest start time in the slice: one index seek."""
        cur.execute(f"SELECT start_time FROM spans WHERE {where.format(op=op)} "
                    f"ORDER BY start_time {order} LIMIT 1", (start, end, *ignored))
        row = cur.fetchone()
        return None if row is None else row[0]

    try:
        # Slice the part of the range that holds spans: a demo that ran ten minutes of a 7-day range
        # gets all the slices, not one.
        first, last = edge(since, until, "<=", "ASC"), edge(since, until, "<=", "DESC")
        parts = [] if first is None else slices(first, last, count if last > first else 1)
        for i, (start, end) in enumerate(parts):
            op = "<=" if i == len(parts) - 1 else "<"
            cur.execute(f"SELECT {_COLUMNS} FROM spans WHERE {where.format(op=op)} "
                        f"ORDER BY start_time DESC LIMIT {mark}", (start, end, *ignored, share))
            rows = cur.fetchall()
            if not rows:
                continue
            w = 1.0
            if len(rows) >= share:
                sampled = True
                w = weight(edge(start, end, op, "ASC"), rows[-1][7], rows[0][7])
            spans += map(MapSpan._make, rows)
            weights += [w] * len(rows)
    finally:
        cur.close()
    return Sample(spans, weights, sampled)
