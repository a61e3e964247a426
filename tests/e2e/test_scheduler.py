"""Exactly one detection cycle per interval, however many schedulers compete for it.

Web workers never schedule; each ``flask aiops worker`` process runs its own
APScheduler, so with four worker processes (and with two instances on one
database) several timers fire every interval. The ``detection_cycles`` table, read straight from the
database, must show cycles that ran, never two in one interval, never
overlapping, and together reading every span exactly once.
"""

from __future__ import annotations

import threading

import pytest

from simulation import traffic
from tests.e2e import helpers as h
from tests.e2e.cycles import INTERVAL, assert_one_per_interval, read_cycles, scheduler_pids

pytestmark = pytest.mark.e2e

TRAFFIC_SECONDS = 5.0


def _drive(servers, seconds: float) -> tuple[list, list]:
    """Steady checkouts against every server at once, in the background."""
    results: list = []

    def one(server) -> None:
        results.append(traffic.run(server.url, rate=12, duration=seconds, threads=6, quiet=True))

    pool = [threading.Thread(target=one, args=(s,), daemon=True) for s in servers]
    for t in pool:
        t.start()
    return pool, results


def _scheduler_env(db_url: str, interval: float = INTERVAL) -> dict[str, str]:
    return h.shop_env(db_url, AIOPS_SCHEDULER=1, AIOPS_DETECTION_INTERVAL=interval)


def test_one_cycle_per_interval_with_four_worker_processes(tmp_path, db_url):
    with h.running(tmp_path, _scheduler_env(db_url), workers=2, worker_processes=4) as server:
        assert len(scheduler_pids(server)) == 4  # four schedulers, none of them in a web worker
        pool, results = _drive([server], TRAFFIC_SECONDS)
        for t in pool:
            t.join()
    assert all(set(r) == {"200"} for r in results), results

    cycles, cursor, spans_read = read_cycles(db_url)
    assert_one_per_interval(cycles, cursor, spans_read)
    assert {c.owner.rsplit(":", 1)[1] for c in cycles} <= scheduler_pids(server)


def test_one_cycle_per_interval_with_two_instances(tmp_path, db_url):
    env = _scheduler_env(db_url)
    with h.running(tmp_path, env, name="one", workers=2, worker_processes=2) as first, \
            h.running(tmp_path, env, name="two", workers=2, worker_processes=2) as second:
        # Four schedulers in two instances share one database.
        assert len(scheduler_pids(first) | scheduler_pids(second)) == 4
        pool, results = _drive([first, second], TRAFFIC_SECONDS)
        for t in pool:
            t.join()
    assert all(set(r) == {"200"} for r in results), results

    cycles, cursor, spans_read = read_cycles(db_url)
    assert_one_per_interval(cycles, cursor, spans_read)
    owners = {c.owner.rsplit(":", 1)[1] for c in cycles}
    assert owners <= scheduler_pids(first) | scheduler_pids(second)


def test_every_span_is_read_once_under_concurrent_writers(tmp_path, db_url):
    """Many short cycles while four workers write spans: none is skipped or read twice.

    On PostgreSQL ids are handed out at INSERT and become visible at COMMIT, so
    writers can commit out of id order; a cycle must not move its cursor past a
    span that is still being written.
    """
    interval = 0.1
    with h.running(tmp_path, _scheduler_env(db_url, interval), workers=4, worker_processes=2) as server:
        counts = traffic.run(server.url, rate=80, duration=5, threads=h.MAX_CLIENTS, quiet=True)
    assert set(counts) == {"200"}, counts

    cycles, cursor, spans_read = read_cycles(db_url)
    # A busy machine skips some 0.1 s ticks; what matters here is that no span is
    # skipped or read twice and no two cycles share an interval.
    assert_one_per_interval(cycles, cursor, spans_read, interval)
