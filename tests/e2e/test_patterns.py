"""Each failure pattern told apart by what fails, end to end: the demo over loopback HTTP, its
fault injected through ``/simulate/*``, detection cycles triggered (never waited for). The right
kind within 2 cycles, in the incident's JSON, on its page and in its notifications; the stable demo
raises none. SQLite and PostgreSQL.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from aiops.jobs.cycle import run_claimed
from aiops.settings import settings_of
from aiops.store.models import Notification
from telemetry import log_bridge
from telemetry.db import db
from tests.support.loopback import LoopbackServer

pytestmark = pytest.mark.e2e

WARM_UP_CYCLES = 4  # past the log baselines' three normal windows, and the span baselines' samples
CHECKOUTS = 24


def _server(app_factory, **config) -> LoopbackServer:
    # Latency must grow 250 ms to count: a loaded machine's jitter is no fault.
    return LoopbackServer(
        app_factory(
            **{
                "TESTING": False,
                "AIOPS_DEMO_WORK": 0,
                "AIOPS_FLUSH_INTERVAL": 3600,
                "AIOPS_LATENCY_MIN_DELTA_MS": 250,
                "AIOPS_DEMO_TIMEOUT": 5.0,
                "AIOPS_NOTIFY_AFTER_CYCLES": 1,
                "AIOPS_WEBHOOK_URL": "http://127.0.0.1:9/hook",
                **config,
            }
        )
    )


@pytest.fixture
def shop(app_factory):
    s = _server(app_factory)
    yield s
    s.stop()


@pytest.fixture
def impatient_shop(app_factory):
    """Checkout gives up on a call after 1.5 s (a hung call costs that, not 5 s)."""
    s = _server(app_factory, AIOPS_DEMO_TIMEOUT=1.5)
    yield s
    s.stop()


def checkouts(server, n: int = CHECKOUTS) -> list[int]:
    def one(_):
        return requests.post(server.url + "/checkout", json={"amount": 3}, timeout=15).status_code

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(n)))


def cycle(server) -> dict:
    """Store what the recorders hold, then run one detection cycle now."""
    app = server.app
    with app.app_context():
        app.extensions["aiops_buffer"].flush()
        app.extensions[log_bridge.EXTENSION][0].flush()
        return run_claimed(settings_of(app), force=True)


def inject(server, kind: str, **params) -> None:
    response = server.app.test_client().post(f"/simulate/{kind}", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)


def incidents(server) -> list[dict]:
    data = server.app.test_client().get("/aiops/incidents").get_json()
    return data["active_incidents"] + data["resolved_incidents"]


def warm_up(server) -> None:
    for _ in range(WARM_UP_CYCLES):
        assert set(checkouts(server)) == {200}
        assert cycle(server)["anomalies"] == []


def detected(server, kind: str, n: int = CHECKOUTS) -> dict:
    """Drive checkouts through the fault for up to 2 cycles; the incident of ``kind`` it raised."""
    seen = []
    for _ in range(2):
        checkouts(server, n)
        cycle(server)
        seen = incidents(server)
        found = [i for i in seen if i["kind"] == kind]
        if found:
            [incident] = found
            return incident
    raise AssertionError(f"no {kind} incident in 2 cycles: {[(i['kind'], i['title']) for i in seen]}")


def assert_shown(server, incident: dict, kind: str, paged_as: frozenset = frozenset()) -> None:
    """The kind is in the JSON, on the page and in the notifications (``paged_as``: the kind the
    trigger went out with, when the pattern shows only from a later cycle: payloads are snapshots)."""
    assert incident["kind"] == incident["report"]["kind"] == kind
    page = server.app.test_client().get(f"/incidents/{incident['id']}").get_data(as_text=True)
    assert f'<span class="kind kind-report">{kind}</span>' in page
    with server.app.app_context():
        payloads = [n.payload for n in db.session.query(Notification).filter_by(incident_id=incident["id"])]
    paged = payloads[0]["incident"]["kind"] if payloads else None
    assert paged in (paged_as or {kind}), paged


@pytest.mark.parametrize("mode", ["refused", "dns", "5xx"])
def test_a_failing_external_dependency_is_a_dependency_incident(shop, mode):
    warm_up(shop)
    inject(shop, "dependency", endpoint="payment", mode=mode)
    incident = detected(shop, "dependency")
    # The root is the peer nothing records (its callers' CLIENT spans name it), or payment that calls it.
    root = (incident["root_cause"]["service"], incident["root_cause"]["endpoint"])
    assert root in {("gateway", "charge"), ("shop", "payment")}, incident["root_cause"]
    assert "Dependency failure" in incident["report"]["summary"]
    assert_shown(shop, incident, "dependency")


@pytest.mark.parametrize(
    ("resource", "what"),
    [("pool", "connection pool"), ("memory", "memory"), ("fds", "file descriptors"), ("disk", "disk")],
)
def test_an_exhausted_resource_is_an_exhaustion_incident(shop, resource, what):
    warm_up(shop)
    inject(shop, "exhaust", endpoint="inventory", resource=resource)
    incident = detected(shop, "exhaustion")
    assert incident["root_cause"]["endpoint"] == "inventory"
    assert f"run out of {what}" in incident["report"]["summary"], incident["report"]["summary"]
    assert_shown(shop, incident, "exhaustion")


def test_an_answer_the_caller_cannot_parse_is_an_invalid_response_incident(shop):
    warm_up(shop)
    inject(shop, "invalid", endpoint="payment")
    incident = detected(shop, "invalid_response")
    if incident["root_cause"]["endpoint"] is None:  # raised by checkout's log lines, a cycle before
        checkouts(shop)  # its spans: the next cycle's traces narrow it to the endpoint
        cycle(shop)
        incident = shop.app.test_client().get(f"/aiops/incidents/{incident['id']}").get_json()
        assert incident["timeline"][-1]["event"] == "narrowed", incident["timeline"]
    # The caller that could not parse a 200; or, on a loaded machine where payment's own time grew
    # too, payment, whose answer it was (the RCA walk follows where the time grew). Never another.
    assert incident["root_cause"]["endpoint"] in {"checkout", "payment"}, incident["root_cause"]
    assert "Expecting value" in incident["report"]["summary"]
    assert_shown(shop, incident, "invalid_response")


def test_timeouts_recurring_on_the_same_edge_are_repeated_timeouts(impatient_shop):
    warm_up(impatient_shop)
    inject(impatient_shop, "timeout", endpoint="inventory")
    incident = detected(impatient_shop, "timeouts", n=8)
    assert incident["root_cause"]["endpoint"] == "inventory"
    assert "Repeated timeouts" in incident["report"]["summary"]
    # It paged in the first cycle, when the timeouts were one-off (the hung calls also slowed inventory);
    # the second made them repeated.
    assert_shown(impatient_shop, incident, "timeouts",
                 paged_as=frozenset({"timeout", "cascading", "latency", "timeouts"}))


def test_the_stable_demo_raises_no_incident(shop):
    warm_up(shop)
    for _ in range(4):
        assert set(checkouts(shop)) == {200}
        assert cycle(shop)["incidents_opened"] == []
    assert incidents(shop) == []
