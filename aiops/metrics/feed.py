"""Where the detection cycle gets metric evidence: the resource series of the services an
incident's traces reach, read from the metric store and judged (:mod:`aiops.metrics.baseline`).

One indexed read per cycle that has anomalies, of (service, name, time) for the named services
and the resource names (:mod:`aiops.metrics.kinds`) only, over the last ``history`` seconds and the
recent ones; a cycle without anomalies, or a store without metric points, reads nothing else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from aiops.metrics import baseline as mb
from aiops.metrics.kinds import NAMES, kind_of
from telemetry.db import db
from telemetry.models import MetricPoint

MAX_RECENT = 180.0  # seconds of recent points read beyond the history: two steps of up to 90 s
MAX_SERVICES = 500  # services one read asks for (the rest are left out)


def loader(now: float, rules: mb.BandRules | None = None):
    """``load(services) -> {service: MetricSuspect}`` at the cycle's clock ``now``, for RCA."""
    rules = rules or mb.BandRules()

    def load(services: Iterable[str]) -> dict[str, mb.MetricSuspect]:
        return suspects(sorted(set(services))[:MAX_SERVICES], now, rules)

    return load


def suspects(services: list[str], now: float, rules: mb.BandRules) -> dict[str, mb.MetricSuspect]:
    """The services among ``services`` whose resource series left their normal band at ``now``.

    Read with the session's own driver cursor, in its transaction (a SQLAlchemy ``Row`` for each of
    tens of thousands of points cost more than the rest of the work, as for the logs); the index
    scan gives each series' points in time order, sorted again here for any backend.
    """
    if not services:
        return {}
    conn = db.session.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    services_in = ", ".join([mark] * len(services))
    names_in = ", ".join([mark] * len(NAMES))
    sql = (
        f"SELECT service, pod, name, attributes, time, value FROM {MetricPoint.__tablename__} "
        f"WHERE service IN ({services_in}) AND name IN ({names_in}) AND time > {mark} AND time <= {mark}"
    )
    cur = conn.connection.cursor()
    try:
        cur.execute(sql, (*services, *NAMES, now - rules.history - MAX_RECENT, now))
        rows = cur.fetchall()
    finally:
        cur.close()
    series: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for service, pod, name, attributes, when, value in rows:
        series[(service, pod, name, attributes)].append((when, value))
    shifts = []
    for key, points in series.items():
        points.sort()
        shift = mb.judge(points, now, kind_of(key[2]), rules, key)
        if shift is not None:
            shifts.append(shift)
    return mb.suspects(shifts)
