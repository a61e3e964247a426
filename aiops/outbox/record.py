"""Recording what one send attempt came to: the row, the channel's breaker, the incident's timeline.

One short write transaction per attempt, after the send. A success is final;
a retryable failure schedules the next attempt (:mod:`aiops.outbox.policy`)
until the attempts run out; a permanent one fails the row. A row whose lease
ran out meanwhile belongs to another process: only a success is written to it,
since the message did go out. Rows that end delivered or failed leave an entry
in the incident's timeline (remediation hooks also set its remediation state).
"""

from __future__ import annotations

from sqlalchemy import select

from aiops import instruments as selfmetrics
from aiops.incidents.lifecycle import add_event
from aiops.kinds import Channel
from aiops.outbox.policy import (
    Outcome,
    backoff,
    breaker_after,
    breaker_state,
    classify,
    next_attempt,
    retry_after,
)
from aiops.outbox.sender import DETAIL_CHARS, ERROR_CHARS, Answer
from aiops.outbox.store import Claim
from aiops.settings import Settings
from aiops.store.models import ChannelState, Incident, Notification
from telemetry.db import begin_write, db

UNFINISHED = ("pending", "superseded")  # rows an attempt may write to (a superseded row can end delivered)


def _lock_one(model, *where):
    """The row, locked until commit on PostgreSQL (SQLite: BEGIN IMMEDIATE already serialises)."""
    return db.session.execute(
        select(model).where(*where).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()


def record(claim: Claim, answer: Answer | None, problem: str | None, now: float, s: Settings) -> bool:
    """Write one attempt's outcome; True when the channel's breaker is now open.

    ``answer`` is None when nothing was sent (``problem`` says why). Locks are taken in
    the order incident, channel, notification, the order every writer of these uses.
    """
    begin_write()
    incident = _lock_one(Incident, Incident.id == claim.incident_id)
    channel = _lock_one(ChannelState, ChannelState.name == claim.channel)
    row = _lock_one(Notification, Notification.id == claim.id)
    outcome: Outcome = "permanent" if answer is None else classify(answer.status)
    ours = (row is not None and row.lease_owner == claim.owner and row.lease_until == claim.lease_until
            and row.status in UNFINISHED)
    final: str | None = None  # "delivered" or "failed" when the row ends here
    gave_up = False
    # Not ours any more (our lease ran out and another process took it): only a success
    # is worth writing, since the message did go out; a failure is the new owner's to judge.
    if row is not None and (ours or (outcome == "delivered" and row.status in UNFINISHED)):
        final, gave_up = _settle(row, answer, problem, outcome, now, s)
        if ours:
            row.lease_until = None
            row.lease_owner = None
    breaker_open = False
    if channel is not None:
        if answer is not None:
            breaker_open = _trip(channel, claim.probe, outcome, now, s)
        _tally(channel, answer, problem, outcome, final)
    if incident is not None and final is not None:
        _note(incident, claim, row, answer, problem, final, gave_up, now)
    db.session.commit()
    selfmetrics.notification_attempted(claim.channel, final or "retry")
    return breaker_open


# -- the row ------------------------------------------------------------------------------------------


def _settle(row: Notification, answer: Answer | None, problem: str | None, outcome: Outcome, now: float,
            s: Settings) -> tuple[str | None, bool]:
    """The row after one attempt: (``delivered``/``failed`` if it ends here, else None; whether
    it ran out of attempts)."""
    if answer is not None:
        row.attempts = (row.attempts or 0) + 1
        row.last_status = answer.status
    if outcome == "delivered":
        row.status = "delivered"
        row.delivered_at = now
        row.last_error = None
        return "delivered", False
    if answer is None:
        row.last_error = problem
        return _fail(row), False
    if outcome == "permanent":
        row.last_error = (answer.body or f"HTTP {answer.status} (empty body)")[:ERROR_CHARS]
        return _fail(row), False
    return _retry(row, answer, now, s)


def _retry(row: Notification, answer: Answer, now: float, s: Settings) -> tuple[str | None, bool]:
    """Schedule the next attempt (our backoff or the receiver's Retry-After), or give up."""
    wait = backoff(row.attempts, s.notify_backoff, s.notify_backoff_max)
    when = next_attempt(row.attempts, s.notify_max_attempts, now, wait, retry_after(answer.retry_after, now))
    if when is None:
        row.last_error = f"gave up after {row.attempts} attempts: {answer.summary}"[:ERROR_CHARS]
        return _fail(row), True
    error = (answer.body or f"HTTP {answer.status}") if answer.status is not None else answer.error
    row.next_attempt_at = when
    row.last_error = (error or "")[:ERROR_CHARS]
    return None, False


def _fail(row: Notification) -> str | None:
    """Fail a pending row; a superseded one stays superseded (a newer message replaced it)."""
    if row.status != "pending":
        return None
    row.status = "failed"
    return "failed"


# -- the channel ----------------------------------------------------------------------------------------


def _trip(channel: ChannelState, probe: bool, outcome: Outcome, now: float, s: Settings) -> bool:
    """Count an attempt that reached the network against the breaker; True when it is now open."""
    channel.attempts = (channel.attempts or 0) + 1
    channel.last_attempt_at = now
    failures, open_until = breaker_after(
        channel.consecutive_failures or 0, channel.open_until, outcome, probe=probe,
        threshold=s.breaker_threshold, cooldown=s.breaker_cooldown, now=now)
    channel.consecutive_failures, channel.open_until = failures, open_until
    return breaker_state(open_until, now) == "open"


def _tally(channel: ChannelState, answer: Answer | None, problem: str | None, outcome: Outcome,
           final: str | None) -> None:
    """The channel's totals and last error, as ``GET /aiops/notifications`` shows them."""
    if final == "delivered":
        channel.delivered = (channel.delivered or 0) + 1
    elif final == "failed":
        channel.failed = (channel.failed or 0) + 1
    if outcome != "delivered":
        channel.last_error = problem if answer is None else answer.summary


# -- the incident ---------------------------------------------------------------------------------------


def _note(incident: Incident, claim: Claim, row: Notification, answer: Answer | None,
          problem: str | None, final: str, gave_up: bool, now: float) -> None:
    """The incident's timeline (and remediation state) after a row ends delivered or failed."""
    if claim.channel == Channel.REMEDIATION:
        _note_remediation(incident, claim, row, answer, problem, final, gave_up, now)
        return
    attempts = row.attempts or 0
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    label = f"{claim.channel} {claim.event}"
    if final == "delivered":
        kind, detail = "notified", f"{label} delivered (HTTP {answer.status}){tries}"
    elif answer is None:
        kind, detail = "notify-failed", f"{label} not sent: {problem}"
    elif gave_up:
        kind, detail = "notify-failed", f"{label} gave up after {attempts} attempts: {answer.summary}"
    else:
        kind, detail = "notify-failed", f"{label} failed: {answer.summary}"
    add_event(incident, kind, now, detail, claim.channel)


def _note_remediation(incident: Incident, claim: Claim, row: Notification, answer: Answer | None,
                      problem: str | None, final: str, gave_up: bool, now: float) -> None:
    """A hook that ran or failed: the incident's remediation state, and its timeline."""
    kind = claim.payload.get("kind", "?")
    if final == "delivered":
        incident.remediation = "ran"
        incident.remediation_at = now
        add_event(incident, "remediation", now,
                  f"POST hook for {kind} answered {answer.status}: {answer.body[:DETAIL_CHARS]}",
                  "remediation")
        return
    incident.remediation = "failed"
    attempts = row.attempts or 0
    why = problem if answer is None else (
        f"gave up after {attempts} attempts: {answer.summary}" if gave_up else answer.summary)
    add_event(incident, "remediation", now, f"POST hook for {kind} failed: {why}", "remediation")
