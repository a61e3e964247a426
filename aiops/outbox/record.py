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
            and row.status in ("pending", "superseded"))
    final: str | None = None  # "delivered" or "failed" when the row ends here
    gave_up = False
    if row is not None and (ours or (outcome == "delivered" and row.status in ("pending", "superseded"))):
        # Not ours any more (our lease ran out and another process took it): only a success
        # is worth writing, since the message did go out; a failure is the new owner's to judge.
        if answer is not None:
            row.attempts = (row.attempts or 0) + 1
            row.last_status = answer.status
        if outcome == "delivered":
            final = row.status = "delivered"
            row.delivered_at = now
            row.last_error = None
        elif answer is None:
            row.last_error = problem
            if row.status == "pending":
                final = row.status = "failed"
        elif outcome == "permanent":
            row.last_error = (answer.body or f"HTTP {answer.status} (empty body)")[:ERROR_CHARS]
            if row.status == "pending":
                final = row.status = "failed"
        else:
            error = (answer.body or f"HTTP {answer.status}") if answer.status is not None else answer.error
            wait = backoff(row.attempts, s.notify_backoff, s.notify_backoff_max)
            asked = retry_after(answer.retry_after, now)
            when = next_attempt(row.attempts, s.notify_max_attempts, now, wait, asked)
            if when is None:
                gave_up = True
                row.last_error = f"gave up after {row.attempts} attempts: {answer.summary}"[:ERROR_CHARS]
                if row.status == "pending":
                    final = row.status = "failed"
            else:
                row.next_attempt_at = when
                row.last_error = (error or "")[:ERROR_CHARS]
        if ours:
            row.lease_until = None
            row.lease_owner = None
    breaker_open = False
    if channel is not None:
        if answer is not None:
            channel.attempts = (channel.attempts or 0) + 1
            channel.last_attempt_at = now
            failures, open_until = breaker_after(
                channel.consecutive_failures or 0, channel.open_until, outcome, probe=claim.probe,
                threshold=s.breaker_threshold, cooldown=s.breaker_cooldown, now=now)
            channel.consecutive_failures, channel.open_until = failures, open_until
            breaker_open = breaker_state(open_until, now) == "open"
        if final == "delivered":
            channel.delivered = (channel.delivered or 0) + 1
        elif final == "failed":
            channel.failed = (channel.failed or 0) + 1
        if outcome != "delivered":
            channel.last_error = problem if answer is None else answer.summary
    if incident is not None and final is not None:
        _note(incident, claim, row, answer, problem, final, gave_up, now)
    db.session.commit()
    selfmetrics.notification_attempted(claim.channel, final or "retry")
    return breaker_open


def _note(incident: Incident, claim: Claim, row: Notification, answer: Answer | None,
          problem: str | None, final: str, gave_up: bool, now: float) -> None:
    """The incident's timeline (and remediation state) after a row ends delivered or failed."""
    attempts = row.attempts or 0
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if claim.channel == "remediation":
        kind = claim.payload.get("kind", "?")
        if final == "delivered":
            incident.remediation = "ran"
            incident.remediation_at = now
            add_event(incident, "remediation", now,
                      f"POST hook for {kind} answered {answer.status}: {answer.body[:DETAIL_CHARS]}",
                      "remediation")
        else:
            incident.remediation = "failed"
            why = problem if answer is None else (
                f"gave up after {attempts} attempts: {answer.summary}" if gave_up else answer.summary)
            add_event(incident, "remediation", now, f"POST hook for {kind} failed: {why}", "remediation")
        return
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
