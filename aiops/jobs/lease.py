"""The detection cycle's lease: one cycle per interval across processes, and no overrun cycle's
results written over its successor's.

A cycle first *claims* the interval (:func:`claim`) with one atomic conditional UPDATE on the
``detection_state`` row (the same on SQLite and PostgreSQL, across processes and machines). The
claim is also a lease, so a cycle whose process died is taken over once the lease expires.

A cycle that outlives its lease (a frozen or very slow process) is taken over too, while it still
runs. Its claim time is its fencing token: before it writes, it checks that the row still holds its
claim (:func:`held`), and a cycle whose claim was replaced writes nothing, since its successor reads
the same spans (from the cursor it left). Nor does it give back the lease (:func:`release`): the
lease is its successor's.
"""

from __future__ import annotations

import time

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from aiops.owner import owner_name
from aiops.store.models import DetectionState
from telemetry.db import begin_write, db

STATE_ID = 1


def ensure_state() -> None:
    if db.session.get(DetectionState, STATE_ID) is None:
        try:
            begin_write()
            db.session.add(DetectionState(id=STATE_ID, cursor=0, cycles=0))
            db.session.commit()
        except IntegrityError:  # another process created it first
            db.session.rollback()
    else:
        db.session.rollback()


def claim(now: float | None, interval: float, lease: float, force: bool = False) -> float | None:
    """Atomically take this interval's cycle: the claim time, or None if another process has it.

    With ``now=None`` the clock is read once the state row is locked: a time
    read before waiting for the lock would be stale, and the next claim,
    measured against it, could then start a cycle less than an interval later.
    """
    ensure_state()
    begin_write()  # SQLite: BEGIN IMMEDIATE takes the write lock
    db.session.execute(  # PostgreSQL: lock the row (FOR UPDATE is a no-op on SQLite)
        select(DetectionState.id).where(DetectionState.id == STATE_ID).with_for_update()
    )
    if now is None:
        now = time.time()
    cond = [
        DetectionState.id == STATE_ID,
        (DetectionState.lease_until.is_(None)) | (DetectionState.lease_until < now),
    ]
    if not force:
        # 10% slack absorbs scheduler jitter between workers' timers.
        cond.append(
            DetectionState.last_cycle_at.is_(None)
            | (DetectionState.last_cycle_at <= now - 0.9 * interval)
        )
    result = db.session.execute(
        update(DetectionState)
        .where(*cond)
        .values(last_cycle_at=now, lease_until=now + lease, lease_owner=owner_name())
    )
    db.session.commit()
    return now if result.rowcount == 1 else None


def _ours(claimed_at: float):
    return [DetectionState.id == STATE_ID, DetectionState.lease_owner == owner_name(),
            DetectionState.last_cycle_at == claimed_at, DetectionState.lease_until.is_not(None)]


def held(claimed_at: float) -> bool:
    """In a write transaction: does the state row still hold this process's claim made at
    ``claimed_at``? Locks the row (PostgreSQL) so that no claim lands before the cycle commits."""
    row = db.session.execute(select(DetectionState.id).where(*_ours(claimed_at)).with_for_update())
    return row.first() is not None


def release(claimed_at: float) -> None:
    """Give the lease back after a failed cycle so the next tick can retry; only if it is still
    this claim's (a successor's lease is not ours to give)."""
    db.session.rollback()
    begin_write()
    db.session.execute(update(DetectionState).where(*_ours(claimed_at)).values(lease_until=None))
    db.session.commit()
