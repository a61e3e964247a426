"""The HTTP contract of ``/aiops/*`` and ``/simulate/*`` through the Flask test client.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import time

import pytest

from aiops.jobs import on_demand
from aiops.jobs.lease import claim, release
from aiops.settings import settings_of
from aiops.store.models import CycleRequest, DetectionCycle
from aiops.web import api
from telemetry.db import db
from tests.conftest import dispose_app, make_app, sqlite_only

TOKEN = "s3cret-token"


@pytest.fixture
def app(db_url):
    # Production error handling: an unhandled exception is a 500 response, not a test crash.
    app = make_app(db_url, PROPAGATE_EXCEPTIONS=False)
    yield app
    dispose_app(app)




@pytest.fixture(autouse=True)
def _no_cpu_hog_left():
    """A test that injected a CPU hog (and did not clear it) leaves no busy thread behind."""
    yield
    from simulation.cpuhog import hog

    hog.stop()


def assert_json_error(response, status: int, name: str) -> dict:
    assert response.status_code == status
    assert response.is_json, response.data[:200]
    body = response.get_json()
    assert body["error"] == name
    assert isinstance(body["message"], str) and body["message"]
    return body


def faults(client) -> list[dict]:
    r = client.get("/simulate/faults")
    assert r.status_code == 200
    return r.get_json()["faults"]


# -- errors ------------------------------------------------------------------


def test_unknown_incident_is_a_json_404(client):
    body = assert_json_error(client.get("/aiops/incidents/INC-0-404"), 404, "Not Found")
    assert "INC-0-404" in body["message"]


@pytest.mark.parametrize("path", ["/aiops/nope", "/aiops/incidents/x/y/z", "/simulate/nope"])
@sqlite_only
def test_unknown_api_route_is_a_json_404(client, path):
    assert_json_error(client.get(path), 404, "Not Found")


def test_html_pages_get_an_html_error(client):
    """The same 404 is HTML on a page route and JSON under /aiops."""
    r = client.get("/incidents/INC-0-404")
    assert r.status_code == 404 and r.mimetype == "text/html"
    assert client.get("/aiops/incidents/INC-0-404").mimetype == "application/json"


def test_error_format_follows_the_route_not_the_path(app, client):
    """An error is HTML on the routes of a blueprint that declared itself HTML pages (a wrong method on
    one of them included), JSON on any other route and on a path no route has."""
    from flask import Blueprint, abort

    from aiops.web import errors

    pages = errors.html_pages(Blueprint("more_pages", __name__))
    feed = Blueprint("feed", __name__)
    pages.add_url_rule("/more/<n>", "more", lambda n: abort(404, description=f"no page {n}"))
    feed.add_url_rule("/more/<n>/feed", "feed", lambda n: abort(404, description=f"no feed {n}"))
    app.register_blueprint(pages)
    app.register_blueprint(feed)
    r = client.get("/more/7")
    assert r.status_code == 404 and r.mimetype == "text/html" and "no page 7" in r.get_data(as_text=True)
    assert_json_error(client.get("/more/7/feed"), 404, "Not Found")
    r = client.post("/more/7")
    assert r.status_code == 405 and r.mimetype == "text/html"
    for path in ("/incidents/INC-0-404/resolve", "/logs", "/"):  # the product's pages, posted or not
        r = client.delete(path)
        assert r.status_code == 405 and r.mimetype == "text/html", path
    assert_json_error(client.get("/incidents/INC-0-404/nope"), 404, "Not Found")  # no route has it


def test_wrong_method_is_a_json_405(client):
    assert_json_error(client.get("/aiops/analyze"), 405, "Method Not Allowed")
    assert_json_error(client.get("/simulate/clear"), 405, "Method Not Allowed")


def test_incident_lists_start_empty(client):
    r = client.get("/aiops/incidents")
    assert r.status_code == 200
    assert r.get_json() == {"active_incidents": [], "resolved_incidents": [], "next": None}


# -- /simulate ---------------------------------------------------------------


def test_demo_disabled_has_no_demo_routes_and_changes_nothing(app_factory):
    """With the demo off, neither fault injection nor the shop exists; /health is the product's."""
    app = app_factory(AIOPS_ENABLE_SIMULATION=False)
    client = app.test_client()
    for path in ("/simulate/delay?endpoint=payment&duration=100", "/simulate/error?endpoint=payment&rate=1",
                 "/simulate/timeout?endpoint=payment", "/simulate/network?endpoint=payment&delay_ms=100",
                 "/simulate/cpu", "/simulate/clear", "/checkout", "/payment"):
        assert_json_error(client.post(path), 404, "Not Found")
    assert_json_error(client.get("/simulate/faults"), 404, "Not Found")
    assert_json_error(client.get("/inventory"), 404, "Not Found")

    from simulation.faults import active

    with app.app_context():
        assert active() == []
    health = client.get("/health")
    assert health.status_code == 200 and health.get_json()["status"] == "ok"


BAD_FAULTS = [
    ("/simulate/delay?endpoint=nope&duration=100", None),
    ("/simulate/error?endpoint=nope&rate=0.5", None),
    ("/simulate/timeout?endpoint=nope", None),
    ("/simulate/delay?endpoint=payment&duration=-5", None),
    ("/simulate/delay?endpoint=payment&duration=999999999", None),
    ("/simulate/delay?endpoint=payment&duration=NaN", None),
    ("/simulate/delay?endpoint=payment&duration=inf", None),
    ("/simulate/error?endpoint=payment&rate=1.5", None),
    ("/simulate/error?endpoint=payment&rate=-0.1", None),
    ("/simulate/error?endpoint=payment&rate=abc", None),
    ("/simulate/error?endpoint=payment&rate=nan", None),
    ("/simulate/error?endpoint=payment&rate=", None),
    ("/simulate/error?endpoint=payment", None),
    ("/simulate/error?rate=0.5", None),
    ("/simulate/delay", None),
    ("/simulate/timeout", None),
    ("/simulate/error", {"endpoint": "payment", "rate": "lots"}),
    ("/simulate/error", {"endpoint": ["payment"], "rate": 0.5}),
    ("/simulate/delay", {"endpoint": "payment", "duration": None}),
    ("/simulate/delay", {"endpoint": "payment", "duration": [1]}),
    ("/simulate/error", {"endpoint": "payment", "rate": True}),
    # network: only the endpoints the demo calls over the network, delay_ms 0..600000
    ("/simulate/network?endpoint=checkout&delay_ms=100", None),
    ("/simulate/network?endpoint=health&delay_ms=100", None),
    ("/simulate/network?endpoint=nope&delay_ms=100", None),
    ("/simulate/network?delay_ms=100", None),
    ("/simulate/network?endpoint=payment", None),
    ("/simulate/network?endpoint=payment&delay_ms=", None),
    ("/simulate/network?endpoint=payment&delay_ms=-1", None),
    ("/simulate/network?endpoint=payment&delay_ms=600001", None),
    ("/simulate/network?endpoint=payment&delay_ms=nan", None),
    ("/simulate/network?endpoint=payment&delay_ms=slow", None),
    ("/simulate/network?endpoint=payment&duration=100", None),  # the delay parameter is delay_ms
    ("/simulate/network?endpoint=payment&delay_ms=100&rate=1", None),
    ("/simulate/network", {"endpoint": "payment", "delay_ms": None}),
    ("/simulate/network", {"endpoint": "payment", "delay_ms": [100]}),
    ("/simulate/network", {"endpoint": "payment", "delay_ms": False}),
    # cpu: threads a whole number 1..4, duration 1..3600 s, nothing else
    ("/simulate/cpu?threads=0", None),
    ("/simulate/cpu?threads=5", None),
    ("/simulate/cpu?threads=1.5", None),
    ("/simulate/cpu?threads=many", None),
    ("/simulate/cpu?threads=", None),
    ("/simulate/cpu?threads=inf", None),
    ("/simulate/cpu?duration=0", None),
    ("/simulate/cpu?duration=0.5", None),
    ("/simulate/cpu?duration=3601", None),
    ("/simulate/cpu?duration=nan", None),
    ("/simulate/cpu?duration=", None),
    ("/simulate/cpu?endpoint=payment", None),  # the hog slows the whole process
    ("/simulate/cpu?thread=2", None),
    ("/simulate/cpu", {"threads": True}),
    ("/simulate/cpu", {"threads": None}),
    ("/simulate/cpu", {"duration": [10]}),
    ("/simulate/clear?endpoint=nope", None),
    ("/simulate/clear?endpoint=", None),
    # Strict numbers: what float() takes but no client means is a 400, not a fault.
    ("/simulate/delay?endpoint=payment&duration=true", None),
    ("/simulate/delay?endpoint=payment&duration=1_000", None),
    ("/simulate/delay?endpoint=payment&duration=%201000", None),
    ("/simulate/delay?endpoint=payment&duration=infinity", None),
    ("/simulate/error?endpoint=payment&rate=0x1", None),
    ("/simulate/delay", {"endpoint": "payment", "duration": True}),
    ("/simulate/error", {"endpoint": "payment", "rate": False}),
    ("/simulate/delay", {"endpoint": "payment", "duration": "1_000"}),
    ("/simulate/delay", {"endpoint": {"a": 1}, "duration": 5}),
]


def test_bad_fault_parameters_are_a_400_and_change_nothing(client, subtests):
    """One app for all cases (a fresh database each would be slow); each case is a subtest."""
    from simulation.cpuhog import hog

    assert client.post("/simulate/delay?endpoint=inventory&duration=250").status_code == 200
    before = faults(client)
    assert before
    for path, body in BAD_FAULTS:
        with subtests.test(path=path, body=body):
            r = client.post(path, json=body) if body is not None else client.post(path)
            assert_json_error(r, 400, "Bad Request")
            assert faults(client) == before
            assert hog.running() == 0


def test_bad_network_and_cpu_faults_say_what_is_wrong(client):
    r = client.post("/simulate/network?endpoint=checkout&delay_ms=100")
    body = assert_json_error(r, 400, "Bad Request")
    assert "over the network" in body["message"] and "payment, inventory" in body["message"]
    r = client.post("/simulate/network?endpoint=payment&duration=100")
    body = assert_json_error(r, 400, "Bad Request")
    assert "'duration'" in body["message"] and "delay_ms" in body["message"]
    body = assert_json_error(client.post("/simulate/cpu?threads=9"), 400, "Bad Request")
    assert body["message"] == "'threads' must be between 1 and 4, not 9"
    body = assert_json_error(client.post("/simulate/cpu?threads=2.5"), 400, "Bad Request")
    assert body["message"] == "'threads' must be a whole number, not 2.5"


NO_FAULT = {"delay_ms": 0.0, "error_rate": 0.0, "timeout": False, "network_delay_ms": 0.0, "cpu_threads": 0,
            "cpu_until": None, "degrade_factor": 0.0, "degrade_ramp_s": 0.0, "degrade_since": None,
            "stopped": False, "dependency": None, "exhaust": None, "invalid": False, "until": None}


def test_fault_injection_is_visible_and_cleared(client):
    r = client.post("/simulate/error?endpoint=inventory&rate=0.5")
    assert r.status_code == 200
    assert r.get_json()["injected"] == {**NO_FAULT, "endpoint": "inventory", "error_rate": 0.5}
    assert client.post("/simulate/delay", json={"endpoint": "payment", "duration": 250}).status_code == 200
    assert client.post("/simulate/timeout?endpoint=inventory").status_code == 200
    r = client.post("/simulate/network", json={"endpoint": "payment", "delay_ms": 400})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["injected"] == {**NO_FAULT, "endpoint": "payment", "delay_ms": 250.0,
                                        "network_delay_ms": 400.0}
    assert faults(client) == [
        {**NO_FAULT, "endpoint": "inventory", "error_rate": 0.5, "timeout": True},
        {**NO_FAULT, "endpoint": "payment", "delay_ms": 250.0, "network_delay_ms": 400.0},
    ]
    r = client.post("/simulate/clear")
    assert r.status_code == 200 and r.get_json() == {"cleared": 2}
    assert faults(client) == []


def test_cpu_fault_is_one_row_for_the_whole_process(client):
    r = client.post("/simulate/cpu?threads=2&duration=600")
    assert r.status_code == 200, r.get_json()
    injected = r.get_json()["injected"]
    assert {**injected, "cpu_until": None} == {**NO_FAULT, "endpoint": "*", "cpu_threads": 2}
    assert injected["cpu_until"].endswith("Z")
    r = client.post("/simulate/cpu")
    assert r.get_json()["injected"] == {**NO_FAULT, "endpoint": "*", "cpu_threads": 1}
    assert client.post("/simulate/network?endpoint=inventory&delay_ms=0").status_code == 200
    assert [f["endpoint"] for f in faults(client)] == ["*", "inventory"]

    # Clearing one endpoint keeps the hog; "*" clears the hog alone.
    assert client.post("/simulate/clear?endpoint=inventory").get_json() == {"cleared": 1}
    assert [f["endpoint"] for f in faults(client)] == ["*"]
    assert client.post("/simulate/clear?endpoint=*").get_json() == {"cleared": 1}
    assert faults(client) == []


def test_injected_error_makes_the_endpoint_fail_with_json(client):
    client.post("/simulate/error?endpoint=payment&rate=1")
    body = assert_json_error(client.post("/payment"), 500, "Internal Server Error")
    assert "injected error on payment" in body["message"]
    client.post("/simulate/clear")
    assert client.post("/payment").status_code == 200


@pytest.mark.parametrize("body", [[1], "lots", {"amount": "lots"}, {"amount": True}, {"amount": None}])
@sqlite_only
def test_shop_bodies_other_than_an_order_are_a_400(client, body):
    """A list once reached ``.get`` (a 500); a string amount was passed on to payment."""
    for path in ("/payment", "/checkout"):
        body_json = assert_json_error(client.post(path, json=body), 400, "Bad Request")
        assert "amount" in body_json["message"]
    assert client.post("/payment", json={"amount": 5}).get_json() == {"status": "paid", "amount": 5}
    assert client.post("/payment").get_json() == {"status": "paid", "amount": 0}


# -- token -------------------------------------------------------------------

MUTATING = [
    "/simulate/delay?endpoint=payment&duration=10",
    "/simulate/error?endpoint=payment&rate=0.1",
    "/simulate/timeout?endpoint=payment",
    "/simulate/network?endpoint=payment&delay_ms=10",
    "/simulate/cpu?duration=1",
    "/simulate/degrade?endpoint=payment",
    "/simulate/stop?endpoint=payment",
    "/simulate/clear",
    "/aiops/analyze",
]


@pytest.mark.parametrize("path", MUTATING)
def test_api_token_is_enforced_on_mutating_calls(app_factory, path):
    app = app_factory(AIOPS_API_TOKEN=TOKEN)
    client = app.test_client()
    assert_json_error(client.post(path), 401, "Unauthorized")
    assert_json_error(client.post(path, headers={"Authorization": "Bearer wrong"}), 401, "Unauthorized")
    assert_json_error(client.post(path, headers={"Authorization": TOKEN}), 401, "Unauthorized")
    assert faults(client) == []  # refused calls changed nothing
    assert client.post(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_reads_need_no_token(app_factory):
    client = app_factory(AIOPS_API_TOKEN=TOKEN).test_client()
    for path in ("/aiops/incidents", "/aiops/metrics", "/simulate/faults"):
        assert client.get(path).status_code == 200, path


def test_token_is_checked_before_parameters(app_factory):
    """An unauthenticated caller learns nothing about valid parameters."""
    client = app_factory(AIOPS_API_TOKEN=TOKEN).test_client()
    assert_json_error(client.post("/simulate/delay?endpoint=nope"), 401, "Unauthorized")


# -- metrics -----------------------------------------------------------------


def flush(app):
    with app.app_context():
        app.extensions["aiops_buffer"].flush()


def test_metrics_shape(app, client):
    for _ in range(3):
        assert client.post("/payment", json={"amount": 1}).status_code == 200
    client.post("/simulate/error?endpoint=inventory&rate=1")
    for _ in range(2):
        assert client.get("/inventory").status_code == 500
    assert client.get("/health").status_code == 200
    client.get("/aiops/incidents")  # the product's own routes are not endpoints of the shop
    client.get("/openapi.json")
    flush(app)

    r = client.get("/aiops/metrics")
    assert r.status_code == 200
    metrics = r.get_json()["metrics"]
    assert set(metrics) == {"payment", "inventory", "health"}
    for m in metrics.values():
        assert {"avg_latency_ms", "baseline_latency_ms", "error_rate", "request_count",
                "status_distribution"} <= set(m)
        assert m["avg_latency_ms"] >= 0 and m["baseline_latency_ms"] is None
    assert metrics["payment"]["request_count"] == 3
    assert metrics["payment"]["status_distribution"] == {"200": 3}
    assert metrics["payment"]["error_rate"] == 0.0
    assert metrics["payment"]["avg_latency_ms"] > 0
    assert metrics["inventory"]["status_distribution"] == {"500": 2}
    assert metrics["inventory"]["error_rate"] == 1.0
    assert metrics["health"]["request_count"] == 1

    # After a cycle the healthy endpoints have a (seeded) baseline; the failing one does not.
    assert client.post("/aiops/analyze").status_code == 200
    metrics = client.get("/aiops/metrics").get_json()["metrics"]
    assert metrics["payment"]["baseline_latency_ms"] == pytest.approx(metrics["payment"]["avg_latency_ms"],
                                                                      abs=0.01)
    assert metrics["inventory"]["baseline_latency_ms"] is None


# -- analyze -----------------------------------------------------------------


def test_analyze_opens_one_incident_for_an_injected_error_spike(app, client):
    warmup = settings_of(app).min_baseline_samples + 5
    for _ in range(warmup):
        assert client.post("/payment").status_code == 200
    r = client.post("/aiops/analyze")
    assert r.status_code == 200
    summary = r.get_json()
    assert {"spans", "endpoints", "anomalies", "incidents_opened", "incidents_updated",
            "incidents_resolved", "duration_ms"} <= set(summary)
    assert summary["anomalies"] == [] and summary["incidents_opened"] == []
    assert summary["spans"] >= warmup

    client.post("/simulate/error?endpoint=payment&rate=1")
    for _ in range(10):
        assert client.post("/payment").status_code == 500
    summary = client.post("/aiops/analyze").get_json()
    assert [(a["endpoint"], a["type"]) for a in summary["anomalies"]] == [("payment", "error")]
    assert len(summary["incidents_opened"]) == 1

    listing = client.get("/aiops/incidents").get_json()
    assert listing["resolved_incidents"] == []
    [incident] = listing["active_incidents"]
    assert incident["id"] == summary["incidents_opened"][0]
    assert incident["root_cause"]["service"] == "shop"
    assert incident["root_cause"]["endpoint"] == "payment"
    assert incident["root_cause"]["issue"].startswith("Error spike: 100% of 10 requests failed")
    assert incident["severity"] == "critical"
    assert incident["trace_correlation"]["trace_id"] in incident["anomalies"][0]["trace_ids"]
    assert client.get(f"/aiops/incidents/{incident['id']}").get_json() == incident

    # The fault goes on: the next cycle updates the same incident.
    for _ in range(10):
        client.post("/payment")
    summary = client.post("/aiops/analyze").get_json()
    assert summary["incidents_opened"] == [] and summary["incidents_updated"] == [incident["id"]]
    assert len(client.get("/aiops/incidents").get_json()["active_incidents"]) == 1


def test_analyze_while_another_cycle_holds_the_lease_is_409(app, client):
    """No worker is alive, so this process runs the cycle; but another cycle holds the lease."""
    with app.app_context():
        claimed = claim(None, settings_of(app).detection_interval, 600.0)
        assert claimed is not None  # still running
        db.session.remove()
    body = assert_json_error(client.post("/aiops/analyze"), 409, "Conflict")
    assert "another detection cycle is still running" in body["message"]
    with app.app_context():
        assert db.session.query(DetectionCycle).count() == 0  # the refused request ran nothing
        release(claimed)  # that cycle ends: the next ask runs one
        db.session.remove()
    assert client.post("/aiops/analyze").status_code == 200


def test_analyze_with_a_worker_that_does_not_answer_is_503(app, client, monkeypatch):
    """A worker seen alive (its last heartbeat is recent) never answers: killed a moment ago, say.
    Only the wait is shortened (60 s in production); the ask, the doorbell and the timeout are real."""
    monkeypatch.setattr(api, "ANALYZE_WAIT", 0.3)
    with app.app_context():
        on_demand.beat("gone:1", started_at=time.time() - 60)
        db.session.remove()
    body = assert_json_error(client.post("/aiops/analyze"), 503, "Service Unavailable")
    assert "the worker did not answer within 0.3 s" in body["message"]
    with app.app_context():
        # The request stays for a worker to answer; this process ran no cycle itself.
        assert [r.answered_at for r in db.session.query(CycleRequest)] == [None]
        assert db.session.query(DetectionCycle).count() == 0
        db.session.remove()
