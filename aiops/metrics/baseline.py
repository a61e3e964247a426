"""Robust per-series baselines, in the style of BARO (FSE 2024): how far a series left its own
recent normal, in interquartile ranges. Pure logic.

Each series is judged at its own resolution (its step: the median gap between its points, one a
minute being common): its *recent* points are those of the last ``recent_steps`` steps (at least
``min_recent`` seconds) before the cycle's clock, its *normal* the ``history`` seconds before them.
The normal band is the median and the quartiles of those; the change is the recent points' highest
value above the median, in units of the band's spread (the IQR, held above ``relative_floor`` of
the median and the kind's ``absolute floor``: a flat series does not make every wobble infinite).
Only rises count: a hog raises CPU, a leak memory, a crash loop restarts.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from aiops.detection.evidence import Accused
from aiops.metrics.kinds import RESTARTS


@dataclass(frozen=True)
class BandRules:
    history: float = 600.0  # seconds of points before the recent ones that make the normal band
    recent_steps: float = 2.0  # the recent points: this many of the series' steps ...
    min_recent: float = 30.0  # ... and at least this many seconds
    min_points: int = 5  # points the normal band needs
    min_z: float = 3.0  # spreads above the median a suspect's series must reach
    max_z: float = 1000.0  # a score is capped here (the floors below already bound it: 20 per doubling)
    relative_floor: float = 0.05  # the spread is at least this share of the median ...
    restarts_floor: float = 0.25  # ... and, for restarts (whole counts), this: one restart is 4 spreads


@dataclass(frozen=True)
class Band:
    median: float
    q1: float
    q3: float
    points: int

    def spread(self, kind: str, rules: BandRules) -> float:
        floor = rules.restarts_floor if kind == RESTARTS else 0.0
        return max(self.q3 - self.q1, rules.relative_floor * abs(self.median), floor, 1e-12)


def band(values: Sequence[float]) -> Band | None:
    """The median and quartiles of ``values`` (None for fewer than 2)."""
    if len(values) < 2:
        return None
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return Band(median, q1, q3, len(values))


def step(times: Sequence[float]) -> float | None:
    """A series' resolution: the median gap between its (sorted) points."""
    gaps = [b - a for a, b in zip(times, times[1:], strict=False) if b > a]
    return statistics.median(gaps) if gaps else None


@dataclass
class MetricShift:
    """One series that left its normal band."""

    service: str
    pod: str | None
    name: str
    kind: str
    attributes: str | None
    band: Band
    observed: float
    z: float  # spreads above the median
    onset: float | None  # its first recent point above the band

    @property
    def score(self) -> float:
        return self.z

    def describe(self) -> str:
        where = f" of pod {self.pod}" if self.pod else ""
        b = self.band
        return (
            f"{self.name}{where} {self.observed:.4g} (normal {b.q1:.4g}-{b.q3:.4g}, "
            f"median {b.median:.4g} over {b.points} points): {self.z:.1f} spreads above"
        )

    def to_json(self) -> dict:
        b = self.band
        return {
            "metric": self.name,
            "kind": self.kind,
            "pod": self.pod,
            "attributes": self.attributes,
            "observed": self.observed,
            "median": b.median,
            "normal": [b.q1, b.q3],
            "deviation": round(self.z, 2),
            "onset": self.onset,
        }


def judge(
    points: Sequence[tuple[float, float]],
    now: float,
    kind: str,
    rules: BandRules,
    series: tuple[str, str | None, str, str | None],
) -> MetricShift | None:
    """Whether one series (``points``: (time, value) sorted by time, none after ``now``) left its
    normal band; ``series`` is its (service, pod, name, attributes)."""
    times = [t for t, _ in points]
    gap = step(times)
    if gap is None:
        return None
    cut = now - max(rules.recent_steps * gap, rules.min_recent)
    first, middle = bisect_left(times, cut - rules.history), bisect_right(times, cut)
    recent = points[middle : bisect_right(times, now)]
    if not recent or middle - first < rules.min_points:
        return None
    b = band([v for _, v in points[first:middle]])
    spread = b.spread(kind, rules)
    observed = max(v for _, v in recent)
    z = min((observed - b.median) / spread, rules.max_z)
    if z < rules.min_z:
        return None
    onset = min((t for t, v in recent if v > b.q3), default=None)
    service, pod, name, attributes = series
    return MetricShift(service, pod, name, kind, attributes, b, observed, z, onset)


@dataclass
class MetricSuspect(Accused[MetricShift]):
    """A service whose resources left normal: its score is, per kind (cpu, memory, restarts), its
    furthest series' (names of one kind, ``k8s.pod.cpu.usage`` and its limit share, say, are one fact)."""

    @property
    def score(self) -> float:
        best: dict[str, float] = {}
        for s in self.signals:
            best[s.kind] = max(best.get(s.kind, 0.0), s.z)
        return sum(best.values())


def suspects(shifts: Sequence[MetricShift]) -> dict[str, MetricSuspect]:
    """The shifts grouped by service."""
    found: dict[str, MetricSuspect] = {}
    for s in shifts:
        found.setdefault(s.service, MetricSuspect(s.service)).signals.append(s)
    return found
