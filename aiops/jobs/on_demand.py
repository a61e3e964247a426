"""Cycles on demand: ``POST /aiops/analyze`` asks the worker, and the worker answers.

The web process writes a ``cycle_requests`` row and rings the worker's
doorbell (:mod:`aiops.jobs.doorbell`); the worker runs one claimed cycle for every
request waiting, writes the summary into their rows and rings back. Both sides
block on the doorbell, so nobody polls. When no worker is alive (a test app,
or ``python app.py`` with ``AIOPS_SCHEDULER=0``), the caller runs the cycle
itself: the answer is the same, only the process differs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from aiops.jobs import doorbell
from aiops.store.models import CycleRequest, WorkerHeartbeat
from telemetry.db import begin_write, db, is_sqlite

HEARTBEAT = 5.0  # seconds between a worker's signs of life (and its look for missed requests)
ALIVE_FOR = 3 * HEARTBEAT  # a worker not seen for this long is taken for dead
STALE_REQUEST = 300.0  # requests older than this are nobody's any more: dropped, never answered


def beat(name: str, started_at: float, now: float | None = None) -> None:
    """Record that worker ``name`` is alive."""
    now = time.time() if now is None else now
    insert = sqlite_insert if is_sqlite(db.engine) else pg_insert
    begin_write()
    db.session.execute(
        insert(WorkerHeartbeat)
        .values(name=name, started_at=started_at, seen_at=now)
        .on_conflict_do_update(index_elements=[WorkerHeartbeat.name], set_={"seen_at": now})
    )
    db.session.commit()


def leave(name: str) -> None:
    """A worker stopping cleanly: callers stop waiting for it at once."""
    begin_write()
    db.session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.name == name))
    db.session.commit()


def worker_alive(now: float | None = None) -> bool:
    now = time.time() if now is None else now
    alive = select(WorkerHeartbeat.name).where(WorkerHeartbeat.seen_at >= now - ALIVE_FOR).limit(1)
    return db.session.scalar(alive) is not None


def ask(timeout: float) -> dict | None:
    """Ask the worker for a cycle and wait for its summary (None if none came in ``timeout`` s)."""
    engine = db.engine
    with doorbell.Listener(engine, doorbell.ANSWERED) as listener:  # listening before asking: no lost ring
        begin_write()
        request = CycleRequest(requested_at=time.time())
        db.session.add(request)
        db.session.commit()
        ident = request.id
        doorbell.ring(engine, doorbell.ANALYZE)
        deadline = time.monotonic() + timeout
        while True:
            db.session.rollback()  # a fresh read each time, not the session's cached row
            row = db.session.get(CycleRequest, ident)
            if row is not None and row.answered_at is not None:
                return row.summary
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            listener.wait(left)


def waiting(now: float | None = None) -> list[CycleRequest]:
    now = time.time() if now is None else now
    return list(
        db.session.scalars(
            select(CycleRequest)
            .where(CycleRequest.answered_at.is_(None), CycleRequest.requested_at >= now - STALE_REQUEST)
            .order_by(CycleRequest.id)
        )
    )


def answer(run_cycle: Callable[[], dict | None], name: str, settle: Callable[[float], None]) -> int:
    """Run one cycle for every request waiting and write the summary into them.

    ``settle(seconds)`` waits (on the worker's stop event) so spans the asking
    web workers still buffer reach the store first. Returns the requests
    answered; 0 when none waited or another process holds the cycle lease
    (they are answered at the next look).
    """
    pending = waiting()
    if not pending:
        return 0
    settle(max(r.requested_at for r in pending) - time.time())
    ids = [r.id for r in pending]
    db.session.rollback()
    summary = run_cycle()
    if summary is None:
        return 0
    begin_write()
    db.session.execute(
        update(CycleRequest)
        .where(CycleRequest.id.in_(ids))
        .values(answered_at=time.time(), answered_by=name, summary=summary)
    )
    db.session.execute(delete(CycleRequest).where(CycleRequest.requested_at < time.time() - STALE_REQUEST))
    db.session.commit()
    doorbell.ring(db.engine, doorbell.ANSWERED)
    return len(ids)
