"""The network fault of the demo, in a real process: where its delay lands.

A network fault must show as a slower call (the caller's CLIENT span) to a
callee whose own SERVER span is untouched.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
import requests

from telemetry.models import KIND_CLIENT, KIND_SERVER
from tests.test_recorder import LoopbackServer, stored


@pytest.fixture
def server(app_factory):
    """The app behind a real loopback server, so /checkout's calls to payment are real HTTP."""
    s = LoopbackServer(app_factory(TESTING=False, AIOPS_DEMO_TIMEOUT=2.0))
    yield s
    s.stop()


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


def test_network_delay_past_the_callers_timeout_is_a_504_the_callee_never_sees(server):
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
