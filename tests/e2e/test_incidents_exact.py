"""Incidents that are exact on every run: the demo's cascade gives one incident rooted at payment
even when log lines cannot be tied to a span, and a reopened incident says what fails now.

Real demo traffic over loopback HTTP, real detection cycles triggered (never waited for), on
SQLite and PostgreSQL: ten to forty seconds a test, so these are e2e, outside the fast loop.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from aiops.jobs.cycle import run_claimed
from aiops.settings import settings_of
from aiops.store.models import Incident, Notification
from telemetry import log_bridge
from telemetry.db import db
from tests.support.factories import insert_logs, log_row
from tests.support.loopback import LoopbackServer

pytestmark = pytest.mark.e2e

WARM_UP_CYCLES = 4  # past the log baselines' three normal windows, and the span baselines' samples
CHECKOUTS = 24


@pytest.fixture
def shop(app_factory):
    """The demo on a real loopback server: /checkout calls payment and inventory over HTTP. Its
    recorders write only when told (the tests flush them), so which window gets what is chosen."""
    # Latency must grow 250 ms to count, and calls wait 5 s: a loaded machine's jitter is no fault.
    s = LoopbackServer(app_factory(TESTING=False, AIOPS_DEMO_WORK=0, AIOPS_FLUSH_INTERVAL=3600,
                                   AIOPS_LATENCY_MIN_DELTA_MS=250, AIOPS_DEMO_TIMEOUT=5.0,
                                   AIOPS_NOTIFY_AFTER_CYCLES=1, AIOPS_RESOLVE_AFTER_CYCLES=2,
                                   AIOPS_WEBHOOK_URL="http://127.0.0.1:9/hook"))
    yield s
    s.stop()


def checkouts(server, n: int = CHECKOUTS) -> list[int]:
    def one(_):
        return requests.post(server.url + "/checkout", json={"amount": 3}, timeout=10).status_code

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(n)))


def flush(server, spans: bool = True, logs: bool = True) -> None:
    app = server.app
    with app.app_context():
        if spans:
            app.extensions["aiops_buffer"].flush()
        if logs:
            app.extensions[log_bridge.EXTENSION][0].flush()


def cycle(server, spans: bool = True, logs: bool = True) -> dict:
    """Store what the recorders hold (or part of it), then run one detection cycle now."""
    flush(server, spans, logs)
    with server.app.app_context():
        return run_claimed(settings_of(server.app), force=True)


def inject(server, kind: str, **params) -> None:
    response = server.app.test_client().post(f"/simulate/{kind}", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)


def active(server) -> list[dict]:
    return server.app.test_client().get("/aiops/incidents").get_json()["active_incidents"]


def warm_up(server) -> None:
    for _ in range(WARM_UP_CYCLES):
        assert set(checkouts(server)) == {200}
        assert cycle(server)["anomalies"] == []


def test_the_cascade_is_one_incident_rooted_at_payment_though_lines_miss_their_spans(shop):
    """As live: the log lines of a window's failed requests reach the store a cycle after their
    spans did, so no span of the window they are judged in ties them to an endpoint."""
    warm_up(shop)
    inject(shop, "error", endpoint="payment", rate=1.0)
    for _ in range(4):
        flush(shop, spans=False)  # the last window's lines: their spans were judged a cycle ago
        # ... and lines no trace can place: no trace or span id (a background thread)
        now = time.time()
        insert_logs(shop.app, [log_row(now + i / 100, f"payment gateway refused charge {i}: upstream 500",
                                       service="shop", severity=17) for i in range(12)])
        assert set(checkouts(shop)) == {502}
        cycle(shop, logs=False)

    [incident] = active(shop)
    assert (incident["root_cause"]["service"], incident["root_cause"]["endpoint"]) == ("shop", "payment")
    # Every candidate is an endpoint the spans have (or the whole service): none made up.
    assert {c["endpoint"] for c in incident["root_cause_candidates"]} <= {"payment", "checkout", "inventory",
                                                                           None}
    assert incident["report"]["recommendations"][0]
    with shop.app.app_context():
        assert db.session.query(Incident).count() == 1


def test_a_reopened_incident_describes_the_new_fault_and_notifies_it(shop):
    warm_up(shop)
    inject(shop, "delay", endpoint="payment", duration=600)
    for _ in range(2):
        checkouts(shop)
        cycle(shop)
    [slow] = active(shop)
    assert slow["root_cause"]["endpoint"] == "payment" and "latency" in slow["title"]

    inject(shop, "clear")
    while active(shop):  # AIOPS_RESOLVE_AFTER_CYCLES quiet cycles
        assert set(checkouts(shop)) == {200}
        cycle(shop)

    inject(shop, "error", endpoint="payment", rate=1.0)
    for _ in range(2):
        checkouts(shop)
        cycle(shop)
    [again] = active(shop)
    assert again["id"] == slow["id"] and again["reopen_count"] == 1
    assert "errors" in again["title"] and "latency" not in again["title"], again["title"]
    assert "500" in again["root_cause"]["issue"] or "rror" in again["root_cause"]["issue"]
    assert "Latency" not in again["root_cause"]["issue"], again["root_cause"]["issue"]
    assert again["report"]["kind"] in ("errors", "cascading")
    reopened = [e for e in again["timeline"] if e["event"] == "reopened"]
    assert reopened and "was: " + slow["title"] in reopened[-1]["detail"]
    # The earlier episode stays in the record.
    assert {a["type"] for a in again["anomalies"]} >= {"latency", "error"}

    with shop.app.app_context():
        sent = [m.payload for m in db.session.query(Notification).order_by(Notification.id)
                if m.payload.get("incident", {}).get("id") == again["id"]]
    titles = [p["incident"]["title"] for p in sent]
    assert titles and titles[-1] == again["title"], titles
