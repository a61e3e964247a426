"""The resource series' last minutes of points, kept in memory between detection cycles. Pure logic.

Without it, every cycle with anomalies read the last minutes of every resource series of every
service its traces reach: tens of thousands of points, a third more cycle time for a cycle with a
fault (``bench/detect.py --metrics``). With it, a cycle reads the points stored since the last one
(a primary-key range, as for spans and logs), and a service's older points once, the first time an
incident reaches it (:mod:`aiops.metrics.feed`). The store stays the record: a new process, a clock
that went back or a gap longer than the window starts a new window, and a window that would hold
more than ``max_points`` is dropped for the store's reads.

The window holds the points stored with an id above ``base`` (the highest id when it started) and,
for the services in ``loaded``, those up to ``base`` too: together, every point of those services.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

Key = tuple  # (service, pod, name, attributes)
INF = float("inf")  # (t, INF) sorts after every point at time t

MAX_POINTS = 250_000  # about 25 MB: 2,000 series of one point every 6 s over 13 minutes


class SeriesWindow:
    def __init__(self, span: float, max_points: int = MAX_POINTS):
        self.span = span  # seconds of points kept before the clock
        self.max_points = max_points
        self.at: float | None = None  # the clock of the last update (None: no window)
        self.base = 0
        self.cursor = 0  # the highest id read
        self.loaded: set[str] = set()
        self.series: dict[Key, list[tuple[float, float]]] = {}
        self.count = 0

    def usable(self, now: float) -> bool:
        """Whether the window can go on at ``now`` (else the caller starts a new one)."""
        return self.at is not None and self.at <= now <= self.at + self.span

    def start(self, upto: int, now: float) -> None:
        """A new, empty window at ``now``: it holds the points stored with ids above ``upto``."""
        self.at, self.base, self.cursor = now, upto, upto
        self.loaded, self.series, self.count = set(), {}, 0

    def add(self, rows: Iterable[tuple], now: float) -> bool:
        """Add stored points (service, pod, name, attributes, time, value) no older than the window
        at ``now``. False when the window grew past ``max_points`` and was dropped."""
        floor = now - self.span
        for service, pod, name, attributes, when, value in rows:
            if when > floor:
                self.series.setdefault((service, pod, name, attributes), []).append((when, value))
                self.count += 1
        if self.count > self.max_points:
            self.at, self.series, self.count = None, {}, 0
            return False
        return True

    def moved(self, upto: int, now: float) -> None:
        """The window read the ids up to ``upto`` at ``now``: drop the points it no longer spans."""
        self.cursor, self.at, floor = upto, now, (now - self.span, INF)
        for key, points in list(self.series.items()):
            points.sort()  # two sorted runs at most: linear
            cut = bisect_right(points, floor)
            if cut == len(points):
                del self.series[key]
            elif cut:
                del points[:cut]
            self.count -= cut

    def of(self, services: Iterable[str], now: float) -> dict[Key, list[tuple[float, float]]]:
        """The series of ``services``, each its points in ``(now - span, now]`` in time order."""
        wanted, floor, ceiling = set(services), (now - self.span, INF), (now, INF)
        out = {}
        for key, points in self.series.items():
            if key[0] in wanted:
                points.sort()  # a service's older points are added after its newer ones
                within = points[bisect_right(points, floor) : bisect_right(points, ceiling)]
                if within:
                    out[key] = within
        return out
