"""Injected faults end to end: one incident per fault, blamed on the endpoint that caused it.

Each test starts gunicorn (2 gthread workers; the CPU hog 4) on a fresh database, learns
baselines from normal checkout traffic, injects one fault through
``/simulate/*``, drives concurrent checkouts through it and triggers detection
with ``POST /aiops/analyze``. The incident must name the faulty endpoint as
its root cause even though checkout (its caller) is just as visibly broken.
"""

from __future__ import annotations

import re
import statistics
import time

import pytest
import sqlalchemy as sa

from telemetry.columns import KIND_CLIENT, KIND_SERVER
from telemetry.models import Span
from tests.e2e import helpers as h

pytestmark = pytest.mark.e2e

RECORDERS = ["lean", "otel"]


def _assert_single(server, root: str, affected: set[str]) -> dict:
    incident = h.only_incident(server)
    h.assert_root(incident, root)
    assert set(incident["affected_endpoints"]) == affected, incident["affected_endpoints"]
    assert len(incident["affected_endpoints"]) == len(affected), "duplicates in affected_endpoints"
    return incident


@pytest.mark.parametrize("recorder", RECORDERS)
def test_payment_delay_blames_payment(tmp_path, recorder):
    env = h.shop_env(h.sqlite_url(tmp_path), AIOPS_RECORDER=recorder)
    with h.running(tmp_path, env) as server:
        before = h.warm_up(server)
        h.inject(server, "delay", endpoint="payment", duration=3000)

        tally = h.checkouts(server.url, 8, threads=8)
        assert tally == {200: 8}, tally  # slow, not failing: 3 s is within checkout's timeout
        summary = h.analyze(server)
        flagged = {(a["endpoint"], a["type"]) for a in summary["anomalies"]}
        assert {("payment", "latency"), ("checkout", "latency")} <= flagged, summary
        assert len(summary["incidents_opened"]) == 1, (summary, h.describe(server))
        h.analyze(server)  # a quiet follow-up cycle changes nothing

        incident = _assert_single(server, "payment", {"payment", "checkout"})
        assert incident["id"] == summary["incidents_opened"][0]
        payment = [a for a in incident["anomalies"] if a["endpoint"] == "payment"]
        assert payment and payment[0]["type"] == "latency"
        assert payment[0]["observed"] >= 3000
        assert payment[0]["baseline"] == pytest.approx(before["payment"]["baseline_latency_ms"], rel=0.05)


@pytest.mark.parametrize("recorder", RECORDERS)
def test_inventory_errors_blame_inventory(tmp_path, recorder):
    env = h.shop_env(h.sqlite_url(tmp_path), AIOPS_RECORDER=recorder)
    with h.running(tmp_path, env) as server:
        h.warm_up(server)
        h.inject(server, "error", endpoint="inventory", rate=0.8)

        tally = h.checkouts(server.url, 40, threads=8)
        assert tally[502] >= 20 and set(tally) <= {200, 502}, tally  # inventory 500 -> checkout 502
        summary = h.analyze(server)
        assert len(summary["incidents_opened"]) == 1, (summary, h.describe(server))
        h.analyze(server)

        incident = _assert_single(server, "inventory", {"inventory", "checkout"})
        types = {(a["endpoint"], a["type"]) for a in incident["anomalies"]}
        assert {("inventory", "error"), ("checkout", "error")} <= types, types
        assert "InjectedFault" in incident["root_cause"]["issue"], incident["root_cause"]


@pytest.mark.parametrize("recorder", RECORDERS)
def test_payment_errors_blame_payment(tmp_path, db_url, recorder):
    env = h.shop_env(db_url, AIOPS_RECORDER=recorder)
    with h.running(tmp_path, env) as server:
        h.warm_up(server)
        h.inject(server, "error", endpoint="payment", rate=1.0)

        tally = h.checkouts(server.url, 30, threads=8)
        assert tally == {502: 30}, tally
        summary = h.analyze(server)
        assert len(summary["incidents_opened"]) == 1, (summary, h.describe(server))
        h.analyze(server)

        incident = _assert_single(server, "payment", {"payment", "checkout"})
        assert incident["severity"] in ("high", "critical"), incident["severity"]
        assert set(incident["trace_correlation"]["correlated_failures"]) >= {
            "payment_error", "checkout_error"
        }, incident["trace_correlation"]
        one = server.get(f"/aiops/incidents/{incident['id']}")
        assert one.status_code == 200 and one.json()["root_cause"] == incident["root_cause"]


@pytest.mark.parametrize("recorder", RECORDERS)
def test_inventory_timeout_blames_inventory(tmp_path, recorder):
    # Checkout gives up on inventory after AIOPS_DEMO_TIMEOUT (2.5 s: a cold worker on a busy
    # 2-core machine can take over 1 s for its first calls); inventory hangs one second longer.
    env = h.shop_env(h.sqlite_url(tmp_path), AIOPS_RECORDER=recorder, AIOPS_DEMO_TIMEOUT=2.5)
    with h.running(tmp_path, env) as server:
        h.warm_up(server)
        h.inject(server, "timeout", endpoint="inventory")

        tally = h.checkouts(server.url, 16, threads=8)
        assert tally == {504: 16}, tally
        first = h.analyze(server)
        assert len(first["incidents_opened"]) == 1, (first, h.describe(server))

        # The hung inventory requests finish (and are recorded) after their
        # callers gave up; the cycle that reads them must not open a second incident.
        h.wait_for(lambda: h.metrics(server)["inventory"]["request_count"] >= 60 + 16,
                   what="the hung inventory requests to be recorded")
        second = h.analyze(server)
        assert second["incidents_opened"] == [], (second, h.describe(server))

        incident = _assert_single(server, "inventory", {"inventory", "checkout"})
        types = {(a["endpoint"], a["type"]) for a in incident["anomalies"]}
        assert ("inventory", "timeout") in types, types
        assert ("checkout", "timeout") in types, types
        assert "payment" not in incident["affected_endpoints"]


def test_two_faults_are_two_incidents_each_with_its_own_root(tmp_path):
    """Payment slow (1.5 s) and inventory slow (150 ms) at once: two root causes, two
    incidents. Checkout is slow because of both, but its time went to payment, so it
    belongs to payment's incident."""
    env = h.shop_env(h.sqlite_url(tmp_path))
    with h.running(tmp_path, env) as server:
        h.warm_up(server)
        h.inject(server, "delay", endpoint="payment", duration=1500)
        h.inject(server, "delay", endpoint="inventory", duration=150)

        assert h.checkouts(server.url, 8, threads=8) == {200: 8}
        summary = h.analyze(server)
        assert len(summary["incidents_opened"]) == 2, (summary, h.describe(server))

        data = h.incidents(server)
        by_root = {i["root_cause"]["endpoint"]: i for i in data["active_incidents"]}
        assert sorted(by_root) == ["inventory", "payment"], h.describe(server)
        assert data["resolved_incidents"] == []
        h.assert_root(by_root["payment"], "payment")
        h.assert_root(by_root["inventory"], "inventory")
        assert set(by_root["payment"]["affected_endpoints"]) == {"payment", "checkout"}, h.describe(server)
        assert by_root["inventory"]["affected_endpoints"] == ["inventory"], h.describe(server)


def _durations(db_url: str, kind: int, endpoint: str, since: float, until: float) -> list[float]:
    """Durations (ms) of the shop's stored spans of one kind and endpoint that started in [since, until)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(sa.select(Span.duration_ms).where(
                Span.service == "shop", Span.kind == kind, Span.endpoint == endpoint,
                Span.start_time >= since, Span.start_time < until)))
    finally:
        engine.dispose()


def _incident_in_brief(server) -> list:
    data = h.incidents(server)
    return [{"root_cause": i["root_cause"], "candidates": i["root_cause_candidates"],
             "affected": i["affected_endpoints"], "title": i["title"]}
            for i in data["active_incidents"] + data["resolved_incidents"]]


def _network_fault_on_payment(server, delay: int) -> tuple[float, float]:
    """Warm up, inject ``delay`` ms on the network to payment, drive checkouts through it
    and run a cycle; returns (before, after) the injection, as epoch seconds."""
    h.warm_up(server)
    injected = time.time()
    h.inject(server, "network", endpoint="payment", delay_ms=delay)
    # Two at a time, so the slow calls start at several distinct seconds as real traffic's do
    # (one burst of simultaneous calls is one piece of evidence, like one pause).
    tally = h.checkouts(server.url, 8, threads=2)
    assert tally == {200: 8}, tally  # slow, not failing: the delay is within checkout's timeout
    h.analyze(server)  # also flushes every worker's spans
    return injected, time.time()


@pytest.mark.parametrize("recorder", RECORDERS)
def test_network_delay_to_payment_grows_the_calls_not_payment(tmp_path, recorder):
    """Checkout's CLIENT spans to payment grow by the delay; payment's own SERVER spans do not."""
    delay = 1000
    db_url = h.sqlite_url(tmp_path)
    with h.running(tmp_path, h.shop_env(db_url, AIOPS_RECORDER=recorder)) as server:
        started = time.time()
        injected, now = _network_fault_on_payment(server, delay)
    calls = [statistics.median(_durations(db_url, KIND_CLIENT, "payment", a, b))
             for a, b in ((started, injected), (injected, now))]
    served = [statistics.median(_durations(db_url, KIND_SERVER, "payment", a, b))
              for a, b in ((started, injected), (injected, now))]
    assert 0.9 * delay <= calls[1] - calls[0] < 1.5 * delay, (calls, served)  # the call: by the delay
    assert served[1] < served[0] + 0.25 * delay, (calls, served)  # payment itself: not by the delay


def test_network_delay_to_payment_blames_payment(tmp_path):
    """The slow edge into payment is payment's incident, though only checkout's timings moved:
    the gap between checkout's call and payment's span is the network into payment, and the
    propagation path starts there."""
    with h.running(tmp_path, h.shop_env(h.sqlite_url(tmp_path))) as server:
        _network_fault_on_payment(server, delay=1000)
        incidents = _incident_in_brief(server)
        assert len(incidents) == 1, incidents
        assert incidents[0]["root_cause"]["endpoint"] == "payment", incidents
        incident = h.only_incident(server)
        h.assert_root(incident, "payment")
        first = incident["propagation_path"][0]
        assert (first["endpoint"], first["signal"]) == ("payment", "network"), incident["propagation_path"]
        assert first["observed_ms"] > 500 and first["baseline_ms"] < 100, first


HOG_LINE = re.compile(r"cpu hog: \d+ busy thread\(s\) (started|stopped) in pid (\d+)")


def _hogs(server) -> dict[str, str]:
    """Per worker pid, what its CPU hog did last ("started" or "stopped"), from the server log."""
    last: dict[str, str] = {}
    for what, pid in HOG_LINE.findall(server.log_path.read_text(errors="replace")):
        last[pid] = what
    return last


def test_cpu_hog_slows_the_shop_and_ends_on_clear(tmp_path):
    """Busy threads in every worker: a latency incident on the shop; after clear no hog runs."""
    with h.running(tmp_path, h.shop_env(h.sqlite_url(tmp_path)), workers=4) as server:
        h.warm_up(server)
        # Four busy threads per worker: with two, detection missed the slowdown in 2 of 4 runs here.
        h.inject(server, "cpu", threads=4, duration=300)
        # Each worker starts its own hog on its next shop request (/health is the product's).
        h.reach_every_worker(server, lambda: {p for p, what in _hogs(server).items() if what == "started"}, 4,
                             path="/inventory")

        tally = h.checkouts(server.url, 16, threads=8)
        assert tally == {200: 16}, tally  # slower, not failing
        summary = h.analyze(server)
        incidents = _incident_in_brief(server)
        assert summary["incidents_opened"], (summary["anomalies"], incidents)
        latency = [i for i in h.incidents(server)["active_incidents"]
                   if any(a["type"] == "latency" for a in i["anomalies"])]
        assert latency, incidents
        assert {i["root_cause"]["service"] for i in latency} == {"shop"}, incidents

        cleared = server.post("/simulate/clear")
        assert cleared.status_code == 200 and cleared.json() == {"cleared": 1}
        # The worker that served the clear stops at once; the others' watchers within a second.
        h.wait_for(lambda: set(_hogs(server).values()) == {"stopped"}, "every worker's hog to stop")
        assert len(_hogs(server)) >= 4
        assert server.get("/simulate/faults").json()["faults"] == []
