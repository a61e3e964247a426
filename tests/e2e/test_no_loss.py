"""No span is lost or stored twice under concurrent load, through a graceful stop.

A real gunicorn (4 gthread workers) serves checkouts (each makes two more
server requests and two CLIENT spans), direct inventory calls and health
checks from several client threads at once, on fresh connections and kept-alive
ones. The span writer's interval is set far beyond the test's length, so almost
every span is still in a worker's buffer when gunicorn gets SIGTERM: the rows
can only reach the database through the flush at worker exit. Afterwards every
request a client saw answered is stored exactly once.
"""

from __future__ import annotations

import collections
import threading

import pytest
import requests
import sqlalchemy as sa

from telemetry.columns import KIND_CLIENT, KIND_SERVER
from tests.e2e import helpers as h

pytestmark = pytest.mark.e2e

CHECKOUTS = 200
INVENTORY = 60
PAYMENT = 60


def _direct(url: str, method: str, path: str, count: int, threads: int) -> collections.Counter:
    """``count`` requests to ``path`` on fresh connections (they spread over the workers)."""
    return h.send(count, threads, lambda _session: requests.request(
        method, url + path, headers={"Connection": "close"}, json={"amount": 1}, timeout=30))


def _query(db_url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def test_every_served_request_is_stored_exactly_once(tmp_path, db_url):
    # The writer thread never wakes during the test: rows land only at worker exit.
    env = h.shop_env(db_url, AIOPS_FLUSH_INTERVAL=600)
    with h.running(tmp_path, env, name="load", workers=4) as server:
        tallies: dict[str, collections.Counter] = {}
        jobs = {
            "checkout": lambda: h.checkouts(server.url, CHECKOUTS, threads=6),
            "inventory": lambda: _direct(server.url, "GET", "/inventory", INVENTORY, threads=3),
            "payment": lambda: _direct(server.url, "POST", "/payment", PAYMENT, threads=3),
        }
        pool = [threading.Thread(target=lambda n=n, f=f: tallies.__setitem__(n, f()))
                for n, f in jobs.items()]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        before = _query(db_url, "SELECT count(*) FROM spans")[0][0]
        proc = server.proc
    # running() stopped gunicorn with SIGTERM (a graceful stop); it exited cleanly.
    assert proc.returncode == 0, proc.returncode
    log = server.log_path.read_text(errors="replace")
    assert "Exception during worker exit" not in log, log[-2000:]

    assert tallies["checkout"] == {200: CHECKOUTS}, tallies
    assert tallies["inventory"] == {200: INVENTORY}, tallies
    assert tallies["payment"] == {200: PAYMENT}, tallies
    expected = CHECKOUTS * 7 + (INVENTORY + PAYMENT) * 2  # with payment's and inventory's gateway calls
    assert before < expected / 2, f"{before} of {expected} rows written before the stop"

    duplicates = _query(db_url, "SELECT trace_id, span_id, count(*) FROM spans "
                                "GROUP BY trace_id, span_id HAVING count(*) > 1")
    assert duplicates == [], duplicates[:10]

    rows = _query(db_url, "SELECT endpoint, kind, parent_span_id IS NULL, count(*) FROM spans "
                          "WHERE service = 'shop' AND endpoint <> 'health' "
                          "GROUP BY endpoint, kind, parent_span_id IS NULL")
    counts = {(endpoint, kind, root): n for endpoint, kind, root, n in rows}
    assert counts == {
        ("checkout", KIND_SERVER, True): CHECKOUTS,
        # checkout's two calls: a CLIENT span each (named after the callee) and the callee's SERVER span
        ("payment", KIND_CLIENT, False): CHECKOUTS,
        ("inventory", KIND_CLIENT, False): CHECKOUTS,
        ("payment", KIND_SERVER, False): CHECKOUTS,
        ("inventory", KIND_SERVER, False): CHECKOUTS,
        ("inventory", KIND_SERVER, True): INVENTORY,
        ("payment", KIND_SERVER, True): PAYMENT,
        # payment and inventory call the demo's external gateway (a CLIENT span each, no SERVER span)
        ("charge", KIND_CLIENT, False): CHECKOUTS + PAYMENT,
        ("stock", KIND_CLIENT, False): CHECKOUTS + INVENTORY,
    }, counts  # (health: the start-up probes, a number the test does not control)
    # Each checkout trace is whole: its server span, two client spans, the two calls they made, and
    # their calls to the gateway.
    traces = _query(db_url, "SELECT t.trace_id, count(*) FROM spans t WHERE t.trace_id IN "
                            "(SELECT trace_id FROM spans WHERE endpoint = 'checkout' AND kind = 2) "
                            "GROUP BY t.trace_id")
    sizes = collections.Counter(n for _, n in traces)
    assert len(traces) == CHECKOUTS and set(sizes) == {7}, sizes
    assert _query(db_url, "SELECT count(*) FROM spans WHERE service <> 'shop'") == [(0,)]
