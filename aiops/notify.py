"""Queueing notifications and remediation hooks in the outbox.

Everything here runs inside the transaction that changes the incident, so a
change and the messages it causes are committed together or not at all;
:mod:`aiops.delivery` sends them later, with retries, from any process.

Per incident and channel only the newest message matters (they all carry the
same ``dedup_key`` and the receiver only needs the latest state), so a new
message supersedes one still pending. Trigger-class messages (``trigger``,
``update``) are rate-limited per severity: one that comes too soon after the
last is held until the limit has passed, and is superseded if the incident
changes again meanwhile. Acknowledge and resolve are never held: they ease a
page and must not wait behind one.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import update

from aiops import channels
from aiops.incidents import Changes, add_event, transition
from aiops.models import Incident, Notification, iso
from aiops.reports import with_report
from aiops.settings import remediation_key
from telemetry.db import db

TRIGGER_CLASS = ("trigger", "update")


def _enabled(config: Mapping) -> bool:
    return bool(config.get("AIOPS_NOTIFICATIONS", True))


def _supersede(incident_id: str, channel: str) -> None:
    db.session.execute(
        update(Notification)
        .where(Notification.incident_id == incident_id, Notification.channel == channel,
               Notification.status == "pending")
        .values(status="superseded")
    )


def _due(incident: Incident, event: str, now: float, config: Mapping) -> float:
    """When a message may go: now, or held until the severity's rate limit has passed."""
    if event not in TRIGGER_CLASS:
        return now
    limit = config["AIOPS_NOTIFY_RATE_LIMITS"].get(incident.severity, 0.0)
    last = incident.last_notified_at
    due = now if last is None or now - last >= limit else last + limit
    incident.last_notified_at = due
    if due > now:
        add_event(incident, "rate-limited", now,
                  f"{event} held until {iso(due)} ({incident.severity}: one per {limit:g} s)")
    return due


def enqueue(incident: Incident, event: str, now: float, config: Mapping,
            actor: str | None = None, comment: str | None = None) -> list[Notification]:
    """Queue ``event`` for the incident on every configured channel (caller commits)."""
    names = channels.configured(config) if _enabled(config) else []
    if not names:
        return []
    db.session.flush()  # the incident row must exist before rows that name it
    due = _due(incident, event, now, config)
    data = with_report(incident.to_dict())
    rows = []
    for name in names:
        _supersede(incident.id, name)
        payload = channels.render(name, event, data, config, actor, comment)
        payload.pop("routing_key", None)  # a secret: delivery adds the configured one when it sends
        rows.append(Notification(
            channel=name, incident_id=incident.id, event=event, dedup_key=channels.dedup_key(data),
            severity=incident.severity, status="pending", attempts=0, created_at=now,
            next_attempt_at=due, payload=payload,
        ))
    db.session.add_all(rows)
    return rows


def enqueue_remediation(incident: Incident, now: float, config: Mapping) -> Notification | None:
    """Queue the incident kind's remediation hook, if one is configured (off by default)."""
    data = with_report(incident.to_dict())
    kind = data["report"]["kind"]
    if not _enabled(config) or not config.get(remediation_key(kind)):
        return None
    db.session.flush()
    incident.remediation = "requested"
    add_event(incident, "remediation", now, f"{kind} remediation hook requested")
    row = Notification(
        channel="remediation", incident_id=incident.id, event="remediate", dedup_key=incident.id[:255],
        severity=incident.severity, status="pending", attempts=0, created_at=now, next_attempt_at=now,
        payload={"kind": kind, "incident": data},
    )
    db.session.add(row)
    return row


def dispatch(changes: Changes, now: float, config: Mapping) -> int:
    """Queue what a cycle's incident changes call for; returns how many rows were queued."""
    queued = 0
    for incident, event in changes.notify:
        queued += len(enqueue(incident, event, now, config))
    for incident in changes.remediate:
        queued += enqueue_remediation(incident, now, config) is not None
    return queued


def human_transition(incident: Incident, action: str, now: float, by: str, comment: str,
                     config: Mapping) -> Incident:
    """Acknowledge or resolve by hand and tell the channels, if they were told of it (caller commits)."""
    transition(incident, action, now, by, comment)
    if incident.confirmed_at is not None:
        enqueue(incident, action, now, config, actor=by, comment=comment)
    return incident
