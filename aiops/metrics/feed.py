"""Where the detection cycle gets metric evidence: the resource series of the services an
incident's traces reach, read from the metric store and judged (:mod:`aiops.metrics.baseline`).

Every cycle reads the resource points (:mod:`aiops.metrics.kinds`' names only) stored since the
last one into the process's window of the last minutes (:mod:`aiops.metrics.window`): a primary-key
range. A cycle with anomalies judges the series of the services its incidents reach from there,
reading a service's older points (an index range of (service, name, time)) only the first time it
is reached. Without a window (a loader given none, or other rules) it reads them all each time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from aiops.metrics import baseline as mb
from aiops.metrics.kinds import NAMES, kind_of
from aiops.metrics.window import SeriesWindow
from telemetry.db import db
from telemetry.models import MetricPoint
from telemetry.store import max_span_id

MAX_RECENT = 180.0  # seconds of recent points read beyond the history: two steps of up to 90 s
MAX_SERVICES = 500  # services one read asks for (the rest are left out)
EXTENSION = "aiops.metrics.window"


def loader(now: float, rules: mb.BandRules | None = None, window: SeriesWindow | None = None):
    """``load(services) -> {service: MetricSuspect}`` at the cycle's clock ``now``, for RCA: from
    ``window`` (kept by :func:`follow`) when it holds a window, else read from the store."""
    rules = rules or mb.BandRules()

    def load(services: Iterable[str]) -> dict[str, mb.MetricSuspect]:
        wanted = sorted(set(services))[:MAX_SERVICES]
        if window is not None and window.span == span(rules) and window.usable(now):
            missing = [s for s in wanted if s not in window.loaded]
            if missing and window.add(_points(missing, now - window.span, now, upto=window.base), now):
                window.loaded.update(missing)
            if window.usable(now):  # else dropped: more points than it may hold
                return judge(window.of(wanted, now), now, rules)
        return judge(_series(_points(wanted, now - span(rules), now)), now, rules)

    return load


def span(rules: mb.BandRules) -> float:
    """The seconds of points before the clock that judging a series reads."""
    return rules.history + MAX_RECENT


def window_of(app) -> SeriesWindow:
    """The app's window of resource series (one per process, like the baselines it remembers)."""
    return app.extensions.setdefault(EXTENSION, SeriesWindow(span(mb.BandRules())))


def follow(window: SeriesWindow, now: float) -> SeriesWindow:
    """Bring ``window`` up to the points stored since the last cycle (or start a new one)."""
    upto = max_span_id(model=MetricPoint)
    if not window.usable(now):
        window.start(upto, now)
    elif upto > window.cursor and not window.add(_since(window.cursor, upto), now):
        return window
    window.moved(upto, now)
    return window


def _cursor(sql: str, params: tuple) -> list[tuple]:
    """Rows read with the session's own driver cursor, in its transaction (a SQLAlchemy ``Row`` for
    each of tens of thousands of points cost more than the rest of the work, as for the logs)."""
    conn = db.session.connection()
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    cur = conn.connection.cursor()
    try:
        cur.execute(sql, params)
        return cur.fetchall()
    finally:
        cur.close()


_COLUMNS = f"SELECT service, pod, name, attributes, time, value FROM {MetricPoint.__tablename__} "
_NAMES_IN = f"name IN ({', '.join(['?'] * len(NAMES))})"


def _points(services: list[str], since: float, now: float, upto: int | None = None) -> list[tuple]:
    """The resource points of ``services`` in ``(since, now]`` (with ids up to ``upto``): an index
    range of (service, name, time) per series."""
    if not services:
        return []
    services_in = ", ".join(["?"] * len(services))
    sql = f"{_COLUMNS}WHERE service IN ({services_in}) AND {_NAMES_IN} AND time > ? AND time <= ?"
    params = (*services, *NAMES, since, now)
    if upto is not None:
        sql, params = sql + " AND id <= ?", (*params, upto)
    return _cursor(sql, params)


def _since(cursor: int, upto: int) -> list[tuple]:
    """The resource points stored with ids in ``(cursor, upto]``: a primary-key range."""
    return _cursor(f"{_COLUMNS}WHERE id > ? AND id <= ? AND {_NAMES_IN}", (cursor, upto, *NAMES))


def _series(rows: Iterable[tuple]) -> dict[tuple, list[tuple[float, float]]]:
    series: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for service, pod, name, attributes, when, value in rows:
        series[(service, pod, name, attributes)].append((when, value))
    return series


def judge(series: dict[tuple, list], now: float, rules: mb.BandRules) -> dict[str, mb.MetricSuspect]:
    """The services whose resource series ({(service, pod, name, attributes): [(time, value)]})
    left their normal band at ``now``."""
    shifts = []
    for key, points in series.items():
        points.sort()
        shift = mb.judge(points, now, kind_of(key[2]), rules, key)
        if shift is not None:
            shifts.append(shift)
    return mb.suspects(shifts)
