"""The detection cycle's baselines in the store: read them, and fold a window into them (normal
windows only; every window while they are learned anew after a silence).

The mean rules' baselines (:mod:`aiops.detection.ewma`, one row per endpoint) and the evidence
series' (:mod:`aiops.detection.robust`, one row per self-time, duration or call series) are
written back with one UPDATE and one INSERT each per cycle (plain tuples on the driver's cursor:
SQLAlchemy's processing of a thousand rows of dicts cost more than the statements).

The tables are the record; a process also keeps what its last cycle committed
(:class:`Remembered`), tagged with the cycle count the store held after that commit
(``detection_state.cycles``, which every cycle raises by one in its own transaction). A cycle
that finds the count unchanged starts from those, not from a read of every row; any other cycle
in between (another process's, on demand or after a restart, or one that overran its lease)
moved the count, and the tables are read.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from aiops.detection import degradation, traffic
from aiops.detection import ewma as bl
from aiops.detection import robust as lb
from aiops.detection.rules import Thresholds
from aiops.kinds import AnomalyType
from aiops.store.models import Baseline, SignalBaseline
from telemetry.db import db, executemany

RELEARN_WEIGHT = 0.5  # weight of each window while relearning after a silence


@dataclass
class Remembered:
    """The baselines as this process's last cycle committed them, and the cycle count then."""

    cycles: int | None = None  # None: nothing remembered (never, or lent to a cycle running now)
    means: dict | None = None
    signals: dict | None = None

    def lend(self, cycles: int) -> tuple[dict, dict]:
        """(means, signals) for a cycle that found the store at ``cycles``: the remembered ones if
        they are the store's, else read. Forgotten meanwhile: the cycle changes them as it learns,
        and a cycle that fails commits nothing."""
        if self.cycles is not None and self.cycles == cycles:
            found = self.means, self.signals
        else:
            found = read_means(), read_signals()
        self.cycles = self.means = self.signals = None
        return found

    def keep(self, means: dict, signals: dict, read_at: int, committed_at: int) -> None:
        """Remember a cycle's learned baselines once it committed, if no other cycle committed
        since it read them (the count moved by exactly its own step)."""
        if committed_at == read_at + 1:
            self.cycles, self.means, self.signals = committed_at, means, signals


def read_means() -> dict:
    """Every endpoint's baseline of the mean rules, with its slow latency and expected traffic."""
    return {
        (b.service, b.endpoint): bl.BaselineValue(b.latency_ms, b.error_rate, b.samples, b.windows,
                                                  b.slow_ms, b.slow_windows or 0, b.traffic_ratio,
                                                  b.traffic_windows or 0)
        for b in db.session.execute(select(Baseline.__table__))
    }


def read_signals() -> dict:
    """Every series' baseline, read as plain rows (ORM objects cost more than the cycle's math)."""
    table = SignalBaseline.__table__
    return {
        (r.signal, r.source, r.target): lb.LogBaseline(r.center, r.var, r.tail, r.far, r.samples, r.windows)
        for r in db.session.execute(select(table))
    }


def learn_means(stats: dict, baselines: dict, anomalous: dict, th: Thresholds, alpha: float,
                now: float, mode: str, slow: degradation.Config, expect: traffic.Config) -> None:
    """Fold the window into every endpoint's baselines (see :func:`learn_signals` for ``mode``):
    the fast EWMA and the slow latency baseline from normal windows only, the expected traffic from
    every window where the rest of the system had traffic. ``anomalous``: the anomaly types of
    each endpoint flagged in the window."""
    changed, added = [], []
    total = sum(s.count for s in stats.values())
    for key in sorted(set(stats) | set(baselines)):
        s = stats.get(key)
        count = s.count if s is not None else 0
        old = None if mode == "reseed" else baselines.get(key)
        b = old
        flagged = key in anomalous
        if s is not None and count > 0 and (mode != "normal" or not flagged and bl.is_normal(s, old, th)):
            b = bl.learn(old, s.mean_ms, s.error_rate, count, RELEARN_WEIGHT if mode == "relearn" else alpha)
        if b is None:
            continue  # never seen normal: nothing to remember yet
        if s is not None:
            b = degradation.learn(b, s.mean_ms, count, slow, mode, flagged)
        silent = AnomalyType.TRAFFIC_DROP in anomalous.get(key, ()) or (key[0], "") in anomalous
        b = traffic.learn(b, count, total - count, expect, mode, silent)
        if b == baselines.get(key):
            continue
        row = (b.latency_ms, b.error_rate, b.samples, b.windows, b.slow_ms, b.slow_windows, b.traffic_ratio,
               b.traffic_windows, now, *key)
        (changed if key in baselines else added).append(row)
        baselines[key] = b
    _write_rows(Baseline.__table__, _MEAN_COLUMNS, changed, added)


_MEAN_COLUMNS = ("latency_ms", "error_rate", "samples", "windows", "slow_ms", "slow_windows", "traffic_ratio",
                 "traffic_windows", "updated_at", "service", "endpoint")
_SIGNAL_COLUMNS = ("center", "var", "tail", "far", "samples", "windows", "updated_at",
                   "signal", "source", "target")


def _write_rows(table, columns: tuple[str, ...], changed: list[tuple], added: list[tuple]) -> None:
    """One UPDATE (by primary key) for the changed rows and one INSERT for the new ones; a row is
    the values of ``columns``, the table's primary key last."""
    keys = len(table.primary_key.columns)
    quote = db.session.connection().dialect.identifier_preparer.quote
    names = [quote(c) for c in columns]
    if changed:
        values = ", ".join(f"{c} = ?" for c in names[:-keys])
        where = " AND ".join(f"{c} = ?" for c in names[-keys:])
        executemany(f"UPDATE {quote(table.name)} SET {values} WHERE {where}", changed)
    if added:
        marks = ", ".join("?" * len(columns))
        executemany(f"INSERT INTO {quote(table.name)} ({', '.join(names)}) VALUES ({marks})", added)


def learn_signals(values: dict, baselines: dict, skip: set, rules: lb.Rules,
                   alpha: float, now: float, mode: str) -> None:
    """Fold this window's values into every series that stayed normal: one UPDATE and one
    INSERT statement for all of them. After a silence, ``mode`` is ``reseed`` (the first window:
    every series seen starts anew) and then ``relearn`` (every series learns, half weight)."""
    changed, added = [], []
    for key, samples in values.items():
        current = baselines.get(key)
        if mode == "reseed":
            b = lb.reseed(current, samples, rules)
        elif mode == "relearn":
            b = lb.learn(current, samples, alpha, rules, weight=RELEARN_WEIGHT)
        elif key in skip or not lb.learnable(samples, current, rules):
            continue  # learn from normal windows only
        else:
            b = lb.learn(current, samples, alpha, rules)
        row = (b.center, b.var, b.tail, b.far, b.samples, b.windows, now, *key)
        (changed if current is not None else added).append(row)
        baselines[key] = b
    _write_rows(SignalBaseline.__table__, _SIGNAL_COLUMNS, changed, added)
