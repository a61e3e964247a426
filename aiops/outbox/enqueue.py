"""Queueing notifications and remediation hooks in the outbox (channels: :mod:`aiops.outbox.channels`).

Everything here runs inside the transaction that changes the incident, so a
change and the messages it causes are committed together or not at all;
:mod:`aiops.outbox.deliver` sends them later, with retries, from any process.

Per incident and channel only the newest message matters (they all carry the
same ``dedup_key`` and the receiver only needs the latest state), so a new
message supersedes one still pending. Trigger-class messages (``trigger``,
``update``) are rate-limited per severity: one that comes too soon after the
last is held until the limit has passed, and is superseded if the incident
changes again meanwhile. Acknowledge and resolve are never held: they ease a
page and must not wait behind one.
"""

from __future__ import annotations

from sqlalchemy import update

from aiops.incidents.lifecycle import Changes, add_event, transition
from aiops.incidents.reports import with_report
from aiops.kinds import Channel
from aiops.outbox import channels, silencing
from aiops.outbox.render import dedup_key
from aiops.settings import Settings
from aiops.store.models import Incident, Notification, iso
from telemetry.db import db

TRIGGER_CLASS = silencing.TRIGGER_CLASS  # rate-limited, and held back by silences


def _enabled(settings: Settings) -> bool:
    return bool(settings.notifications)


def supersede(incident_id: str, channel: str) -> None:
    """Mark the pending message of ``incident_id`` (an incident, or a rule's alerts) on ``channel``
    superseded: the receiver only needs the newest."""
    db.session.execute(
        update(Notification)
        .where(Notification.incident_id == incident_id, Notification.channel == channel,
               Notification.status == "pending")
        .values(status="superseded")
    )


def hold_until(last: float | None, severity: str, now: float, settings: Settings) -> float:
    """When a trigger-class message may go: now, or once the severity's rate limit has passed
    since the last one (``last``)."""
    limit = settings.notify_rate_limits.get(severity, 0.0)
    return now if last is None or now - last >= limit else last + limit


def _due(incident: Incident, event: str, now: float, settings: Settings) -> float:
    """When a message may go: now, or held until the severity's rate limit has passed."""
    if event not in TRIGGER_CLASS:
        return now
    limit = settings.notify_rate_limits.get(incident.severity, 0.0)
    due = hold_until(incident.last_notified_at, incident.severity, now, settings)
    incident.last_notified_at = due
    if due > now:
        add_event(incident, "rate-limited", now,
                  f"{event} held until {iso(due)} ({incident.severity}: one per {limit:g} s)")
    return due


def enqueue(incident: Incident, event: str, now: float, settings: Settings,
            actor: str | None = None, comment: str | None = None) -> list[Notification]:
    """Queue ``event`` for the incident on every configured channel (caller commits)."""
    notifiers = channels.notifiers(settings) if _enabled(settings) else []
    if not notifiers:
        return []
    db.session.flush()  # the incident row must exist before rows that name it
    due = _due(incident, event, now, settings)
    data = with_report(incident.to_dict())
    rows = []
    for notifier in notifiers:
        supersede(incident.id, notifier.name)
        rows.append(Notification(
            channel=notifier.name, incident_id=incident.id, event=event, dedup_key=dedup_key(data),
            severity=incident.severity, status="pending", attempts=0, created_at=now,
            next_attempt_at=due, payload=notifier.stored(event, data, settings, actor, comment),
        ))
    db.session.add_all(rows)
    return rows


def enqueue_remediation(incident: Incident, now: float, settings: Settings) -> Notification | None:
    """Queue the incident kind's remediation hook, if one is configured (off by default)."""
    data = with_report(incident.to_dict())
    kind = data["report"]["kind"]
    if not _enabled(settings) or not settings.remediation_url(kind):
        return None
    db.session.flush()
    incident.remediation = "requested"
    add_event(incident, "remediation", now, f"{kind} remediation hook requested")
    row = Notification(
        channel=Channel.REMEDIATION, incident_id=incident.id, event="remediate", dedup_key=incident.id[:255],
        severity=incident.severity, status="pending", attempts=0, created_at=now, next_attempt_at=now,
        payload={"kind": kind, "incident": data},
    )
    db.session.add(row)
    return row


def dispatch(changes: Changes, now: float, settings: Settings) -> int:
    """Queue what a cycle's incident changes call for, but what silences hold back; returns how
    many rows were queued."""
    queued = 0
    live = silencing.active(now)
    for incident, event in changes.notify:
        if not silencing.held(incident, event, live, now):
            queued += len(enqueue(incident, event, now, settings))
    for incident in silencing.released(changes, {i.id for i, _ in changes.notify}, live, now):
        queued += len(enqueue(incident, "trigger", now, settings))
    for incident in changes.remediate:
        queued += enqueue_remediation(incident, now, settings) is not None
    return queued


def human_transition(incident: Incident, action: str, now: float, by: str, comment: str,
                     settings: Settings) -> Incident:
    """Acknowledge or resolve by hand and tell the channels, if they were told of it and no silence
    holds it back (caller commits)."""
    transition(incident, action, now, by, comment)
    if incident.confirmed_at is not None and not silencing.held(incident, action, silencing.active(now), now):
        enqueue(incident, action, now, settings, actor=by, comment=comment)
    return incident
