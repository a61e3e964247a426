"""Evaluating the rules, in the worker only (web processes never do): each rule once per
``AIOPS_RULES_INTERVAL``, however many workers or instances run.

A pass claims each due rule with a conditional UPDATE (a lease, as a detection cycle claims its
interval: a worker that dies mid-evaluation leaves a lease that expires), reads its matches with no
write transaction open, then records the outcome and any alert in one short write transaction.

What one evaluation reads is bounded by the rule's window and by the candidate traces: the traces
with a span starting in ``[now - window_s, now]`` (the ``start_time`` index), narrowed in SQL by
what every match needs, at most :data:`telemetry.trace_queries.MAX_INSPECTED` of them, newest first
(:func:`telemetry.trace_queries.search`). ``total_traces`` (a ``rate``'s denominator) is one
``COUNT(DISTINCT trace_id)`` over the same index range.

Dedup: an alert is the set of traces a rule fired on (:func:`aiops.rules.aggregate.fingerprint`).
Finding a set the rule alerted on before, or a part of its last alert's set (its traces ageing out
of the window), is that alert seen again (``last_seen``, ``seen``); no message goes out. A set with
a trace the last alert did not have is a new alert, queued in the outbox
(:func:`aiops.outbox.alerts.enqueue_alert`).
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass

from sqlalchemy import func, select, update

from aiops.outbox.alerts import enqueue_alert
from aiops.owner import owner_name
from aiops.rules import aggregate as agg
from aiops.rules.aggregate import Matched
from aiops.rules.service import alert_json, load_config_once
from aiops.rules.spec import parse_query
from aiops.settings import Settings, settings_of
from aiops.store.declared import Rule, RuleAlert
from telemetry import trace_queries
from telemetry.db import begin_write, db
from telemetry.models import Span

log = logging.getLogger(__name__)

JOB_ID = "aiops-rules"
MAX_TRACE_IDS = 200  # trace ids an alert keeps (newest first)
ERROR_CHARS = 1000


@dataclass(frozen=True)
class Outcome:
    """One rule judged at one time (plain data; :func:`record` writes it)."""

    value: float | None
    fires: bool
    matched: list[Matched]
    total_traces: int | None  # counted for a rate, and for an alert


parsed = functools.lru_cache(maxsize=512)(parse_query)


def total_traces(start: float, end: float) -> int:
    """Traces with a span starting in ``[start, end]``."""
    return db.session.scalar(select(func.count(func.distinct(Span.trace_id)))
                             .where(Span.start_time >= start, Span.start_time <= end)) or 0


def evaluate(rule: Rule, now: float) -> Outcome:
    """Judge ``rule`` over ``[now - window_s, now]``. Reads only."""
    start = now - rule.window_s
    result = trace_queries.search(parsed(rule.query), start, now, trace_queries.MAX_INSPECTED)
    matched = [Matched(f.facts.trace_id, f.matched) for f in result.found]
    total = total_traces(start, now) if rule.aggregation == "rate" else None
    value = agg.aggregate(rule.aggregation, matched, total or 0)
    fires = agg.fires(value, rule.threshold)
    if fires and total is None:
        total = total_traces(start, now)
    return Outcome(value, fires, matched, total)


def claim(rule_id: int, now: float, interval: float, force: bool = False) -> bool:
    """Take this interval's evaluation of the rule (False: another process has it, or had it less
    than an interval ago). ``force``: whatever the interval, unless another process holds it."""
    begin_write()
    cond = [Rule.id == rule_id, Rule.lease_until.is_(None) | (Rule.lease_until < now)]
    if not force:  # 10 % slack absorbs scheduler jitter between workers' timers
        cond.append(Rule.evaluated_at.is_(None) | (Rule.evaluated_at <= now - 0.9 * interval))
    took = db.session.execute(
        update(Rule).where(*cond)
        .values(evaluated_at=now, lease_until=now + max(60.0, 4 * interval), lease_owner=owner_name())
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return took == 1


def _same_alert(rule: Rule, ids: list[str], fingerprint: str) -> RuleAlert | None:
    """The alert these traces are already: one of the rule's with the same set, or its last one
    when they are a part of its set."""
    same = db.session.scalar(select(RuleAlert).where(RuleAlert.rule_id == rule.id,
                                                     RuleAlert.fingerprint == fingerprint)
                             .order_by(RuleAlert.id.desc()).limit(1))
    if same is not None:
        return same
    last = db.session.scalar(select(RuleAlert).where(RuleAlert.rule_id == rule.id)
                             .order_by(RuleAlert.first_seen.desc(), RuleAlert.id.desc()).limit(1))
    complete = last is not None and last.affected_traces <= len(last.trace_ids)
    return last if complete and set(ids) <= set(last.trace_ids) else None


def _alert(rule: Rule, outcome: Outcome, fingerprint: str, now: float) -> RuleAlert:
    ids = [m.trace_id for m in outcome.matched]
    return RuleAlert(
        rule_id=rule.id, rule=rule.name, anomaly_type=rule.kind, fingerprint=fingerprint,
        **agg.example(rule.kind, outcome.matched), aggregation=rule.aggregation,
        value=round(outcome.value, 6), threshold=rule.threshold, affected_traces=len(ids),
        total_traces=outcome.total_traces or 0, trace_ids=ids[:MAX_TRACE_IDS], severity=rule.severity,
        notification="off", first_seen=now, last_seen=now, seen=1)


def record(rule_id: int, outcome: Outcome | None, error: str | None, now: float,
           settings: Settings) -> RuleAlert | None:
    """Write an evaluation (``error``: why it failed) and give the lease back; returns the alert it
    raised, new or seen again (None: none, or the rule was deleted or taken over meanwhile)."""
    begin_write()
    rule = db.session.execute(select(Rule).where(Rule.id == rule_id).with_for_update()
                              .execution_options(populate_existing=True)).scalar_one_or_none()
    if rule is None or rule.lease_owner != owner_name():
        db.session.rollback()
        return None
    rule.lease_until = rule.lease_owner = None
    found = None
    if outcome is None:
        rule.status, rule.last_error = "failed", (error or "")[:ERROR_CHARS]
    else:
        rule.status, rule.value, rule.last_error = ("firing" if outcome.fires else "ok"), outcome.value, None
    if outcome is not None and outcome.fires:
        ids = [m.trace_id for m in outcome.matched]
        fingerprint = agg.fingerprint(ids)
        found = _same_alert(rule, ids, fingerprint)
        if found is not None:
            found.last_seen, found.seen = now, (found.seen or 0) + 1
        else:
            found = _alert(rule, outcome, fingerprint, now)
            db.session.add(found)
            db.session.flush()
            found.notification = enqueue_alert(rule, alert_json(found), now, settings)
    db.session.commit()
    return found


def due(now: float, interval: float) -> list[int]:
    """The rules not evaluated for (about) an interval."""
    ids = list(db.session.scalars(select(Rule.id).where(
        Rule.evaluated_at.is_(None) | (Rule.evaluated_at <= now - 0.9 * interval)).order_by(Rule.id)))
    db.session.rollback()
    return ids


def run_due(settings: Settings, now: float | None = None, force: bool = False) -> dict:
    """Evaluate every due rule this process can claim (call inside an app context): a summary of
    how many it evaluated and the ids of the alerts they raised or saw again."""
    clock = (lambda: now) if now is not None else time.time
    interval = settings.rules_interval
    load_config_once(settings.rules_file, clock())
    evaluated, alerts = 0, []
    for rule_id in due(clock(), 0.0 if force else interval):
        t = clock()
        if not claim(rule_id, t, interval, force):
            continue
        evaluated += 1
        rule = db.session.get(Rule, rule_id)
        outcome = error = None
        try:
            outcome = evaluate(rule, t) if rule is not None else None
        except Exception as exc:  # one bad rule must not stop the others
            log.exception("rule %s: evaluation failed", rule_id)
            error = f"evaluation failed: {type(exc).__name__}: {exc}"
        db.session.rollback()  # end the read transaction before the write one
        alert = record(rule_id, outcome, error, clock(), settings)
        if alert is not None:
            alerts.append(alert.id)
    return {"evaluated": evaluated, "alerts": alerts}


def tick(app) -> dict | None:
    """The worker job's body: one :func:`run_due` pass; exceptions are logged (the next tick tries
    again, and a rule's lease lets another process take it once it expires)."""
    with app.app_context():
        try:
            return run_due(settings_of(app))
        except Exception:
            log.exception("trace-query rule evaluation failed")
            db.session.rollback()
            return None
        finally:
            db.session.remove()
