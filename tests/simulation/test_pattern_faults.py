"""The demo faults of the failure patterns: /simulate/dependency, /simulate/exhaust, /simulate/invalid.

Validated (400 naming the field, nothing stored), token-protected, cleared by /simulate/clear, and
each failing the way it says, with the real error, over real loopback HTTP. SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
import requests

from simulation import external
from telemetry.columns import KIND_CLIENT, KIND_SERVER
from tests.conftest import sqlite_only
from tests.support.loopback import LoopbackServer, stored

TOKEN = "s3cret-token"


def faults(client) -> list[dict]:
    return client.get("/simulate/faults").get_json()["faults"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/simulate/dependency?mode=refused", "endpoint"),
        ("/simulate/dependency?endpoint=payment", "mode"),
        ("/simulate/dependency?endpoint=payment&mode=teapot", "mode"),
        ("/simulate/dependency?endpoint=checkout&mode=dns", "endpoint"),
        ("/simulate/dependency?endpoint=nope&mode=dns", "endpoint"),
        ("/simulate/dependency?endpoint=payment&mode=dns&rate=1", "rate"),
        ("/simulate/exhaust?resource=pool", "endpoint"),
        ("/simulate/exhaust?endpoint=payment", "resource"),
        ("/simulate/exhaust?endpoint=payment&resource=" + "x" * 5000, "resource"),
        ("/simulate/exhaust?endpoint=payment&resource=cpu", "resource"),
        ("/simulate/invalid", "endpoint"),
        ("/simulate/invalid?endpoint=checkout", "endpoint"),
        ("/simulate/invalid?endpoint=payment&mode=html", "mode"),
    ],
)
@sqlite_only
def test_bad_parameters_are_a_400_naming_the_field_and_change_nothing(client, path, field):
    response = client.post(path)
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == "Bad Request" and f"'{field}'" in body["message"], body
    assert len(body["message"]) < 500  # a hostile value is not echoed whole
    assert faults(client) == []


def test_each_fault_is_stored_shown_and_cleared(client):
    assert (
        client.post("/simulate/dependency?endpoint=payment&mode=5xx").get_json()["injected"]["dependency"]
        == "5xx"
    )
    assert (
        client.post("/simulate/exhaust", json={"endpoint": "inventory", "resource": "fds"}).status_code == 200
    )
    assert client.post("/simulate/invalid?endpoint=inventory").get_json()["injected"]["invalid"] is True
    shown = {f["endpoint"]: f for f in faults(client)}
    assert shown["payment"]["dependency"] == "5xx"
    assert (shown["inventory"]["exhaust"], shown["inventory"]["invalid"]) == ("fds", True)
    assert client.post("/simulate/clear").get_json()["cleared"] == 2
    assert faults(client) == []


def test_the_faults_need_the_token(app_factory):
    client = app_factory(AIOPS_API_TOKEN=TOKEN).test_client()
    for path in (
        "/simulate/dependency?endpoint=payment&mode=dns",
        "/simulate/exhaust?endpoint=payment&resource=disk",
        "/simulate/invalid?endpoint=payment",
        "/simulate/dependency?endpoint=nope",
    ):
        assert client.post(path).status_code == 401, path
    assert faults(client) == []
    ok = client.post("/simulate/invalid?endpoint=payment", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200


def test_the_faults_are_in_the_openapi_document(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for name in ("dependency", "exhaust", "invalid"):
        assert paths[f"/simulate/{name}"]["post"]["responses"]["400"]


@pytest.fixture
def server(app_factory):
    s = LoopbackServer(app_factory(TESTING=False, AIOPS_DEMO_TIMEOUT=2.0))
    yield s
    s.stop()


def _call_of(spans, endpoint: str):
    server_span = next(s for s in spans if s.endpoint == endpoint and s.kind == KIND_SERVER)
    calls = [
        s
        for s in spans
        if s.kind == KIND_CLIENT and s.parent_span_id == server_span.span_id and s.peer == external.PEER
    ]
    return server_span, calls


@pytest.mark.parametrize(
    ("mode", "status", "exception"),
    [
        ("refused", None, "Connection refused"),
        ("dns", None, "Name or service not known"),
        ("5xx", 503, None),
    ],
)
def test_a_dependency_fault_fails_the_call_to_the_external_peer(server, mode, status, exception):
    client = server.app.test_client()
    assert requests.post(server.url + "/payment", timeout=10).status_code == 200  # it calls the peer normally
    [normal] = _call_of(stored(server.app), "payment")[1]
    assert (normal.status_code, normal.error) == (200, False)

    assert client.post(f"/simulate/dependency?endpoint=payment&mode={mode}").status_code == 200
    assert requests.post(server.url + "/payment", timeout=10).status_code == 502
    spans = stored(server.app)[-2:]
    payment, [call] = _call_of(spans, "payment")
    assert payment.error and payment.status_code == 502
    assert call.error and call.status_code == status
    if exception:
        assert exception in call.exception_message and exception in payment.exception_message
    assert not [s for s in stored(server.app) if s.parent_span_id == call.span_id]  # nothing records the peer


@pytest.mark.parametrize(
    ("resource", "exception_type", "words"),
    [
        ("pool", "sqlalchemy.exc.TimeoutError", "QueuePool limit"),
        ("memory", "MemoryError", "memory"),
        ("fds", "OSError", "Too many open files"),
        ("disk", "OSError", "No space left on device"),
    ],
)
def test_an_exhaust_fault_raises_the_resources_real_error(server, resource, exception_type, words):
    assert (
        server.app.test_client().post(f"/simulate/exhaust?endpoint=inventory&resource={resource}").status_code
        == 200
    )
    assert requests.get(server.url + "/inventory", timeout=10).status_code == 500
    [span] = [s for s in stored(server.app) if s.endpoint == "inventory"]
    assert span.exception_type == exception_type and words in span.exception_message


def test_an_invalid_fault_answers_200_that_the_caller_cannot_parse(server):
    assert server.app.test_client().post("/simulate/invalid?endpoint=payment").status_code == 200
    answer = requests.post(server.url + "/payment", timeout=10)
    assert answer.status_code == 200 and not answer.headers["Content-Type"].startswith("application/json")
    assert requests.post(server.url + "/checkout", json={"amount": 3}, timeout=10).status_code == 502
    spans = stored(server.app)
    checkout = next(s for s in spans if s.endpoint == "checkout" and s.kind == KIND_SERVER)
    assert checkout.exception_type == "requests.exceptions.JSONDecodeError"
    assert "Expecting value" in checkout.exception_message
    payment = [s for s in spans if s.endpoint == "payment" and s.kind == KIND_SERVER]
    assert all(s.status_code == 200 and not s.error for s in payment)
