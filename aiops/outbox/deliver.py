"""One delivery pass over the outbox, and the worker job that runs it.

A pass claims each due row (:mod:`aiops.outbox.store`), resolves where it goes
from the settings now (:mod:`aiops.outbox.channels`), sends it with no
transaction open (:mod:`aiops.outbox.sender`) and records the outcome
(:mod:`aiops.outbox.record`). Any number of processes may run passes at once:
the leases keep each row to one of them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiops.outbox import sender, store
from aiops.outbox.channels import CHANNELS, configured, target
from aiops.outbox.policy import breaker_state
from aiops.outbox.record import record
from aiops.settings import Settings, settings_of
from telemetry.db import db

log = logging.getLogger(__name__)

JOB_ID = "aiops-notify"


def _clock(now: float | None) -> Callable[[], float]:
    return (lambda: now) if now is not None else time.time


def deliver_due(settings: Settings, now: float | None = None, limit: int = 50) -> int:
    """Send the rows that are due (call inside an app context); returns how many it took.

    A row "taken" was claimed by this call and then sent (or failed at once because its
    channel is no longer configured). ``now`` fixes the clock (tests, replay); by default
    each step reads the wall clock. Rows of a channel whose breaker is open are left
    pending and not counted; a half-open channel gets one row per call.
    """
    clock = _clock(now)
    s = settings
    t = clock()
    states = store.channel_states()
    unconfigured = {ch for ch in CHANNELS if not configured(settings, ch)}
    skip = {name for name, (_, open_until) in states.items()
            if name not in unconfigured and breaker_state(open_until, t) == "open"}
    rows = store.candidates(t, limit, skip)
    store.ensure_channels({channel for _, channel in rows} - states.keys())
    taken = 0
    done: set[str] = set()  # channels this call is finished with (breaker open, probe spent)
    for row_id, channel in rows:
        if channel in done:
            continue
        # The row's target decides whether its breaker matters: an unconfigured row fails now.
        use_breaker = channel in CHANNELS and channel not in unconfigured
        claim = store.claim(row_id, channel, clock(), s.notify_lease_seconds, use_breaker)
        if claim is store.SKIP_CHANNEL:
            done.add(channel)
            continue
        if claim is None:
            continue
        taken += 1
        to = target(settings, channel, claim.payload)
        if to.problem is not None:
            record(claim, None, to.problem, clock(), s)
            continue
        answer = sender.send(to, s.notify_timeout, {"X-AIOps-Notification-Id": str(claim.id)})
        if record(claim, answer, None, clock(), s) or claim.probe:
            done.add(channel)
    return taken


def tick(app) -> int:
    """The job body: one deliver_due pass; exceptions are logged (the next tick tries again)."""
    with app.app_context():
        try:
            return deliver_due(settings_of(app))
        except Exception:
            log.exception("notification delivery failed")
            db.session.rollback()
            return 0
        finally:
            db.session.remove()
