"""Queueing a trace-query rule's alert (:mod:`aiops.rules`), in the transaction that records it.

An alert goes to its rule's own ``webhook_url`` (channel ``rule``: the URL is read from the rule
when the row is sent, so an edited URL applies to queued rows), or, for a rule without one, to the
generic webhook (``AIOPS_WEBHOOK_URL``). Delivery, leases, retries and the breaker are the
incidents' (:mod:`aiops.outbox.deliver`). A rule's alerts share one outbox key (``rule-<id>``), so
as for an incident only the newest pending message goes out, and trigger messages are rate-limited
per the rule's severity (``AIOPS_NOTIFY_RATE_LIMITS``). An active silence whose matchers match the
alert's labels (``service``, ``endpoint``: the span's name, ``kind``: the anomaly type,
``severity``) holds it back: the alert is still recorded and listed.
"""

from __future__ import annotations

from aiops.kinds import Channel
from aiops.outbox import channels, silencing
from aiops.outbox.enqueue import hold_until, supersede
from aiops.outbox.render import DEDUP_KEY_MAX, WEBHOOK_VERSION
from aiops.settings import Settings
from aiops.silences import service as silences
from aiops.store.declared import Rule
from aiops.store.models import Notification
from telemetry.db import db

EVENT = "alert"


def outbox_key(rule_id: int) -> str:
    """What the outbox groups a rule's alerts by (its ``incident_id`` column)."""
    return f"rule-{rule_id}"


def body(alert: dict, settings: Settings) -> dict:
    """The JSON a receiver gets: the alert's fields, with the webhook version, event and dedup key."""
    base = settings.text("public_url")
    link = f"{base.rstrip('/')}/rules" if base else None
    return {"version": WEBHOOK_VERSION, "event": EVENT,
            "dedup_key": f"{outbox_key(alert['rule_id'])}-alert-{alert['id']}"[:DEDUP_KEY_MAX],
            **alert, "link": link}


def labels(alert: dict) -> dict[str, str]:
    """The labels a silence's matchers see on an alert."""
    return {"service": alert.get("service") or "", "endpoint": alert.get("span_name") or "",
            "kind": alert["anomaly_type"], "severity": alert["severity"]}


def enqueue_alert(rule: Rule, alert: dict, now: float, settings: Settings) -> str:
    """Queue ``alert`` (its JSON, id included) of ``rule``; the caller commits. Returns what became
    of it: ``queued``, ``silenced`` (an active silence matches it) or ``off`` (notifications off, or
    nowhere to send)."""
    if not settings.notifications:
        return "off"
    if silences.covering_labels(labels(alert), silencing.active(now)) is not None:
        return "silenced"
    if rule.webhook_url:
        channel = Channel.RULE
    elif channels.configured(settings, Channel.WEBHOOK):
        channel = Channel.WEBHOOK
    else:
        return "off"
    due = hold_until(rule.last_notified_at, rule.severity, now, settings)
    rule.last_notified_at = due
    key = outbox_key(rule.id)
    supersede(key, channel)
    payload = body(alert, settings)
    db.session.add(Notification(
        channel=channel, incident_id=key, event=EVENT, dedup_key=payload["dedup_key"],
        severity=rule.severity, status="pending", attempts=0, created_at=now, next_attempt_at=due,
        payload=payload))
    return "queued"
