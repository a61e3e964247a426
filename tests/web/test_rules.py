"""``/aiops/rules`` CRUD (token on mutations; a wrong body is a 400 naming the field, a bad query its
position, and changes nothing), ``GET /aiops/alerts`` pages, ``trace_anomalies_total`` on
``/metrics``, and the ``/rules`` page."""

from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aiops.rules import evaluation
from aiops.settings import reconfigure, settings_of
from tests.conftest import sqlite_only
from tests.support.factories import insert_spans, span

BODY = {"name": "checkout errors", "kind": "error_status", "query": '{ name = "checkout" && status = error }',
        "window_s": 60, "aggregation": "count", "threshold": 0,
        "webhook_url": "https://hooks.example.com/services/T0/B0/secret"}


def _all(client) -> list[dict]:
    response = client.get("/aiops/rules")
    assert response.status_code == 200
    return response.get_json()["rules"]


def test_crud(client):
    assert _all(client) == []
    created = client.post("/aiops/rules", json=BODY)
    assert created.status_code == 201, created.get_json()
    rule = created.get_json()
    plain = [k for k in BODY if k != "webhook_url"]
    assert {k: rule[k] for k in plain} == {k: BODY[k] for k in plain}
    assert rule["webhook_url"] == "https://hooks.example.com/***"  # the path is the receiver's secret
    assert rule["status"] == "pending" and rule["evaluated_at"] is None and rule["source"] == "api"
    assert client.get(f"/aiops/rules/{rule['id']}").get_json() == rule
    # GET, change, PUT back: the masked URL keeps the stored one.
    changed = client.put(f"/aiops/rules/{rule['id']}", json={**BODY, "webhook_url": rule["webhook_url"],
                                                            "threshold": 2})
    assert changed.status_code == 200 and changed.get_json()["threshold"] == 2.0
    with client.application.app_context():
        from aiops.rules import service

        assert service.get(rule["id"]).webhook_url == BODY["webhook_url"]
    assert client.post("/aiops/rules", json=BODY).status_code == 409  # the name is taken
    assert client.delete(f"/aiops/rules/{rule['id']}").status_code == 204
    assert _all(client) == []
    for method in (client.get, client.delete):
        assert method(f"/aiops/rules/{rule['id']}").status_code == 404
    assert client.put(f"/aiops/rules/{rule['id']}", json=BODY).status_code == 404
    assert client.get("/aiops/rules/394907688624049").status_code == 404


@sqlite_only
def test_a_bad_query_is_a_400_naming_its_position(client):
    response = client.post("/aiops/rules", json={**BODY, "query": "{ status = }"})
    assert response.status_code == 400
    message = response.get_json()["message"]
    assert message.startswith("query: ") and "line 1, column 12" in message
    assert _all(client) == []


@pytest.mark.parametrize("change, field", [
    ({"colour": "red"}, "colour"),
    ({"name": ""}, "name"),
    ({"kind": "everything"}, "kind"),
    ({"aggregation": "mean"}, "aggregation"),
    ({"window_s": -1}, "window_s"),
    ({"threshold": "5"}, "threshold"),
    ({"webhook_url": "gopher://x/"}, "webhook_url"),
])
@sqlite_only
def test_a_wrong_body_is_a_400_and_changes_nothing(client, change, field):
    kept = client.post("/aiops/rules", json=BODY).get_json()
    assert client.post("/aiops/rules", json={**BODY, "name": "other", **change}).status_code == 400
    response = client.put(f"/aiops/rules/{kept['id']}", json={**BODY, **change})
    assert response.status_code == 400 and response.get_json()["message"].startswith(f"{field}")
    assert _all(client) == [kept]
    for raw in (b"not json", b"[1, 2]"):
        answer = client.post("/aiops/rules", data=raw, content_type="application/json")
        assert answer.status_code == 400


def test_mutations_need_the_token(app, client):
    reconfigure(app, api_token="s3cret")
    auth = {"Authorization": "Bearer s3cret"}
    assert client.post("/aiops/rules", json=BODY).status_code == 401
    rule = client.post("/aiops/rules", json=BODY, headers=auth).get_json()
    assert client.put(f"/aiops/rules/{rule['id']}", json={**BODY, "threshold": 1}).status_code == 401
    assert client.delete(f"/aiops/rules/{rule['id']}").status_code == 401
    assert client.get("/aiops/rules").status_code == 200  # reading needs none
    assert _all(client)[0]["threshold"] == 0.0


def _fire(app, client, failures: int, rules: int = 1) -> None:
    """Store ``failures`` failed traces and evaluate ``rules`` error rules over them."""
    now = time.time()
    insert_spans(app, [span("checkout", start_time=now - 1 - i, status_code=500) for i in range(failures)])
    for n in range(rules):
        client.post("/aiops/rules", json={**BODY, "name": f"errors {n}"})
    with app.app_context():
        evaluation.run_due(settings_of(app), now=now, force=True)


def test_alerts_are_listed_in_pages(app, client):
    _fire(app, client, failures=2, rules=3)
    first = client.get("/aiops/alerts?limit=2").get_json()
    assert len(first["alerts"]) == 2 and first["next"]
    second = client.get(f"/aiops/alerts?limit=2&cursor={first['next']}").get_json()
    assert len(second["alerts"]) == 1 and second["next"] is None
    alerts = first["alerts"] + second["alerts"]
    assert {a["rule"] for a in alerts} == {"errors 0", "errors 1", "errors 2"}
    assert all(a["anomaly_type"] == "error_status" and a["affected_traces"] == 2 for a in alerts)
    assert client.get("/aiops/alerts?limit=0").status_code == 400
    assert client.get("/aiops/alerts?cursor=bogus").status_code == 400


def _counts(client) -> dict:
    text = client.get("/metrics").get_data(as_text=True)
    return {s.labels["type"]: s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == "trace_anomalies_total"}


def test_trace_anomalies_total_on_metrics(app, client):
    assert _counts(client) == dict.fromkeys(("error_status", "high_error_rate", "high_latency", "query"), 0.0)
    _fire(app, client, failures=1, rules=2)
    assert _counts(client)["error_status"] == 2.0


@sqlite_only
def test_the_page_escapes_what_users_wrote(app, client):
    hostile = '<script>alert("x")</script>'
    _fire(app, client, failures=1)
    client.post("/aiops/rules", json={**BODY, "name": hostile, "query": '{ name = "<b>x</b>" }'})
    page = client.get("/rules")
    assert page.status_code == 200 and "text/html" in page.content_type
    html = page.get_data(as_text=True)
    assert hostile not in html and "&lt;script&gt;" in html and "<b>x</b>" not in html
    assert "errors 0" in html and "error_status" in html and "hooks.example.com/***" in html
    assert "secret" not in html
    assert 'href="/rules"' in client.get("/slos").get_data(as_text=True)  # in the navigation
