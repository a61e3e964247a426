"""The detection cycle's baselines in the store: read them, and fold a window into them (normal
windows only; every window while they are learned anew after a silence).

The mean rules' baselines (:mod:`aiops.detection.ewma`, one row per endpoint) and the evidence
series' (:mod:`aiops.detection.robust`, one row per self-time, duration or call series) are
read as plain rows and written back with one UPDATE and one INSERT each per cycle.
"""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select, update

from aiops.detection import ewma as bl
from aiops.detection import robust as lb
from aiops.detection.rules import Thresholds
from aiops.store.models import Baseline, SignalBaseline
from telemetry.db import db

RELEARN_WEIGHT = 0.5  # weight of each window while relearning after a silence


def read_means() -> dict:
    """Every endpoint's baseline of the mean rules."""
    return {
        (b.service, b.endpoint): bl.BaselineValue(b.latency_ms, b.error_rate, b.samples, b.windows)
        for b in db.session.execute(select(Baseline.__table__))
    }


def read_signals() -> dict:
    """Every series' baseline, read as plain rows (ORM objects cost more than the cycle's math)."""
    table = SignalBaseline.__table__
    return {
        (r.signal, r.source, r.target): lb.LogBaseline(r.center, r.var, r.tail, r.far, r.samples, r.windows)
        for r in db.session.execute(select(table))
    }


def learn_means(stats: dict, baselines: dict, anomalous: set, th: Thresholds, alpha: float,
                 now: float, mode: str) -> None:
    """Fold normal windows into the EWMA baselines of the mean rules (see :func:`learn_signals`
    for ``mode``)."""
    changed, added = [], []
    for key, s in stats.items():
        current = None if mode == "reseed" else baselines.get(key)
        if mode == "normal" and (key in anomalous or not bl.is_normal(s, current, th)):
            continue  # learn from normal windows only
        b = bl.learn(current, s.mean_ms, s.error_rate, s.count,
                     RELEARN_WEIGHT if mode == "relearn" else alpha)
        row = {"service": key[0], "endpoint": key[1], "latency_ms": b.latency_ms,
               "error_rate": b.error_rate, "samples": b.samples, "windows": b.windows, "updated_at": now}
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
