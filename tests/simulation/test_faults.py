"""The network and CPU faults of the demo, in a real process: where the delay lands, and the hog's threads.

A network fault must show as a slower call (the caller's CLIENT span) to a
callee whose own SERVER span is untouched. A CPU hog is busy threads in each
process, started and stopped to follow the stored fault, including when
another worker changed it, and never left running after a test.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests
import sqlalchemy as sa

from simulation import faults
from simulation.cpuhog import CpuHog, hog
from simulation.models import Fault
from telemetry.columns import KIND_CLIENT, KIND_SERVER
from tests.support.loopback import LoopbackServer, stored


def hog_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("cpu-hog")]


def wait_for(condition, what: str, timeout: float = 10.0) -> None:
    """For what no call can trigger: a duration running out, a watcher's next look."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def no_hog_left_behind(monkeypatch):
    """Each test starts without busy threads and must leave none (watchers included)."""
    monkeypatch.setattr(hog, "check_every", 0.1)  # the watcher looks often; tests wait less
    assert hog_threads() == []
    yield
    hog.stop()
    wait_for(lambda: hog_threads() == [], "every cpu-hog thread to end")


def _served(app_factory, timeout: float):
    """The app behind a real loopback server, so /checkout's calls to payment are real HTTP."""
    s = LoopbackServer(app_factory(TESTING=False, AIOPS_DEMO_TIMEOUT=timeout))
    yield s
    s.stop()


@pytest.fixture
def server(app_factory):
    yield from _served(app_factory, 2.0)


@pytest.fixture
def impatient_server(app_factory):
    """Checkout gives up on a call after 0.75 s: a test of the timeout waits that long, not 2 s."""
    yield from _served(app_factory, 0.75)


# -- network -------------------------------------------------------------------


def _trace(app) -> dict:
    """The spans of the one checkout trace stored, by (endpoint, kind)."""
    spans = stored(app, service="shop")
    assert len({s.trace_id for s in spans}) == 1
    return {(s.endpoint, s.kind): s for s in spans}


def test_network_delay_lands_in_the_callers_client_span_before_the_callee_starts(server):
    client = server.app.test_client()
    assert client.post("/simulate/network?endpoint=payment&delay_ms=300").status_code == 200
    assert requests.post(server.url + "/checkout", json={"amount": 3}, timeout=10).status_code == 200

    spans = _trace(server.app)
    call, callee = spans[("payment", KIND_CLIENT)], spans[("payment", KIND_SERVER)]
    assert callee.parent_span_id == call.span_id
    # The request left (and payment's span began) only after the delay; payment's own span holds none of it.
    assert callee.start_time - call.start_time >= 0.3
    assert call.duration_ms >= callee.duration_ms + 300


def test_network_delay_past_the_callers_timeout_is_a_504_the_callee_never_sees(impatient_server):
    server = impatient_server
    client = server.app.test_client()
    assert client.post("/simulate/network?endpoint=inventory&delay_ms=5000").status_code == 200
    r = requests.post(server.url + "/checkout", timeout=10)
    assert r.status_code == 504 and "inventory did not answer" in r.json()["message"]

    spans = _trace(server.app)
    call = spans[("inventory", KIND_CLIENT)]
    assert call.error and call.exception_type == "requests.exceptions.ConnectTimeout"
    assert ("inventory", KIND_SERVER) not in spans  # the request never arrived
    assert ("payment", KIND_CLIENT) not in spans  # checkout gave up before calling payment

    assert client.post("/simulate/clear?endpoint=inventory").get_json() == {"cleared": 1}
    assert requests.post(server.url + "/checkout", timeout=10).status_code == 200


# -- cpu -------------------------------------------------------------------------


def test_cpu_hog_runs_its_threads_until_cleared(client):
    r = client.post("/simulate/cpu?threads=2")
    assert r.status_code == 200
    assert hog.running() == 2
    assert {t.name for t in hog_threads()} == {"cpu-hog-0", "cpu-hog-1", "cpu-hog-watch"}
    assert client.get("/health").status_code == 200  # slower, still served

    # A new setting replaces the running one, never adds to it.
    assert client.post("/simulate/cpu?threads=1").status_code == 200
    assert hog.running() == 1

    assert client.post("/simulate/clear").get_json() == {"cleared": 1}
    assert hog.running() == 0  # this process stops at once; its watcher ends within a look
    wait_for(lambda: hog_threads() == [], "the watcher to end")


def test_cpu_hog_follows_what_another_worker_stored(app, client, db_url):
    """Another worker injects and clears through the database; this process follows each time."""
    other = sa.create_engine(db_url)
    try:
        with other.begin() as conn:
            conn.execute(sa.insert(Fault).values(endpoint="*", cpu_threads=1, updated_at=time.time()))
        assert hog.running() == 0
        time.sleep(hog.check_every)  # the request path looks at most once per check_every
        assert client.get("/inventory").status_code == 200  # the next shop request of this process starts it
        assert hog.running() == 1

        with other.begin() as conn:  # cleared by another worker: no request needed here
            conn.execute(sa.delete(Fault))
        wait_for(lambda: hog.running() == 0, "the watcher to stop the hog")
    finally:
        other.dispose()


def test_cpu_hog_ends_by_itself_when_its_duration_is_over(client):
    # 3 s, not 1: the hog's thread takes the GIL from this one, and on a loaded machine the
    # request that started it once returned after its second was over (a CI run, PostgreSQL).
    assert client.post("/simulate/cpu?duration=3").status_code == 200
    assert hog.running() == 1
    assert [f["endpoint"] for f in client.get("/simulate/faults").get_json()["faults"]] == ["*"]
    wait_for(lambda: hog_threads() == [], "the hog and its watcher to end")
    assert client.get("/simulate/faults").get_json()["faults"] == []


def test_remediation_of_a_shop_incident_stops_the_hog(client):
    assert client.post("/simulate/cpu").status_code == 200
    assert client.post("/simulate/network?endpoint=payment&delay_ms=100").status_code == 200
    incident = {"root_cause": {"service": "shop", "endpoint": "payment"}}
    r = client.post("/simulate/remediate", json={"kind": "latency", "incident": incident})
    assert r.status_code == 200 and r.get_json() == {"endpoints": ["payment", "*"], "cleared": 2}
    assert hog.running() == 0
    assert client.get("/simulate/faults").get_json()["faults"] == []


def test_an_unreadable_fault_stops_the_hog():
    """The database went away (a dropped test database, an outage): stop rather than burn unchecked."""
    mine = CpuHog(check_every=0.05)
    mine.apply(1, None, read=lambda: (1, None))
    assert mine.running() == 1

    def broken():
        raise RuntimeError("no database")

    mine.refresh(broken, force=True)
    assert mine.running() == 0


def test_parse_cpu_defaults_and_types():
    assert faults.parse_cpu({}) == (1, None)
    assert faults.parse_cpu({"threads": "3", "duration": "30"}) == (3, 30.0)
    assert faults.parse_cpu({"threads": 2, "duration": 1.5}) == (2, 1.5)
    assert faults.parse_network({"endpoint": "inventory", "delay_ms": "0"}) == ("inventory", 0.0)
