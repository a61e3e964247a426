"""Reading the outbox for ``GET /aiops/notifications``: per-channel stats and the history.

Read-only: counts and rows as every process sees them, the breaker's state
among them. Nothing here claims, sends or writes.
"""

from __future__ import annotations

import time

from sqlalchemy import func, select

from aiops.outbox.channels import CHANNELS, configured
from aiops.outbox.policy import breaker_state
from aiops.settings import Settings
from aiops.store.models import ChannelState, Notification, iso
from telemetry.db import db


def stats(settings: Settings, now: float | None = None) -> dict:
    """Per channel: configured?, row counts by status, and the breaker as every process sees it."""
    now = time.time() if now is None else now
    counts: dict[str, dict[str, int]] = {}
    for channel, status, n in db.session.execute(
        select(Notification.channel, Notification.status, func.count()).group_by(
            Notification.channel, Notification.status)
    ):
        counts.setdefault(channel, {})[status] = n
    states = {c.name: c for c in db.session.scalars(select(ChannelState))}
    result = {}
    for name in [*CHANNELS, *sorted((counts.keys() | states.keys()) - set(CHANNELS))]:
        c = states.get(name)
        by_status = counts.get(name, {})
        open_until = c.open_until if c else None
        result[name] = {
            "configured": configured(settings, name),
            "pending": by_status.get("pending", 0),
            "delivered": by_status.get("delivered", 0),
            "failed": by_status.get("failed", 0),
            "superseded": by_status.get("superseded", 0),
            "breaker": breaker_state(open_until, now),
            "consecutive_failures": c.consecutive_failures if c else 0,
            "open_until": iso(open_until),
            "attempts": c.attempts if c else 0,
            "last_error": c.last_error if c else None,
            "last_attempt_at": iso(c.last_attempt_at) if c else None,
        }
    return result
