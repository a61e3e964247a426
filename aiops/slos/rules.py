"""Burn-rate alerting, pure: counts in, burn rates, status, budget and daily history out.

An SLO with objective 99.9 % has an error budget of 0.1 % of its events. The *burn rate* over a
window is the share of bad events in it divided by the budget: 1 spends the budget exactly over
the SLO period, 14.4 spends 2 % of a 30-day budget in one hour. The Google SRE workbook's
multiwindow, multi-burn-rate rules (ch. 5, "Alerting on SLOs", table 5-8) page or open a ticket
when a long window *and* a short one both burn fast: the long window proves the burn is
significant, the short one that it is still going on (so the alert resets soon after recovery).

A window younger than its length is judged on the data it has (the counts are whatever the store
holds in it), so an SLO created during a total outage pages at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

DAY = 86_400
# Window name -> length in seconds (the names are the API's and the metrics' labels).
WINDOWS: dict[str, int] = {"5m": 300, "30m": 1800, "1h": 3600, "6h": 21_600, "3d": 3 * DAY}
# (status, burn-rate threshold, long window, short window), most urgent first.
ALERT_RULES: tuple[tuple[str, float, str, str], ...] = (
    ("page", 14.4, "1h", "5m"),
    ("page", 6.0, "6h", "30m"),
    ("ticket", 1.0, "3d", "6h"),
)
STATUSES = ("ok", "ticket", "page")
HISTORY_DAYS = 30


@dataclass(frozen=True)
class Counts:
    """Good and total events in a window: requests (availability, latency) or minutes (throughput)."""

    good: int = 0
    total: int = 0

    @property
    def bad_fraction(self) -> float:
        return (self.total - self.good) / self.total if self.total else 0.0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.good + other.good, self.total + other.total)


def error_budget(objective: float) -> float:
    """The share of events allowed to be bad: 0.001 for 99.9 (percent)."""
    return 1.0 - objective / 100.0


def burn_rate(counts: Counts, objective: float) -> float:
    """How fast ``counts`` spend the budget: 1.0 spends it exactly over the SLO period; 0 without data."""
    budget = error_budget(objective)
    if counts.total == 0:
        return 0.0
    return counts.bad_fraction / budget if budget > 0 else math.inf


def burn_rates(by_window: Mapping[str, Counts], objective: float) -> dict[str, float]:
    return {name: burn_rate(by_window.get(name, Counts()), objective) for name in WINDOWS}


def firing(rates: Mapping[str, float]) -> tuple[str, float, str, str] | None:
    """The most urgent rule whose long and short windows both burn at least its threshold."""
    for rule in ALERT_RULES:
        _, threshold, long, short = rule
        if rates.get(long, 0.0) >= threshold and rates.get(short, 0.0) >= threshold:
            return rule
    return None


def status(rates: Mapping[str, float]) -> str:
    """``page``, ``ticket`` or ``ok``."""
    rule = firing(rates)
    return rule[0] if rule else "ok"


def budget_remaining(counts: Counts, objective: float) -> float:
    """The share of the period's budget not spent yet: 1.0 untouched, 0 spent, below 0 overspent."""
    return 1.0 - burn_rate(counts, objective)


def day_of(ts: float) -> int:
    """UTC day number (days since the epoch)."""
    return int(ts // DAY)


def history(daily: Mapping[int, Counts], today: int, objective: float,
            days: int = HISTORY_DAYS) -> list[dict]:
    """One point per UTC day, oldest first, ending today: the day's compliance (percent of good
    events, None without data) and whether it met the objective."""
    points = []
    for day in range(today - days + 1, today + 1):
        c = daily.get(day, Counts())
        compliance = 100.0 * c.good / c.total if c.total else None
        points.append({
            "date": _date(day), "good": c.good, "total": c.total,
            "compliance": None if compliance is None else round(compliance, 4),
            "met": None if compliance is None else compliance >= objective,
        })
    return points


def period_counts(daily: Mapping[int, Counts], today: int, window_days: int) -> Counts:
    """The counts of the SLO period: the last ``window_days`` UTC days, today included."""
    total = Counts()
    for day in range(today - window_days + 1, today + 1):
        total += daily.get(day, Counts())
    return total


def _date(day: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(day * DAY, tz=UTC).strftime("%Y-%m-%d")


def rounded(rates: Mapping[str, float]) -> dict[str, float]:
    """Burn rates for JSON (an infinite rate, objective 100 % with a bad event, shows as 1e9)."""
    return {k: round(min(v, 1e9), 4) for k, v in rates.items()}
