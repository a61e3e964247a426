"""What silences hold back (:mod:`aiops.silences`): asked before a notification is queued.

While an active silence covers an incident, trigger-class messages (``trigger``, ``update``) are
not queued; the incident's timeline says so (``silenced``: "silenced by <id>"). Acknowledge and
resolve still go out when the receivers were told of the incident before the silence (a trigger
queued or delivered): a page that went out is never left open. When the silence ends while the
incident is still open, confirmed and seen, the trigger it held back goes out then. Remediation
hooks are not notifications and are left to their own setting.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select

from aiops.incidents.lifecycle import Changes, add_event
from aiops.incidents.reports import with_report
from aiops.kinds import Channel
from aiops.silences import service as silences
from aiops.store.declared import Silence
from aiops.store.models import Incident, Notification
from telemetry.db import db

TRIGGER_CLASS = ("trigger", "update")  # messages that page (acknowledge and resolve ease a page)
EVENT, RELEASED = "silenced", "unsilenced"  # timeline events


def active(now: float) -> list[Silence]:
    return silences.active(now)


def covering(incident: Incident, live: Sequence[Silence]) -> Silence | None:
    if not live:
        return None
    return silences.covering(with_report(incident.to_dict()), live)


def told(incident_id: str) -> bool:
    """Whether a trigger-class message for the incident went out or is queued to (not superseded,
    not failed) on a notification channel."""
    found = db.session.scalar(
        select(Notification.id).where(
            Notification.incident_id == incident_id, Notification.event.in_(TRIGGER_CLASS),
            Notification.status.in_(("pending", "delivered")),
            Notification.channel.in_(tuple(Channel.notifications())),
        ).limit(1))
    return found is not None


def held(incident: Incident, event: str, live: Sequence[Silence], now: float) -> bool:
    """Whether a silence holds ``event`` back (then noted on the timeline; caller commits)."""
    silence = covering(incident, live)
    if silence is None:
        return False
    if event not in TRIGGER_CLASS and told(incident.id):
        return False  # the receivers know of it: they must hear that it eased
    add_event(incident, EVENT, now, f"silenced by {silence.id}: {event} not sent")
    return True


def released(changes: Changes, notifying: set[str], live: Sequence[Silence],
             now: float) -> Iterable[Incident]:
    """Open, confirmed incidents seen this cycle whose trigger a silence held back, now that no
    silence covers them (noted on the timeline)."""
    for incident in changes.touched:
        if incident.id in notifying or incident.status != "open" or incident.confirmed_at is None:
            continue
        marks = [e.get("event") for e in incident.timeline if e.get("event") in (EVENT, RELEASED)]
        if not marks or marks[-1] != EVENT:  # never held back, or released already
            continue
        if covering(incident, live) is None and not told(incident.id):
            add_event(incident, RELEASED, now, "no silence covers it any more: the held trigger is released")
            yield incident
