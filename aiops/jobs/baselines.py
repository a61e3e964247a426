"""The detection cycle's baselines in the store: read them, and fold a window into them (normal
windows only; every window while they are learned anew after a silence).

The mean rules' baselines (:mod:`aiops.detection.ewma`, one row per endpoint) and the evidence
series' (:mod:`aiops.detection.robust`, one row per self-time, duration or call series) are
read as plain rows and written back with one UPDATE and one INSERT each per cycle.
"""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select, update

from aiops.detection import degradation, traffic
from aiops.detection import ewma as bl
from aiops.detection import robust as lb
from aiops.detection.rules import Thresholds
from aiops.kinds import AnomalyType
from aiops.store.models import Baseline, SignalBaseline
from telemetry.db import db

RELEARN_WEIGHT = 0.5  # weight of each window while relearning after a silence


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
        row = {"service": key[0], "endpoint": key[1], "latency_ms": b.latency_ms, "error_rate": b.error_rate,
               "samples": b.samples, "windows": b.windows, "slow_ms": b.slow_ms,
               "slow_windows": b.slow_windows, "traffic_ratio": b.traffic_ratio,
               "traffic_windows": b.traffic_windows, "updated_at": now}
        (changed if key in baselines else added).append(row)
    _write_rows(Baseline.__table__, ("service", "endpoint"), changed, added)


def _write_rows(table, keys: tuple[str, ...], changed: list[dict], added: list[dict]) -> None:
    """One UPDATE (by primary key) for the changed rows and one INSERT for the new ones."""
    if changed:
        db.session.execute(
            update(table).where(*[table.c[k] == bindparam(f"k_{k}") for k in keys]),
            [{**r, **{f"k_{k}": r[k] for k in keys}} for r in changed],
        )
    if added:
        db.session.execute(insert(table), added)


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
        row = {"signal": key[0], "source": key[1], "target": key[2], "center": b.center, "var": b.var,
               "tail": b.tail, "far": b.far, "samples": b.samples, "windows": b.windows, "updated_at": now}
        (changed if current is not None else added).append(row)
    _write_rows(SignalBaseline.__table__, ("signal", "source", "target"), changed, added)
