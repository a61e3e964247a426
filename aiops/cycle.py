"""One detection cycle: read new spans, detect, analyse, update incidents and baselines.

Exactly one cycle runs per interval however many workers or instances call
:func:`run_scheduled`: a cycle first *claims* the interval with one atomic
conditional UPDATE on the ``detection_state`` row (works the same on SQLite and
PostgreSQL, across processes and machines). The claim is also a lease, so a
cycle whose process died is taken over once the lease expires.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from aiops import baseline as bl
from aiops import notify, storm
from aiops import selftime as st
from aiops.detect import Thresholds, detect, self_time, window_stats
from aiops.incidents import Policy, apply_groups, lead_type, open_incidents, resolve_quiet
from aiops.models import Baseline, DetectionCycle, DetectionState, SelfTimeBaseline
from aiops.rca import analyse
from telemetry import selfmetrics, store
from telemetry.db import begin_write, db
from telemetry.rows import span_key

log = logging.getLogger(__name__)

STATE_ID = 1
MAX_SPANS_PER_CYCLE = 500_000


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _ensure_state() -> None:
    if db.session.get(DetectionState, STATE_ID) is None:
        try:
            begin_write()
            db.session.add(DetectionState(id=STATE_ID, cursor=0, cycles=0))
            db.session.commit()
        except IntegrityError:  # another process created it first
            db.session.rollback()
    else:
        db.session.rollback()


def claim(now: float | None, interval: float, lease: float, force: bool = False) -> float | None:
    """Atomically take this interval's cycle: the claim time, or None if another process has it.

    With ``now=None`` the clock is read once the state row is locked: a time
    read before waiting for the lock would be stale, and the next claim,
    measured against it, could then start a cycle less than an interval later.
    """
    _ensure_state()
    begin_write()  # SQLite: BEGIN IMMEDIATE takes the write lock
    db.session.execute(  # PostgreSQL: lock the row (FOR UPDATE is a no-op on SQLite)
        select(DetectionState.id).where(DetectionState.id == STATE_ID).with_for_update()
    )
    if now is None:
        now = time.time()
    cond = [
        DetectionState.id == STATE_ID,
        (DetectionState.lease_until.is_(None)) | (DetectionState.lease_until < now),
    ]
    if not force:
        # 10% slack absorbs scheduler jitter between workers' timers.
        cond.append(
            DetectionState.last_cycle_at.is_(None)
            | (DetectionState.last_cycle_at <= now - 0.9 * interval)
        )
    result = db.session.execute(
        update(DetectionState)
        .where(*cond)
        .values(last_cycle_at=now, lease_until=now + lease, lease_owner=owner_name())
    )
    db.session.commit()
    return now if result.rowcount == 1 else None


def _baselines() -> dict:
    return {
        (b.service, b.endpoint): bl.BaselineValue(b.latency_ms, b.error_rate, b.samples, b.windows)
        for b in db.session.scalars(select(Baseline))
    }


def _self_baselines() -> dict:
    return {
        (b.service, b.endpoint): st.SelfBaseline(b.mean_log, b.var_log, b.samples, b.windows)
        for b in db.session.scalars(select(SelfTimeBaseline))
    }


def _rows_by_key(model) -> dict:
    """All baseline rows in one query: a get() per endpoint costs a SELECT plus an autoflush each."""
    return {(row.service, row.endpoint): row for row in db.session.scalars(select(model))}


def _learn_self(values: dict, baselines: dict, skip: set, rules: st.SelfRules,
                alpha: float, now: float) -> None:
    rows = _rows_by_key(SelfTimeBaseline)
    for key, samples in values.items():
        current = baselines.get(key)
        if key in skip or not st.learnable(samples, current, rules):
            continue  # learn from normal windows only
        learned = st.learn(current, samples, alpha)
        row = rows.get(key) or SelfTimeBaseline(service=key[0], endpoint=key[1])
        row.mean_log, row.var_log = learned.mean_log, learned.var_log
        row.samples, row.windows, row.updated_at = learned.samples, learned.windows, now
        db.session.add(row)


def run_cycle(config: Mapping, now: float | None = None, started_at: float | None = None) -> dict:
    """Run one cycle over the spans since the last one (the caller holds the claim).

    ``now`` is the cycle's clock: wall time live, the data's own time in replay.
    ``started_at`` is when the cycle was claimed (the time the one-per-interval
    rule is measured by); the cycle history records it as the cycle's start.
    """
    wall_start = time.time() if started_at is None else started_at
    th = Thresholds.from_config(config)
    state = db.session.get(DetectionState, STATE_ID)
    cursor = state.cursor if state else 0
    upto = min(store.max_span_id(), cursor + MAX_SPANS_PER_CYCLE)
    window = store.spans_after(cursor, upto)
    if now is None:
        now = wall_start
    ignored = config["AIOPS_IGNORE_SERVICES"]
    stats = window_stats(window, ignored)
    baselines = _baselines()
    anomalies = detect(stats, baselines, th)
    rules = st.SelfRules()
    self_baselines = _self_baselines()
    verdicts, self_values = st.shifts(st.SpanIndex(window), self_baselines, rules, now, ignored)
    anomalies += self_time(verdicts, rules, anomalies)
    shift_scores = {k: v.score for k, v in verdicts.items() if v.significant(rules)}
    groups = analyse(anomalies, window, store.trace_spans, baselines, th, shift_scores)

    # Everything the cycle decided is written in one transaction.
    db.session.rollback()
    begin_write()
    policy = Policy.from_config(config)
    # Traffic = requests entering the system (root spans) not of ignored services.
    total_requests = sum(1 for sp in window if sp.parent_span_id is None and sp.service not in ignored)
    # A flood of new root causes (forged or broken telemetry) opens one storm incident, not thousands.
    open_roots = {(i.root_service, i.root_endpoint) for i in open_incidents()}
    groups, stormed = storm.cap(groups, open_roots, config["AIOPS_MAX_NEW_INCIDENTS"])
    changes = resolve_quiet(apply_groups(groups, now, policy, total_requests), now, policy)
    queued = notify.dispatch(changes, now, config)
    opened, updated, resolved = changes.opened, changes.updated + changes.reopened, changes.resolved
    opened_kinds = [(lead_type(i), i.severity) for i in opened]
    anomalous = {a.key for a in anomalies}
    baseline_rows = _rows_by_key(Baseline)
    for key, s in stats.items():
        if key in anomalous or not bl.is_normal(s, baselines.get(key), th):
            continue  # learn from normal windows only
        learned = bl.learn(baselines.get(key), s.mean_ms, s.error_rate, s.count,
                           config["AIOPS_EWMA_ALPHA"])
        row = baseline_rows.get(key) or Baseline(service=key[0], endpoint=key[1])
        row.latency_ms, row.error_rate = learned.latency_ms, learned.error_rate
        row.samples, row.windows, row.updated_at = learned.samples, learned.windows, now
        db.session.add(row)
    slow_keys = {span_key(span) for v in verdicts.values() if v.significant(rules)
                 for span, *_ in v.strong}
    _learn_self(self_values, self_baselines, slow_keys, rules, config["AIOPS_EWMA_ALPHA"], now)
    state = db.session.get(DetectionState, STATE_ID)
    state.cursor = upto
    state.cycles += 1
    state.lease_until = None
    summary = {
        "started_at": wall_start,
        "spans": len(window),
        "endpoints": len(stats),
        "anomalies": [
            {"service": a.service, "endpoint": a.endpoint, "type": a.type, "message": a.message}
            for a in anomalies
        ],
        "incidents_opened": [i.id for i in opened],
        "incidents_updated": [i.id for i in updated],
        "incidents_reopened": [i.id for i in changes.reopened],
        "incidents_resolved": [i.id for i in resolved],
        "notifications_queued": queued,
        "groups_merged_into_storm": stormed,
    }
    db.session.add(
        DetectionCycle(
            started_at=wall_start, finished_at=time.time(), owner=owner_name(),
            spans=len(window), anomalies=len(anomalies), incidents_opened=len(opened),
            incidents_updated=len(updated), incidents_resolved=len(resolved),
        )
    )
    db.session.commit()
    selfmetrics.cycle_finished(time.time() - wall_start, [a.type for a in anomalies], opened_kinds, stormed)
    summary["duration_ms"] = round((time.time() - wall_start) * 1000, 2)
    return summary


def release() -> None:
    """Give the lease back after a failed cycle so the next tick can retry."""
    db.session.rollback()
    begin_write()
    db.session.execute(
        update(DetectionState).where(DetectionState.id == STATE_ID).values(lease_until=None)
    )
    db.session.commit()


def lease_seconds(config: Mapping) -> float:
    """How long a claim holds: ``AIOPS_CYCLE_LEASE``, else max(60 s, 4 intervals).

    It must outlast the longest cycle, or a second process could start one
    while the first still runs; it is also how long detection pauses when the
    process running a cycle dies.
    """
    lease = config.get("AIOPS_CYCLE_LEASE")
    if lease is None:
        return max(60.0, 4 * config["AIOPS_DETECTION_INTERVAL"])
    if lease <= 0:
        raise ValueError(f"AIOPS_CYCLE_LEASE must be positive, not {lease!r}")
    return float(lease)


def run_claimed(config: Mapping, *, force: bool, now: float | None = None) -> dict | None:
    """Claim and run a cycle; None when another process owns this interval."""
    interval = config["AIOPS_DETECTION_INTERVAL"]
    lease = lease_seconds(config)
    claimed_at = claim(None, interval, lease, force=force)
    if claimed_at is None:
        return None
    try:
        return run_cycle(config, now=now, started_at=claimed_at)
    except Exception:
        selfmetrics.cycle_failed()
        release()
        raise


def prune_cycles(older_than: float) -> int:
    """Forget cycle history past retention (incidents and baselines are kept)."""
    begin_write()
    removed = db.session.execute(
        delete(DetectionCycle).where(DetectionCycle.started_at < older_than)
    ).rowcount
    db.session.commit()
    return removed or 0
