"""The span store, aggregated for SLOs: good and total counts per alert window and per UTC day.

Every figure is a SQL aggregate over the SERVER spans of the SLO's service (and endpoint) in a
``start_time`` range, served by ``ix_spans_start_time``: a query returns one row (the windows) or
one row per day, never span rows. Requests are the events of the availability and latency SLIs;
throughput counts *minutes* instead (good: at least ``min_rps`` × 60 requests in it), complete
minutes only, from the first minute with data in the range (a window younger than its length is
judged on the data it has).
"""

from __future__ import annotations

import math

from sqlalchemy import Integer, and_, case, cast, func, or_, select

from aiops.slos.rules import DAY, WINDOWS, Counts
from telemetry.columns import KIND_SERVER
from telemetry.db import db
from telemetry.models import Span

LONGEST = max(WINDOWS.values())


def _bucket(value, size: int):
    """``floor(value / size)`` on both backends (times are positive: SQLite's cast truncates)."""
    if db.engine.dialect.name == "sqlite":
        return cast(value / size, Integer)
    return func.floor(value / size)


def _scope(slo, start: float, end: float) -> list:
    cond = [Span.kind == KIND_SERVER, Span.service == slo.service, Span.start_time >= start,
            Span.start_time < end]
    if slo.endpoint:
        cond.append(Span.endpoint == slo.endpoint)
    return cond


def _good(slo):
    if slo.sli == "latency":
        return Span.duration_ms <= slo.threshold_ms
    # availability: not a 5xx (a span without a status code is bad only when it ended in error)
    return or_(Span.status_code < 500, and_(Span.status_code.is_(None), Span.error.is_(False)))


def _sums(since: float, good) -> list:
    return [func.sum(case((Span.start_time >= since, 1), else_=0)),
            func.sum(case((and_(Span.start_time >= since, good), 1), else_=0))]


def window_counts(slo, now: float) -> tuple[dict[str, Counts], Counts]:
    """(counts per alert window, counts of today so far), in one query."""
    if slo.sli == "throughput":
        return _throughput_windows(slo, now)
    midnight = (now // DAY) * DAY
    good = _good(slo)
    starts = [now - length for length in WINDOWS.values()] + [midnight]
    cols = [col for since in starts for col in _sums(since, good)]
    row = db.session.execute(select(*cols).where(*_scope(slo, min(starts), now + 1e-6))).one()
    counts = [Counts(int(row[i + 1] or 0), int(row[i] or 0)) for i in range(0, len(cols), 2)]
    return dict(zip(WINDOWS, counts[:-1], strict=True)), counts[-1]


def daily_counts(slo, first_day: int, last_day: int) -> dict[int, Counts]:
    """Counts per UTC day for the days ``first_day`` to ``last_day`` (completed days)."""
    if last_day < first_day:
        return {}
    if slo.sli == "throughput":
        return _throughput_days(slo, first_day, last_day)
    day = _bucket(Span.start_time, DAY).label("day")
    rows = db.session.execute(
        select(day, func.count(), func.sum(case((_good(slo), 1), else_=0)))
        .where(*_scope(slo, first_day * DAY, (last_day + 1) * DAY)).group_by(day)
    )
    return {int(d): Counts(int(g or 0), int(n)) for d, n, g in rows}


def _minutes(slo, start_minute: int, end_minute: int):
    """Subquery: requests per minute (``m``, ``n``) for the minutes ``[start_minute, end_minute)``."""
    minute = _bucket(Span.start_time, 60)
    return (select(minute.label("m"), func.count().label("n"))
            .where(*_scope(slo, start_minute * 60, end_minute * 60)).group_by(minute).subquery())


def _need(slo) -> int:
    return max(1, math.ceil(slo.min_rps * 60 - 1e-9))


def _throughput_windows(slo, now: float) -> tuple[dict[str, Counts], Counts]:
    current = int(now // 60)  # the minute under way is not judged yet
    midnight = int(now // DAY) * (DAY // 60)
    starts = [current - length // 60 for length in WINDOWS.values()] + [midnight]
    sub = _minutes(slo, min(starts), current)
    need = _need(slo)
    cols = [func.sum(case((and_(sub.c.m >= s, sub.c.n >= need), 1), else_=0)) for s in starts]
    first, *goods = db.session.execute(select(func.min(sub.c.m), *cols)).one()
    if first is None:
        return {name: Counts() for name in WINDOWS}, Counts()
    counts = [Counts(int(g or 0), max(0, current - max(s, int(first))))
              for s, g in zip(starts, goods, strict=True)]
    return dict(zip(WINDOWS, counts[:-1], strict=True)), counts[-1]


def _throughput_days(slo, first_day: int, last_day: int) -> dict[int, Counts]:
    per_day = DAY // 60
    sub = _minutes(slo, first_day * per_day, (last_day + 1) * per_day)
    day = _bucket(sub.c.m, per_day).label("day")
    good = func.sum(case((sub.c.n >= _need(slo), 1), else_=0))
    rows = {int(d): (int(g or 0), int(m)) for d, g, m in
            db.session.execute(select(day, good, func.min(sub.c.m)).group_by(day))}
    if not rows:
        return {}
    start = min(rows)
    out = {}
    for d in range(start, last_day + 1):
        g, first = rows.get(d, (0, d * per_day))
        out[d] = Counts(g, per_day - (first - d * per_day if d == start else 0))
    return out
