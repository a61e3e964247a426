"""One detection cycle: read new spans, detect, analyse, update incidents and baselines.

Exactly one cycle runs per interval however many workers or instances call :func:`run_claimed`
(the worker's schedule, ``POST /aiops/analyze``, ``flask aiops analyze`` and the replay): a cycle
first claims the interval, a lease (:mod:`aiops.jobs.lease`), and writes only while it holds it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import delete, update

from aiops import instruments as selfmetrics
from aiops import outbox
from aiops.detection import degradation, evidence, shifts, traffic
from aiops.detection import robust as lb
from aiops.detection import rules as dr
from aiops.detection import selftime as st
from aiops.detection.rules import Thresholds, window_stats
from aiops.heap import no_cycle_collection
from aiops.incidents import storm
from aiops.incidents.lifecycle import Changes, apply_groups, open_incidents, resolve_quiet
from aiops.incidents.rules import Policy, lead_type
from aiops.jobs.baselines import Remembered, learn_means, learn_signals
from aiops.jobs.lease import STATE_ID, claim, ensure_state, held, release
from aiops.logs import feed as logfeed
from aiops.logs import storage as logstate
from aiops.logs.signals import LogWindow
from aiops.metrics import feed as metricfeed  # metric evidence for RCA
from aiops.owner import owner_name
from aiops.rca.analysis import analyse
from aiops.settings import Settings
from aiops.slos import service as slos
from aiops.store.models import DetectionCycle, DetectionState
from telemetry import store
from telemetry.db import begin_write, db

log = logging.getLogger(__name__)

BASELINES = "aiops.cycle_baselines"  # app.extensions: the baselines this process's last cycle committed
MAX_SPANS_PER_CYCLE = 500_000
MAX_CONTEXT_TRACES = 5_000  # traces whose earlier spans a cycle looks up (selftime.needs_context)
MAX_PENDING, MAX_PENDING_SPANS = 200, 20  # series whose evidence is carried, and spans per series
PENDING_WINDOWS = 4  # evidence adds up over at most this many detection intervals


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
        verdicts[key] = lb.Shift(key, e["judged"], e["expected"], e["power"], strong, e.get("above", 0))
    return verdicts, names


def _pending_out(pending: dict, names: dict, saved: list | None, now: float) -> list:
    """What to carry to the next window: the strongest unfinished verdicts, bounded; spans by
    their row id."""
    since = {tuple(e["key"]): e["since"] for e in saved or []}
    kept = sorted(pending.items(), key=lambda kv: -kv[1].score)[:MAX_PENDING]
    return [{
        "key": list(key), "since": min(since.get(key, now), v.onset or now),
        "judged": v.judged, "expected": v.expected, "power": v.power, "above": v.above,
        "strong": [[s.id, value, typical, z, names.get((s.trace_id, s.span_id))]
                   for s, value, typical, z in v.strong[-MAX_PENDING_SPANS:]],
    } for key, v in kept]


def _has_data(window: list, ignored: tuple[str, ...]) -> bool:
    """Whether the window holds spans of a service detection analyses: the product's own (its
    dashboard polled, its worker's cycles, ``telemetry.work_spans``) are not data after a silence."""
    return any(span.service not in ignored for span in window)


def _learning_mode(state, data: bool, now: float, settings: Settings) -> tuple[str, float | None]:
    """``normal``; or, when data resumes after ``AIOPS_REBASELINE_AFTER`` of silence, ``reseed``
    for that window and ``relearn`` for ``AIOPS_RELEARN_FOR`` seconds after it: the baselines
    describe a system that may no longer exist, so they are learned anew and nothing is raised.
    Returns the mode and the end of the relearning period."""
    last = state.last_data_at if state else None
    until = state.relearn_until if state else None
    if data and last is not None and abs(now - last) > settings.rebaseline_after:
        log.info("data resumed %.0f s after the last window: relearning the baselines", now - last)
        return "reseed", now + settings.relearn_for
    if until is not None and now <= until:
        return "relearn", until
    return "normal", None


def run_cycle(settings: Settings, now: float | None = None, started_at: float | None = None) -> dict | None:
    """Run one cycle over the spans since the last one (the caller holds the claim).

    ``now`` is the cycle's clock: wall time live, the data's own time in replay.
    ``started_at`` is when the cycle was claimed (the time the one-per-interval
    rule is measured by); the cycle history records it as the cycle's start.
    """
    with no_cycle_collection():
        return _run_cycle(settings, now, started_at)


@dataclass
class _Findings:
    """What a cycle read and decided before writing anything."""

    window: list  # the spans since the last cycle
    cycles: int  # the cycle count the detection state held when the window was read
    data: bool  # whether it holds spans of an analysed service (see _has_data)
    upto: int  # the last span id read: the next cursor
    stats: dict  # per-endpoint window statistics (the mean rules')
    baselines: dict  # the mean rules' baselines (learning updates them in place)
    signal_baselines: dict  # the evidence series' baselines (the same)
    th: Thresholds
    rules: lb.Rules
    seen: evidence.Assessment
    saved: list | None  # the evidence carried from the last windows, as stored
    mode: str  # normal, reseed or relearn (see _learning_mode)
    relearn_until: float | None
    anomalies: list
    memory: logfeed.Registered | None  # the log feed and its memory (None without a log feed)
    logs: LogWindow | None  # the window's judged log lines (None: no logs)
    groups: list  # the anomalies grouped by root cause (then the SLO alerts)
    slos: list  # (SLO id, its evaluation) for every SLO


def _run_cycle(settings: Settings, now: float | None, started_at: float | None) -> dict | None:
    """Judge the window (writing nothing), then write everything it decided in one transaction."""
    wall_start = time.time() if started_at is None else started_at
    now = wall_start if now is None else now
    slos.load_config_once(settings.slo_file, now)
    found = _detect(settings, now)
    db.session.rollback()
    begin_write()
    if started_at is not None and not held(started_at):
        db.session.rollback()  # it overran its lease and was taken over: the successor reads its spans
        log.warning("the detection cycle claimed at %.3f lost its lease mid-cycle; its results are dropped",
                    started_at)
        return None
    changes, queued, stormed = _update_incidents(found, now, settings)
    opened_kinds = [(lead_type(i), i.severity) for i in changes.opened]
    _learn(found, now, settings)
    committed_at = _advance_state(found, now)
    slos.save(found.slos, now)
    summary = _summary(found, wall_start, changes, queued, stormed)
    db.session.add(_history_row(found, wall_start, changes))
    db.session.commit()
    _remembered().keep(found.baselines, found.signal_baselines, found.cycles, committed_at)
    selfmetrics.cycle_finished(time.time() - wall_start, [a.type for a in found.anomalies], opened_kinds,
                               stormed)
    summary["duration_ms"] = round((time.time() - wall_start) * 1000, 2)
    return summary


def _detect(settings: Settings, now: float) -> _Findings:
    """Read the spans since the last cycle; judge them (anomalies, then root causes). Writes nothing."""
    th = Thresholds.from_settings(settings)
    state = db.session.get(DetectionState, STATE_ID)
    cursor, cycles = (state.cursor, state.cycles) if state else (0, 0)
    upto = min(store.max_span_id(), cursor + MAX_SPANS_PER_CYCLE)
    window = store.spans_after(cursor, upto)
    stats = window_stats(window, settings.ignore_services)
    baselines, signal_baselines = _remembered().lend(cycles)
    rules = lb.Rules()
    seen, saved = _assess(window, cursor, state, signal_baselines, rules, now, settings)
    data = _has_data(window, settings.ignore_services)
    mode, relearn_until = _learning_mode(state, data, now, settings)
    anomalies = _trace_anomalies(stats, baselines, th, seen, rules, mode, now - seen.horizon)
    anomalies = _time_patterns(anomalies, window, stats, baselines, th, mode, settings)
    memory = logfeed.registered(current_app)
    logstate.load(memory)  # the saved log memory, when it is newer than this process's
    logs = logfeed.judge(memory, now, window, anomalies, mode)  # None: no logs
    if mode == "normal":
        anomalies += logfeed.anomalies(logs, window, anomalies)
    series = metricfeed.follow(metricfeed.window_of(current_app), now)  # the points since the last cycle
    groups = analyse(anomalies, window, store.trace_spans, baselines, th, seen.suspects, logs,
                     metricfeed.loader(now, window=series), signal_baselines)
    judged = slos.evaluate_all(now)  # one aggregate query per SLO (and one a day for its history)
    groups += slos.alert_groups(judged, groups)  # after the baselines' groups: they join those
    return _Findings(window, cycles, data, upto, stats, baselines, signal_baselines, th, rules, seen, saved,
                     mode, relearn_until, anomalies, memory, logs, groups, judged)


def _assess(window: list, cursor: int, state, signal_baselines: dict, rules: lb.Rules, now: float,
            settings: Settings) -> tuple[evidence.Assessment, list | None]:
    """The window's evidence (self time, durations, calls), with the earlier-stored spans of its
    traces and of the evidence carried from the last windows; and that carried evidence as stored."""
    horizon = PENDING_WINDOWS * settings.detection_interval
    saved = state.pending if state else None
    earlier, names = _pending_in(saved, now, horizon)
    carried = sorted({s.trace_id for shift in earlier.values() for s in shift.spans()})
    traces = list(dict.fromkeys(st.needs_context(window, now - settings.detection_interval) + carried))
    context = store.earlier_spans(traces[:MAX_CONTEXT_TRACES], cursor) if traces else []
    seen = evidence.assess(window, signal_baselines, rules, now, settings.ignore_services, context,
                           earlier, names)
    seen.horizon = horizon  # a quiet path's failures are judged over the same windows
    return seen, saved


def _trace_anomalies(stats: dict, baselines: dict, th: Thresholds, seen: evidence.Assessment,
                     rules: lb.Rules, mode: str, since: float) -> list:
    """The anomalies the traces show (the mean rules', then the evidence's). None while relearning."""
    if mode != "normal":
        return []
    recent = store.recent_failures(dr.quiet_failing(stats, th), since)
    calls = store.recent_calls({k: stats[k].callers for k in dr.quiet_calls(stats, th)}, since)
    found = dr.detect(stats, baselines, th, recent, rules.max_p, calls)
    anomalies = shifts.with_strength(found, seen.whole, rules)
    anomalies += shifts.shifted(seen.own, rules, "self", anomalies)
    anomalies += shifts.network(seen.suspects, anomalies, rules)
    return anomalies + shifts.shifted(seen.whole, rules, "duration", anomalies)


def _time_patterns(anomalies: list, window: list, stats: dict, baselines: dict, th: Thresholds, mode: str,
                   settings: Settings) -> list:
    """The patterns told apart by time: a slow creep past the long-term baseline (in place of the
    robust shifts it explains), and endpoints or services gone silent."""
    if mode != "normal":
        return anomalies
    slow, expect = degradation.Config.from_settings(settings), traffic.Config.from_settings(settings)
    anomalies = degradation.detect(stats, baselines, th, slow, anomalies, window)
    calls = traffic.calls_to(window, settings.ignore_services)
    return traffic.explained(anomalies + traffic.detect(stats, baselines, calls, expect, anomalies))


def _update_incidents(found: _Findings, now: float, settings: Settings) -> tuple[Changes, int, int]:
    """Open, update, reopen and resolve incidents for the cycle's groups, and queue what they call
    for: (the changes, rows queued in the outbox, groups merged into the storm incident)."""
    policy = Policy.from_settings(settings)
    ignored = settings.ignore_services
    # Traffic = requests entering the system (root spans) not of ignored services.
    total_requests = sum(1 for sp in found.window if sp.parent_span_id is None and sp.service not in ignored)
    # A flood of new root causes (forged or broken telemetry) opens one storm incident, not thousands.
    open_roots = {(i.root_service, i.root_endpoint) for i in open_incidents()}
    groups, stormed = storm.cap(found.groups, open_roots, settings.max_new_incidents)
    changes = resolve_quiet(apply_groups(groups, now, policy, total_requests), now, policy)
    queued = outbox.dispatch(changes, now, settings)
    return changes, queued, stormed


def _learn(found: _Findings, now: float, settings: Settings) -> None:
    """Fold the window into the baselines that stayed normal: the mean rules', the evidence series'
    and the logs' (templates, their ids on the log rows, miners, log baselines)."""
    alpha, mode = settings.ewma_alpha, found.mode
    anomalous: dict = {}
    for a in found.anomalies:
        anomalous.setdefault(a.key, set()).add(a.type)
    learn_means(found.stats, found.baselines, anomalous, found.th, alpha, now, mode,
                degradation.Config.from_settings(settings), traffic.Config.from_settings(settings))
    learn_signals(found.seen.values, found.signal_baselines, found.seen.skip, found.rules, alpha, now, mode)
    logstate.save(found.memory, found.logs, now)


def _remembered() -> Remembered:
    return current_app.extensions.setdefault(BASELINES, Remembered())


def _advance_state(found: _Findings, now: float) -> int:
    """Move the detection state past the window: its cursor, the cycle count, the lease given back,
    when data was last seen, the relearning period, and the evidence carried to the next window.
    Returns the cycle count as this cycle leaves it, read back in this transaction: each count
    names one state of the baselines."""
    state = db.session.get(DetectionState, STATE_ID)
    state.cursor = found.upto
    state.cycles = DetectionState.cycles + 1
    state.lease_until = None
    if found.data:
        state.last_data_at = now
    state.relearn_until = found.relearn_until
    seen = found.seen
    state.pending = [] if found.mode != "normal" else _pending_out(seen.pending, seen.names, found.saved, now)
    db.session.flush()
    return state.cycles  # read back in this transaction, which holds the row


def _summary(found: _Findings, started_at: float, changes: Changes, queued: int, stormed: int) -> dict:
    """What the cycle did, as ``flask aiops analyze`` and ``POST /aiops/analyze`` answer it."""
    return {
        "started_at": started_at,
        "spans": len(found.window),
        "endpoints": len(found.stats),
        "anomalies": [
            {"service": a.service, "endpoint": a.endpoint, "type": a.type, "message": a.message}
            for a in found.anomalies
        ],
        "learning": found.mode,
        "incidents_opened": [i.id for i in changes.opened],
        "incidents_updated": [i.id for i in changes.updated + changes.reopened],
        "incidents_reopened": [i.id for i in changes.reopened],
        "incidents_resolved": [i.id for i in changes.resolved],
        "notifications_queued": queued,
        "groups_merged_into_storm": stormed,
        "slo_alerts": [a.message for g in found.groups for a in g.anomalies if a.type == slos.SLO_ANOMALY],
    }


def _history_row(found: _Findings, started_at: float, changes: Changes) -> DetectionCycle:
    """The cycle's line in the cycle history."""
    return DetectionCycle(
        started_at=started_at, finished_at=time.time(), owner=owner_name(),
        spans=len(found.window), anomalies=len(found.anomalies), incidents_opened=len(changes.opened),
        incidents_updated=len(changes.updated + changes.reopened), incidents_resolved=len(changes.resolved),
    )


def forget_last_data() -> None:
    """Make the next window with spans count as data resuming after a silence (its baselines are
    relearned): the replay does this between files, which are separate recordings with an
    unknown gap between them."""
    ensure_state()
    begin_write()
    db.session.execute(update(DetectionState).where(DetectionState.id == STATE_ID).values(last_data_at=0.0))
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
        release(claimed_at)
        raise


def prune_cycles(older_than: float) -> int:
    """Forget cycle history past retention (incidents and baselines are kept)."""
    begin_write()
    removed = db.session.execute(
        delete(DetectionCycle).where(DetectionCycle.started_at < older_than)
    ).rowcount
    db.session.commit()
    return removed or 0
