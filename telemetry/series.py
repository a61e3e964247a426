"""One endpoint's spans as a time series: per time bucket, requests, errors and the p50/p95 latency.

The charts (``GET /aiops/series``, the endpoint and incident pages) read it. A range is cut into
at most :data:`MAX_POINTS` buckets of ``step`` seconds, aligned on multiples of the step (so two
polls a cycle apart share their buckets); :func:`plan` picks a round step when none is asked.

Everything is read from the index on (service, endpoint, start_time, kind, duration_ms, error),
which answers alone. By database:

- **PostgreSQL**: one ``GROUP BY`` on the bucket gives the counts and exact percentiles
  (``percentile_cont``);
- **SQLite**: one count per bucket (a compiled statement run for each: cheaper than a ``GROUP
  BY`` on an expression); it has no percentile function, so the durations are read into Python and each
  bucket's quantiles computed as ``percentile_cont`` would. At most about :data:`MAX_READ`
  durations are read: past that, a uniform sample of the spans (a hash of the span's row id, so
  spans written in a repeating pattern are not picked in step with it); ``sample_every`` says
  how many spans each one read stands for. A 7-day range of a busy endpoint costs two scans of its
  index entries and 10,000 rows read, not 200,000 (SQLite's window functions, the exact way, sort
  them all: 300 ms for 50,000 spans).

Only SERVER-side spans count (not the CLIENT spans a caller records under the callee's name), as
for ``/aiops/metrics``. The pure half (:func:`plan`, :func:`quantile`, :func:`fold`) takes and
returns plain data.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Float, Integer, bindparam, case, cast, func, select

from telemetry.columns import KIND_CLIENT
from telemetry.db import db
from telemetry.models import Span

MAX_POINTS = 2000  # buckets a series may have (a step giving more is refused)
TARGET_POINTS = 240  # buckets an automatic step aims at (at most)
MAX_READ = 10_000  # durations read per series on SQLite before sampling (bench/pages.py)
MAX_STEP = 86_400
# Round steps an automatic choice picks from (seconds): 5 s ... 1 day.
STEPS = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
QUANTILES = (0.5, 0.95)
_HASH_MUL, _HASH_MOD = 2_654_435_761, 1_000_003  # Knuth's multiplier, a prime modulus


# -- pure -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Buckets ``start + i * step`` for ``i`` in ``range(buckets)``, covering ``since .. until``."""

    since: float
    until: float
    step: int
    start: float
    buckets: int

    def times(self) -> list[float]:
        return [self.start + i * self.step for i in range(self.buckets)]


def plan(since: float, until: float, step: int | None = None, max_points: int = MAX_POINTS,
         target: int = TARGET_POINTS) -> Plan:
    """The buckets of ``since .. until``: ``step`` seconds each, or without one the smallest round
    step (:data:`STEPS`, or whole days past them) giving at most ``target`` buckets. ValueError
    (saying what it expected) if the range is empty or ``step`` would give more than
    ``max_points`` buckets: a step is refused, not clamped, so a client gets the spacing it
    asked for or knows it did not."""
    if not until > since:
        raise ValueError("'since' must be before 'until'")
    span = until - since
    if step is None:  # +1: the aligned start; beyond the largest round step, whole days
        step = next((s for s in STEPS if span / s + 1 <= target),
                    STEPS[-1] * math.ceil(span / (target - 1) / STEPS[-1]))
    elif not 1 <= step <= MAX_STEP:
        raise ValueError(f"'step' must be between 1 s and {MAX_STEP} s (1d)")
    start = math.floor(since / step) * step
    buckets = max(math.ceil((until - start) / step), 1)
    if buckets > max_points:
        least = math.ceil((until - since) / (max_points - 1))
        raise ValueError(f"'step' of {step} s gives {buckets} points over this range; at most {max_points} "
                         f"are served: a step of at least {least} s, or none (chosen for you)")
    return Plan(since, until, step, start, buckets)


def quantile(ordered: list[float], q: float) -> float | None:
    """The ``q`` quantile of sorted values, interpolated as SQL's ``percentile_cont`` does."""
    if not ordered:
        return None
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def fold(p: Plan, counts: Iterable[tuple[int, int, int]],
         durations: Iterable[tuple[int, float]] = (),
         exact: dict[int, tuple[float | None, float | None]] | None = None) -> list[dict]:
    """One point per bucket: ``t`` (its start, epoch seconds), ``requests``, ``error_rate`` and
    ``p50_ms``/``p95_ms`` (None with no requests). ``counts``: (bucket, requests, errors);
    the percentiles come from ``exact`` (bucket -> (p50, p95)) or from ``durations`` (bucket, ms)."""
    by_bucket = {int(b): (int(n or 0), int(e or 0)) for b, n, e in counts}
    values: dict[int, list[float]] = defaultdict(list)
    for b, ms in durations:
        values[int(b)].append(float(ms))
    points = []
    for i, t in enumerate(p.times()):
        n, errors = by_bucket.get(i, (0, 0))
        if exact is not None:
            p50, p95 = exact.get(i, (None, None))
        else:
            ordered = sorted(values.get(i, ()))
            p50, p95 = (quantile(ordered, q) for q in QUANTILES)
        points.append({
            "t": t,
            "requests": n,
            "error_rate": round(errors / n, 4) if n else None,
            "p50_ms": None if p50 is None or not n else round(p50, 3),
            "p95_ms": None if p95 is None or not n else round(p95, 3),
        })
    return points


# -- the store ----------------------------------------------------------------------------


@dataclass
class Series:
    points: list[dict]
    sample_every: float  # spans each duration read stands for (1: percentiles are exact)


def _where(service: str, endpoint: str, since: float, until: float) -> tuple:
    return (Span.service == service, Span.endpoint == endpoint, Span.start_time >= since,
            Span.start_time < until, Span.kind != KIND_CLIENT)


def _raw(conn, stmt, runs: Iterable[dict] = ({},)) -> list[list[tuple]]:
    """``stmt``'s rows for each of ``runs`` (values of its bind parameters), compiled once and
    read straight from the driver's cursor: SQLAlchemy's rows cost ~4 us each, 3x the scan."""
    compiled = stmt.compile(dialect=conn.dialect)
    sql, names = str(compiled), compiled.positiontup
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        out = []
        for run in runs:
            values = {**compiled.params, **run}
            out.append(cursor.execute(sql, [values[k] for k in names]).fetchall())
        return out
    finally:
        cursor.close()


def read(service: str, endpoint: str, p: Plan) -> Series:
    """The series of one endpoint over the plan's buckets (see the module's docstring)."""
    conn = db.session.connection()  # Core, not the ORM: thousands of plain rows, no entities
    errors = func.sum(case((Span.error, 1), else_=0))
    if conn.dialect.name == "postgresql":
        bucket = func.floor((Span.start_time - p.start) / p.step).label("b")
        quantiles = [func.percentile_cont(q).within_group(Span.duration_ms) for q in QUANTILES]
        rows = conn.execute(select(bucket, func.count(), errors, *quantiles)
                            .where(*_where(service, endpoint, p.start, p.until)).group_by(bucket)).all()
        exact = {int(r[0]): (r[3], r[4]) for r in rows}
        return Series(fold(p, ((r[0], r[1], r[2]) for r in rows), exact=exact), 1.0)
    # SQLite: one count per bucket, each a seek and a range of the index (40 % cheaper than a GROUP
    # BY on the bucket, which evaluates the expression per span and sorts in a temporary B-tree).
    lo, hi = bindparam("lo", type_=Float), bindparam("hi", type_=Float)
    each = _raw(conn, select(func.count(), errors).where(*_where(service, endpoint, lo, hi)),
                ({"lo": t, "hi": t + p.step} for t in p.times()))
    counts = [(i, rows[0][0], rows[0][1]) for i, rows in enumerate(each) if rows[0][0]]
    total = sum(n for _, n, _ in counts)
    bucket = cast((Span.start_time - p.start) / p.step, Integer)
    stmt = select(bucket, Span.duration_ms).where(*_where(service, endpoint, p.start, p.until))
    every = 1.0
    if total > MAX_READ:
        keep = max(int(_HASH_MOD * MAX_READ / total), 1)
        every = _HASH_MOD / keep
        stmt = stmt.where((Span.id * _HASH_MUL) % _HASH_MOD < keep)
    return Series(fold(p, counts, _raw(conn, stmt)[0]), round(every, 2))


def recent_traces(service: str, endpoint: str, since: float, until: float, limit: int) -> dict[str, list]:
    """The endpoint's ``slowest`` spans of the range (longest first) and its latest ``failed`` ones
    (newest first), at most ``limit`` each. Their ids come from the index alone; only those rows
    are then read whole."""
    where = _where(service, endpoint, since, until)
    slowest = db.session.scalars(select(Span.id).where(*where)
                                 .order_by(Span.duration_ms.desc()).limit(limit)).all()
    failed = db.session.scalars(select(Span.id).where(*where, Span.error)
                                .order_by(Span.start_time.desc()).limit(limit)).all()
    wanted = set(slowest) | set(failed)
    rows = {s.id: s for s in db.session.scalars(select(Span).where(Span.id.in_(wanted)))} if wanted else {}
    return {"slowest": [rows[i] for i in slowest if i in rows],
            "failed": [rows[i] for i in failed if i in rows]}
