"""Where the detection cycle gets metric evidence: the resource series of the services an
incident's traces reach, read from the metric store and judged (:mod:`aiops.metrics.baseline`).

One indexed read per cycle that has anomalies, of (service, name, time) for the named services
and the resource names (:mod:`aiops.metrics.kinds`) only, over the last ``history`` seconds and the
recent ones; a cycle without anomalies, or a store without metric points, reads nothing else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select

from aiops.metrics import baseline as mb
from aiops.metrics.kinds import NAMES, kind_of
from telemetry.db import db
from telemetry.models import MetricPoint

MAX_RECENT = 600.0  # seconds of recent points read beyond the history (a series' steps are below it)
MAX_SERVICES = 500  # services one read asks for (the rest are left out)


def loader(now: float, rules: mb.BandRules | None = None):
    """``load(services) -> {service: MetricSuspect}`` at the cycle's clock ``now``, for RCA."""
    rules = rules or mb.BandRules()

    def load(services: Iterable[str]) -> dict[str, mb.MetricSuspect]:
        return suspects(sorted(set(services))[:MAX_SERVICES], now, rules)

    return load


def suspects(services: list[str], now: float, rules: mb.BandRules) -> dict[str, mb.MetricSuspect]:
    if not services:
        return {}
    t = MetricPoint
    since = now - rules.history - MAX_RECENT
    rows = db.session.execute(
        select(t.service, t.pod, t.name, t.attributes, t.time, t.value)
        .where(t.service.in_(services), t.name.in_(NAMES), t.time > since, t.time <= now)
        .order_by(t.time)
    ).all()
    series: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for service, pod, name, attributes, when, value in rows:
        series[(service, pod, name, attributes)].append((when, value))
    shifts = [
        s
        for key, points in series.items()
        if (s := mb.judge(points, now, kind_of(key[2]), rules, key)) is not None
    ]
    return mb.suspects(shifts)
