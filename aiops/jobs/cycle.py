"""One detection cycle: read new spans, detect, analyse, update incidents and baselines.

Exactly one cycle runs per interval however many workers or instances call
:func:`run_scheduled`: a cycle first *claims* the interval with one atomic
conditional UPDATE on the ``detection_state`` row (works the same on SQLite and
PostgreSQL, across processes and machines). The claim is also a lease, so a
cycle whose process died is taken over once the lease expires.
"""

from __future__ import annotations

import gc
import logging
import time
from contextlib import contextmanager

from flask import current_app
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from aiops import instruments as selfmetrics
from aiops import outbox
from aiops.detection import evidence
from aiops.detection import ewma as bl
from aiops.detection import robust as lb
from aiops.detection import selftime as st
from aiops.detection.rules import Thresholds, detect, network, shifted, window_stats
from aiops.incidents import storm
from aiops.incidents.lifecycle import apply_groups, open_incidents, resolve_quiet
from aiops.incidents.rules import Policy, lead_type
from aiops.logs import feed as logfeed
from aiops.logs import storage as logstate
from aiops.owner import owner_name
from aiops.rca.analysis import analyse
from aiops.settings import Settings
from aiops.store.models import Baseline, DetectionCycle, DetectionState, SignalBaseline
from telemetry import store
from telemetry.db import begin_write, db

log = logging.getLogger(__name__)

STATE_ID = 1
MAX_SPANS_PER_CYCLE = 500_000
MAX_CONTEXT_TRACES = 5_000  # traces whose earlier SERVER spans a cycle looks up for its calls
MAX_PENDING, MAX_PENDING_SPANS = 200, 20  # series whose evidence is carried, and spans per series
PENDING_WINDOWS = 4  # evidence adds up over at most this many detection intervals
RELEARN_WEIGHT = 0.5  # weight of each window while relearning after a silence


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
        for b in db.session.execute(select(Baseline.__table__))
    }


def _signal_baselines() -> dict:
    """Every series' baseline, read as plain rows (ORM objects cost more than the cycle's math)."""
    table = SignalBaseline.__table__
    return {
        (r.signal, r.source, r.target): lb.LogBaseline(r.center, r.var, r.tail, r.far, r.samples, r.windows)
        for r in db.session.execute(select(table))
    }


def _pending_in(saved: list | None, now: float, horizon: float) -> tuple[dict, dict]:
    """The evidence carried from the last windows, its spans read back from the store:
    (verdicts by series, callee operation by CLIENT span). Older than ``horizon``: dropped."""
    entries = [e for e in saved or [] if 0 <= now - e["since"] <= horizon]
    rows = store.spans_by_id(ident for e in entries for ident, *_ in e["strong"])
    verdicts, names = {}, {}
    for e in entries:
        strong = [(rows[i], v, typ, z) for i, v, typ, z, _ in e["strong"] if i in rows]
        names.update({(rows[i].trace_id, rows[i].span_id): name
                      for i, *_, name in e["strong"] if name and i in rows})
        key = tuple(e["key"])
        verdicts[key] = lb.Shift(key, e["judged"], e["expected"], e["power"], strong)
    return verdicts, names


def _pending_out(pending: dict, names: dict, saved: list | None, now: float) -> list:
    """What to carry to the next window: the strongest unfinished verdicts, bounded; spans by
    their row id."""
    since = {tuple(e["key"]): e["since"] for e in saved or []}
    kept = sorted(pending.items(), key=lambda kv: -kv[1].score)[:MAX_PENDING]
    return [{
        "key": list(key), "since": min(since.get(key, now), v.onset or now),
        "judged": v.judged, "expected": v.expected, "power": v.power,
        "strong": [[s.id, value, typical, z, names.get((s.trace_id, s.span_id))]
                   for s, value, typical, z in v.strong[-MAX_PENDING_SPANS:]],
    } for key, v in kept]


def _learning_mode(state, window: list, now: float, settings: Settings) -> tuple[str, float | None]:
    """``normal``; or, when data resumes after ``AIOPS_REBASELINE_AFTER`` of silence, ``reseed``
    for that window and ``relearn`` for ``AIOPS_RELEARN_FOR`` seconds after it: the baselines
    describe a system that may no longer exist, so they are learned anew and nothing is raised.
    Returns the mode and the end of the relearning period."""
    last = state.last_data_at if state else None
    until = state.relearn_until if state else None
    if window and last is not None and abs(now - last) > settings.rebaseline_after:
        log.info("data resumed %.0f s after the last window: relearning the baselines", now - last)
        return "reseed", now + settings.relearn_for
    if until is not None and now <= until:
        return "relearn", until
    return "normal", None


def _learn_means(stats: dict, baselines: dict, anomalous: set, th: Thresholds, alpha: float,
                 now: float, mode: str) -> None:
    """Fold normal windows into the EWMA baselines of the mean rules (see :func:`_learn_signals`
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


def _learn_signals(values: dict, baselines: dict, skip: set, rules: lb.Rules,
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


@contextmanager
def _without_gc():
    """A cycle builds a few hundred thousand short-lived objects (rows, indexes, verdicts) with no
    reference cycles among them; the cyclic collector, triggered by their count, would walk the
    whole process heap several times a cycle (a third of its time). Refcounting frees them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run_cycle(settings: Settings, now: float | None = None, started_at: float | None = None) -> dict:
    """Run one cycle over the spans since the last one (the caller holds the claim).

    ``now`` is the cycle's clock: wall time live, the data's own time in replay.
    ``started_at`` is when the cycle was claimed (the time the one-per-interval
    rule is measured by); the cycle history records it as the cycle's start.
    """
    with _without_gc():
        return _run_cycle(settings, now, started_at)


def _run_cycle(settings: Settings, now: float | None, started_at: float | None) -> dict:
    wall_start = time.time() if started_at is None else started_at
    th = Thresholds.from_settings(settings)
    state = db.session.get(DetectionState, STATE_ID)
    cursor = state.cursor if state else 0
    upto = min(store.max_span_id(), cursor + MAX_SPANS_PER_CYCLE)
    window = store.spans_after(cursor, upto)
    if now is None:
        now = wall_start
    ignored = settings.ignore_services
    stats = window_stats(window, ignored)
    baselines = _baselines()
    rules = lb.Rules()
    signal_baselines = _signal_baselines()
    traces = sorted(st.unmatched_calls(window))[:MAX_CONTEXT_TRACES]
    context = store.server_spans(traces, cursor) if traces else []
    horizon = PENDING_WINDOWS * settings.detection_interval
    saved = state.pending if state else None
    earlier, names = _pending_in(saved, now, horizon)
    seen = evidence.assess(window, signal_baselines, rules, now, ignored, context, earlier, names)
    mode, relearn_until = _learning_mode(state, window, now, settings)
    anomalies = [] if mode != "normal" else detect(stats, baselines, th)
    if mode == "normal":
        anomalies += shifted(seen.own, rules, "self", anomalies)
        anomalies += network(seen.suspects, anomalies)
        anomalies += shifted(seen.whole, rules, "duration", anomalies)
    memory = logfeed.registered(current_app)
    logstate.load(memory)  # the saved log memory, when it is newer than this process's
    logs = logfeed.judge(memory, now, window, anomalies, mode)  # None: no logs
    if mode == "normal":
        anomalies += logfeed.anomalies(logs, window, anomalies)
    groups = analyse(anomalies, window, store.trace_spans, baselines, th, seen.suspects, logs)

    # Everything the cycle decided is written in one transaction.
    db.session.rollback()
    begin_write()
    policy = Policy.from_settings(settings)
    # Traffic = requests entering the system (root spans) not of ignored services.
    total_requests = sum(1 for sp in window if sp.parent_span_id is None and sp.service not in ignored)
    # A flood of new root causes (forged or broken telemetry) opens one storm incident, not thousands.
    open_roots = {(i.root_service, i.root_endpoint) for i in open_incidents()}
    groups, stormed = storm.cap(groups, open_roots, settings.max_new_incidents)
    changes = resolve_quiet(apply_groups(groups, now, policy, total_requests), now, policy)
    queued = outbox.dispatch(changes, now, settings)
    opened, updated, resolved = changes.opened, changes.updated + changes.reopened, changes.resolved
    opened_kinds = [(lead_type(i), i.severity) for i in opened]
    _learn_means(stats, baselines, {a.key for a in anomalies}, th, settings.ewma_alpha, now, mode)
    _learn_signals(seen.values, signal_baselines, seen.skip, rules, settings.ewma_alpha, now, mode)
    logstate.save(memory, logs, now)  # templates, their ids on the log rows, miners, log baselines
    state = db.session.get(DetectionState, STATE_ID)
    state.cursor = upto
    state.cycles += 1
    state.lease_until = None
    if window:
        state.last_data_at = now
    state.relearn_until = relearn_until
    state.pending = [] if mode != "normal" else _pending_out(seen.pending, seen.names, saved, now)
    summary = {
        "started_at": wall_start,
        "spans": len(window),
        "endpoints": len(stats),
        "anomalies": [
            {"service": a.service, "endpoint": a.endpoint, "type": a.type, "message": a.message}
            for a in anomalies
        ],
        "learning": mode,
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


def forget_last_data() -> None:
    """Make the next window with spans count as data resuming after a silence (its baselines are
    relearned): the replay does this between files, which are separate recordings with an
    unknown gap between them."""
    _ensure_state()
    begin_write()
    db.session.execute(update(DetectionState).where(DetectionState.id == STATE_ID).values(last_data_at=0.0))
    db.session.commit()


def release() -> None:
    """Give the lease back after a failed cycle so the next tick can retry."""
    db.session.rollback()
    begin_write()
    db.session.execute(
        update(DetectionState).where(DetectionState.id == STATE_ID).values(lease_until=None)
    )
    db.session.commit()


def run_claimed(settings: Settings, *, force: bool, now: float | None = None) -> dict | None:
    """Claim and run a cycle; None when another process owns this interval."""
    interval = settings.detection_interval
    lease = settings.cycle_lease_seconds
    claimed_at = claim(None, interval, lease, force=force)
    if claimed_at is None:
        return None
    try:
        return run_cycle(settings, now=now, started_at=claimed_at)
    except Exception:
        selfmetrics.cycle_failed()
        logstate.forget(logfeed.registered(current_app))  # the next cycle reloads the saved log memory
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
