"""Claiming outbox rows: leases, so that one process at a time sends a row.

Every worker of every instance may run a delivery pass at once, so a row is
first *claimed* with a conditional UPDATE that sets a lease, in a short write
transaction of its own; the send then happens with no transaction open. A
process killed after claiming leaves a lease that expires, and another process
takes the row again (delivery is at least once; receivers dedupe on
``dedup_key``). The per-channel ``notification_channels`` rows hold the
circuit breaker every process shares; a half-open breaker's one probe is
claimed here too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import exists, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased

from aiops.outbox.policy import breaker_state
from aiops.owner import owner_name
from aiops.store.declared import Rule
from aiops.store.models import ChannelState, Notification
from telemetry.db import begin_write, db, is_sqlite


@dataclass(frozen=True)
class Claim:
    """A row this process holds until ``lease_until``, and what it needs to send and record it."""

    id: int
    channel: str
    event: str
    incident_id: str
    payload: dict
    lease_until: float
    owner: str
    probe: bool  # the half-open breaker's one test row


SKIP_CHANNEL = object()  # claim(): this channel's breaker is open, or another process has its probe


def channel_states() -> dict[str, tuple[int, float | None]]:
    """Each channel row's breaker: (consecutive_failures, open_until)."""
    rows = db.session.execute(
        select(ChannelState.name, ChannelState.consecutive_failures, ChannelState.open_until))
    return {name: (failures, open_until) for name, failures, open_until in rows}


def ensure_channels(names: Iterable[str]) -> None:
    """Create missing channel rows; INSERT .. ON CONFLICT DO NOTHING is race-safe on both databases."""
    names = sorted(set(names))
    if not names:
        return
    begin_write()
    insert = sqlite_insert if is_sqlite(db.engine) else pg_insert
    db.session.execute(
        insert(ChannelState)
        .values([{"name": n, "consecutive_failures": 0, "delivered": 0, "failed": 0, "attempts": 0}
                 for n in names])
        .on_conflict_do_nothing(index_elements=["name"])
    )
    db.session.commit()


def candidates(now: float, limit: int, skip: set[str]) -> list[tuple[int, str]]:
    """Due rows with a free lease, oldest first, leaving out channels whose breaker is open."""
    query = (
        select(Notification.id, Notification.channel)
        .where(
            Notification.status == "pending",
            Notification.next_attempt_at <= now,
            Notification.lease_until.is_(None) | (Notification.lease_until < now),
        )
        .order_by(Notification.created_at, Notification.id)
        .limit(limit)
    )
    if skip:
        query = query.where(Notification.channel.not_in(sorted(skip)))
    rows = [(row_id, channel) for row_id, channel in db.session.execute(query)]
    db.session.rollback()  # end the read transaction before any write one
    return rows


def claim(row_id: int, channel: str, now: float, lease: float, use_breaker: bool):
    """Take one row for ``lease`` seconds: a Claim, None (someone else has it) or SKIP_CHANNEL.

    One write transaction, two conditional UPDATEs. When the channel's breaker is half-open
    the first one takes the probe (it moves open_until to the lease's end, so every other
    process sees the breaker open until this probe is recorded); the second claims the row
    unless another process holds it, or holds an older row of the same incident and channel
    (so a "resolve" cannot overtake the "trigger" still in flight).
    """
    begin_write()
    probe = False
    if use_breaker:
        state = db.session.execute(
            select(ChannelState.open_until).where(ChannelState.name == channel)).first()
        mode = breaker_state(state[0] if state else None, now)
        if mode == "open":
            db.session.rollback()
            return SKIP_CHANNEL
        if mode == "half-open":
            took = db.session.execute(
                update(ChannelState)
                .where(ChannelState.name == channel, ChannelState.open_until <= now)
                .values(open_until=now + lease)
                .execution_options(synchronize_session=False)
            ).rowcount
            if took != 1:
                db.session.rollback()
                return SKIP_CHANNEL
            probe = True
    older = aliased(Notification)
    in_flight = exists().where(
        older.incident_id == Notification.incident_id,
        older.channel == Notification.channel,
        older.id < Notification.id,
        older.lease_until >= now,
    )
    owner = owner_name()
    claimed = db.session.execute(
        update(Notification)
        .where(
            Notification.id == row_id,
            Notification.status == "pending",
            Notification.next_attempt_at <= now,
            Notification.lease_until.is_(None) | (Notification.lease_until < now),
            ~in_flight,
        )
        .values(lease_until=now + lease, lease_owner=owner)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        return None
    row = db.session.execute(
        select(Notification.event, Notification.incident_id, Notification.payload)
        .where(Notification.id == row_id)).one()
    db.session.commit()
    return Claim(row_id, channel, row.event, row.incident_id, row.payload or {}, now + lease, owner, probe)


def rule_webhook(rule_id: int) -> str | None:
    """The ``webhook_url`` of a trace-query rule now (None: no such rule, or no URL). Ends its read
    transaction: the send that follows must hold none."""
    url = db.session.scalar(select(Rule.webhook_url).where(Rule.id == rule_id))
    db.session.rollback()
    return url
