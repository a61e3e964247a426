"""Failover between instances: when the process running a cycle dies, another takes over.

Two instances (gunicorn and a worker process each) share one database, both
serve traffic and both run schedulers (``test_scheduler.py`` proves they run one cycle per interval while
both live). Here a burst of bulk spans makes one cycle long enough to catch
mid-flight; the worker process holding that cycle's lease is frozen (SIGSTOP) while
it holds it, so the kill cannot race the cycle's end, and its instance is then
killed with SIGKILL (master and workers), leaving the lease behind. The survivor must not
start a cycle while that lease is valid, must take over once it expires
(``AIOPS_CYCLE_LEASE``), and must re-read the spans the dead cycle never
finished: over the whole run, still one cycle per interval and every span read
exactly once.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import pytest
import requests
import sqlalchemy as sa

from aiops.store.models import DetectionCycle, DetectionState
from telemetry.columns import KIND_SERVER
from telemetry.db import configure_engine
from telemetry.models import Span
from telemetry.store import insert_spans
from tests.e2e import helpers as h
from tests.e2e.cycles import assert_one_per_interval, read_cycles, scheduler_pids

pytestmark = pytest.mark.e2e

INTERVAL = 1.0
LEASE = 4.0
BULK_SPANS = 60_000  # makes the next cycle last about a second (or more): long enough to catch
WORKERS = 2
BOOTED = re.compile(r"Booting worker with pid: (\d+)")


class Traffic:
    """Checkouts against some servers from a few threads until stopped; tallies the answers."""

    def __init__(self, urls: list[str], threads_each: int = 3, pause: float = 0.05):
        self.stop_event = threading.Event()
        self.tally: dict[str, dict] = {url: {} for url in urls}
        self.threads = [threading.Thread(target=self._client, args=(url, pause), daemon=True)
                        for url in urls for _ in range(threads_each)]
        for t in self.threads:
            t.start()

    def _client(self, url: str, pause: float) -> None:
        with requests.Session() as session:
            while not self.stop_event.is_set():
                try:
                    code = str(session.post(url + "/checkout", json={"amount": 1}, timeout=15).status_code)
                except requests.RequestException as exc:
                    code = type(exc).__name__
                self.tally[url][code] = self.tally[url].get(code, 0) + 1
                time.sleep(pause)

    def stop(self) -> dict:
        self.stop_event.set()
        for t in self.threads:
            t.join()
        return self.tally


def _state(engine) -> tuple[str | None, float | None, float | None]:
    with engine.connect() as conn:
        row = conn.execute(sa.select(DetectionState.lease_owner, DetectionState.lease_until,
                                     DetectionState.last_cycle_at).where(DetectionState.id == 1)).first()
    return tuple(row) if row else (None, None, None)


def _bulk_spans(engine, count: int) -> None:
    """Many spans of one extra service, written through the store like any batch (one transaction)."""
    now = time.time()
    base = int(now * 1e6)
    insert_spans(engine, [
        (f"{base + i:032x}", f"{i + 1:016x}", None, "bulk", f"op{i % 30}", KIND_SERVER, "GET", 200,
         False, now - 5 + i * 1e-5, 3.0 + i % 7, None, None, None, None, None)
        for i in range(count)
    ])


def _bulk_unread(engine) -> bool:
    """The newest bulk spans are past the cursor: no finished cycle read them (a batch is one
    transaction, so a cycle reads all of it or none)."""
    with engine.connect() as conn:
        cursor = conn.scalar(sa.select(DetectionState.cursor).where(DetectionState.id == 1)) or 0
        last = conn.scalar(sa.select(sa.func.max(Span.id)).where(Span.service == "bulk"))
    return last is not None and cursor < last


def _held_lease(engine, since: float) -> tuple[str, float, float]:
    """(owner, lease_until, claimed_at) of the first lease seen held by a cycle claimed after ``since``."""
    deadline = time.monotonic() + 30  # a guard against hanging: a cycle is claimed every interval
    while time.monotonic() < deadline:
        state = _state(engine)
        if state[1] is not None and state[2] >= since:
            return state
        time.sleep(0.01)
    raise AssertionError("no cycle claimed after the bulk insert")


IN_FLIGHT = 1.0  # seconds for a statement sent before a SIGSTOP to be done on a loaded machine


def _freeze_a_cycle_reading_bulk(engine, attempts: int = 5) -> tuple[str, float, float]:
    """Write bulk spans and freeze (SIGSTOP) the worker process whose cycle holds the lease while
    they are unread: (owner, lease_until, claimed_at). A frozen process never finishes its cycle,
    so what is seen after the stop stays true. A cycle that ended before the stop is let go
    (SIGCONT), and the next burst tried."""
    for _ in range(attempts):
        inserted_at = time.time()
        _bulk_spans(engine, BULK_SPANS)
        # (A cycle claimed up to an interval earlier may be the one that waited for the insert.)
        held = _held_lease(engine, inserted_at - INTERVAL)
        pid = int(held[0].rsplit(":", 1)[1])
        os.kill(pid, signal.SIGSTOP)
        # A commit the process sent just before it stopped still lands: look once it would have
        # (else the lease seen held may already be given back, and another cycle run in it).
        time.sleep(IN_FLIGHT)
        if _state(engine) == held and _bulk_unread(engine):
            return held
        os.kill(pid, signal.SIGCONT)
    raise AssertionError(f"no cycle caught holding the lease over unread bulk spans in {attempts} bursts")


def _kill_instance(server) -> None:
    """SIGKILL an instance (gunicorn master, its workers, the worker process): no graceful exit,
    no lease given back."""
    workers = {int(p) for p in BOOTED.findall(server.log_path.read_text(errors="replace"))}
    workers |= {process.pid for process in server.worker_processes}
    os.kill(server.proc.pid, signal.SIGKILL)
    for pid in workers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    server.proc.wait(timeout=10)


def test_survivor_takes_over_when_the_lease_owner_dies(tmp_path, db_url):
    # (Quarantined on PostgreSQL from 2026-12-06 to 12-07: the first cycle after the failover started
    # inside the frozen owner's lease, or read ~1,600 spans instead of the bulk's 60,000. An earlier
    # cycle that had outlived its own lease finished after the frozen one claimed, gave back that
    # claim's lease and moved the cursor past the bulk. A cycle now writes only while the state row
    # holds its claim: aiops/jobs/lease.py, tests/jobs/test_lease.py.)
    env = h.shop_env(db_url, AIOPS_SCHEDULER=1, AIOPS_DETECTION_INTERVAL=INTERVAL, AIOPS_CYCLE_LEASE=LEASE)
    engine = sa.create_engine(db_url)
    configure_engine(engine)
    with h.running(tmp_path, env, name="one", workers=WORKERS) as first, \
            h.running(tmp_path, env, name="two", workers=WORKERS) as second:
        servers = {first.url: first, second.url: second}
        traffic = Traffic(list(servers))
        time.sleep(3 * INTERVAL)  # a few ordinary cycles with both instances competing

        # A long cycle: freeze it while it runs, and kill the instance running it.
        owner, lease_until, claimed_at = _freeze_a_cycle_reading_bulk(engine)
        owner_pid = owner.rsplit(":", 1)[1]
        victim = next(s for s in servers.values() if owner_pid in scheduler_pids(s))
        survivor = next(s for s in servers.values() if s is not victim)
        _kill_instance(victim)
        # The kill landed mid-cycle: the dead process still holds the lease, its cycle left no row.
        assert _state(engine)[:2] == (owner, lease_until)

        # The survivor keeps serving and, once the lease expires, keeps detecting.
        def survivor_cycles() -> list[DetectionCycle]:
            cycles, _, _ = read_cycles(db_url)
            return [c for c in cycles if c.started_at > claimed_at]

        h.wait_for(lambda: len(survivor_cycles()) >= 5, "five cycles after the failover",
                   timeout=LEASE + 30)
        tally = traffic.stop()
    engine.dispose()

    assert set(tally[survivor.url]) == {"200"}, tally
    after = survivor_cycles()
    # Nobody ran a cycle while the dead owner's lease was valid; then the survivor took over.
    assert after[0].started_at >= lease_until, (after[0].started_at, lease_until)
    assert {c.owner.rsplit(":", 1)[1] for c in after} <= scheduler_pids(survivor)
    # The dead cycle's spans were not lost: the takeover cycle read them.
    assert after[0].spans >= BULK_SPANS, after[0].spans
    assert owner not in {c.owner for c in read_cycles(db_url)[0] if c.started_at >= claimed_at}

    # Over the whole run: one cycle per interval, never overlapping, every span read once.
    cycles, cursor, spans_read = read_cycles(db_url)
    assert_one_per_interval(cycles, cursor, spans_read, INTERVAL)
