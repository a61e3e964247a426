"""Detection cycles as the database recorded them, for the tests of competing schedulers."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aiops.store.models import DetectionCycle, DetectionState
from telemetry.models import Span

INTERVAL = 1.0
SCHEDULER_STARTED = re.compile(r"detection scheduler started in pid (\d+)")


def scheduler_pids(server) -> set[str]:
    """The pids that logged starting a detection scheduler."""
    return set(SCHEDULER_STARTED.findall(server.log_path.read_text(errors="replace")))


def read_cycles(db_url: str) -> tuple[list[DetectionCycle], int, int]:
    """(cycles in start order, the state's cursor, spans at or below it), from the database itself."""
    engine = sa.create_engine(db_url)
    try:
        with Session(engine) as session:
            cycles = list(session.scalars(sa.select(DetectionCycle).order_by(DetectionCycle.started_at)))
            state = session.get(DetectionState, 1)
            cursor = state.cursor if state else 0
            read = session.scalar(sa.select(sa.func.count()).select_from(Span).where(Span.id <= cursor))
            session.expunge_all()
            return cycles, cursor, read or 0
    finally:
        engine.dispose()


def assert_one_per_interval(cycles: list[DetectionCycle], cursor: int, spans_read: int,
                            interval: float = INTERVAL) -> None:
    """Cycles ran, never two in one interval, never overlapping, and read every span exactly once.

    Nothing here is bounded by the clock: how many ticks a busy machine lets the schedulers take
    is punctuality, not correctness, and the gap below is a rule of the claim, read from the
    database.
    """
    starts = [c.started_at for c in cycles]
    assert len(cycles) >= 4, f"only {len(cycles)} cycles ran"
    # A cycle's start is its claim's time, and claim() succeeds only once 0.9 of an interval has
    # passed since the last claim (the slack absorbs the timers' jitter between schedulers).
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= 0.9 * interval - 1e-6, (
        f"two cycles in one interval: gaps {[round(g, 3) for g in gaps]}")
    for before, after in zip(cycles, cycles[1:], strict=False):
        assert after.started_at >= before.finished_at, (
            f"cycles overlap: {before.owner} ran {before.started_at}-{before.finished_at}, "
            f"{after.owner} started {after.started_at}"
        )
    # Each span was read by exactly one cycle: windows neither overlapped nor repeated.
    assert cursor > 0 and sum(c.spans for c in cycles) == spans_read, (
        [c.spans for c in cycles], cursor, spans_read
    )
