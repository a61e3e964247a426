"""``/aiops/slos``: create, read, change and delete SLOs; each wrong body is a 400 naming the field and
changes nothing; mutations need the API token."""

from __future__ import annotations

import time

import pytest

from aiops.settings import reconfigure
from tests.conftest import sqlite_only
from tests.support.factories import insert_spans, span

BODY = {"name": "checkout availability", "service": "shop", "endpoint": "checkout", "sli": "availability",
        "objective": 99.9, "window_days": 30}


def _all(client) -> list[dict]:
    response = client.get("/aiops/slos")
    assert response.status_code == 200
    return response.get_json()["slos"]


def test_crud(client):
    assert _all(client) == []
    created = client.post("/aiops/slos", json=BODY)
    assert created.status_code == 201, created.get_json()
    slo = created.get_json()
    assert {k: slo[k] for k in BODY} == BODY
    assert slo["status"] == "ok" and slo["budget_remaining"] == 1.0 and slo["source"] == "api"
    assert set(slo["burn_rates"]) == {"5m", "30m", "1h", "6h", "3d"}
    assert len(slo["history"]) == 30
    assert client.get(f"/aiops/slos/{slo['id']}").get_json() == slo
    change = {**BODY, "sli": "latency", "threshold_ms": 250, "objective": 99}
    changed = client.put(f"/aiops/slos/{slo['id']}", json=change)
    assert changed.status_code == 200, changed.get_json()
    assert {k: changed.get_json()[k] for k in ("name", "sli", "threshold_ms", "objective")} == {
        "name": BODY["name"], "sli": "latency", "threshold_ms": 250.0, "objective": 99.0}
    assert [s["id"] for s in _all(client)] == [slo["id"]]
    assert client.delete(f"/aiops/slos/{slo['id']}").status_code == 204
    assert _all(client) == []
    for method in (client.get, client.delete):
        missing = method(f"/aiops/slos/{slo['id']}")
        assert missing.status_code == 404 and missing.get_json()["error"] == "Not Found"
    assert client.put(f"/aiops/slos/{slo['id']}", json=BODY).status_code == 404
    assert client.get("/aiops/slos/394907688624049").status_code == 404  # past the id column's range


def test_get_shows_the_evaluation_of_the_stored_spans(app, client):
    now = time.time()
    insert_spans(app, [span("checkout", start_time=now - 30 - i, status_code=500 if i < 20 else 200)
                       for i in range(100)])
    slo = client.post("/aiops/slos", json=BODY).get_json()
    assert slo["burn_rates"]["5m"] == pytest.approx(200.0)  # 20 % bad / 0.1 % budget
    assert slo["status"] == "page"
    assert slo["history"][-1]["good"] == 80 and slo["history"][-1]["total"] == 100
    assert slo["budget_remaining"] == pytest.approx(1 - 200.0)


@pytest.mark.parametrize("change, field", [
    ({"objective": 100}, "objective"),
    ({"objective": 0}, "objective"),
    ({"objective": -5}, "objective"),
    ({"objective": "99.9"}, "objective"),
    ({"objective": True}, "objective"),
    ({"sli": "happiness"}, "sli"),
    ({"colour": "red"}, "colour"),
    ({"sli": "latency"}, "threshold_ms"),
    ({"sli": "latency", "threshold_ms": -1}, "threshold_ms"),
    ({"threshold_ms": 100}, "threshold_ms"),  # availability has none
    ({"sli": "throughput"}, "min_rps"),
    ({"name": ""}, "name"),
    ({"name": 5}, "name"),
    ({"service": None}, "service"),
    ({"endpoint": ["a"]}, "endpoint"),
    ({"window_days": 0}, "window_days"),
    ({"window_days": 7.5}, "window_days"),
])
@sqlite_only
def test_a_wrong_body_is_a_400_naming_the_field(client, change, field):
    response = client.post("/aiops/slos", json={**BODY, **change})
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "Bad Request" and body["message"].startswith(f"{field}:"), body
    assert _all(client) == []


def test_a_wrong_change_is_a_400_and_changes_nothing(client):
    slo = client.post("/aiops/slos", json=BODY).get_json()
    response = client.put(f"/aiops/slos/{slo['id']}", json={**BODY, "objective": 120})
    assert response.status_code == 400 and response.get_json()["message"].startswith("objective:")
    assert client.get(f"/aiops/slos/{slo['id']}").get_json() == slo
    partial = client.put(f"/aiops/slos/{slo['id']}", json={"objective": 99})  # PUT replaces: a whole body
    assert partial.status_code == 400 and partial.get_json()["message"].startswith("name:")
    for bad in ("not json", "[1, 2]"):
        response = client.post("/aiops/slos", data=bad, content_type="application/json")
        assert response.status_code == 400, bad
        assert response.get_json()["message"].startswith("body:")


def test_a_name_is_unique(client):
    assert client.post("/aiops/slos", json=BODY).status_code == 201
    again = client.post("/aiops/slos", json={**BODY, "endpoint": "payment"})
    assert again.status_code == 409 and again.get_json()["message"].startswith("name:")
    other = client.post("/aiops/slos", json={**BODY, "name": "other"}).get_json()
    clash = client.put(f"/aiops/slos/{other['id']}", json=BODY)
    assert clash.status_code == 409
    assert len(_all(client)) == 2


def test_mutations_need_the_token(app, client):
    reconfigure(app, api_token="s3cret")
    assert client.post("/aiops/slos", json=BODY).status_code == 401
    auth = {"Authorization": "Bearer s3cret"}
    slo = client.post("/aiops/slos", json=BODY, headers=auth).get_json()
    assert client.put(f"/aiops/slos/{slo['id']}", json={"objective": 99}).status_code == 401
    assert client.delete(f"/aiops/slos/{slo['id']}").status_code == 401
    assert client.get(f"/aiops/slos/{slo['id']}").get_json()["objective"] == 99.9  # reads stay open
    assert client.delete(f"/aiops/slos/{slo['id']}", headers=auth).status_code == 204
