"""``GET /openapi.json``: every JSON route of the app is described, with its methods, in valid OpenAPI 3.1.

The live run against a real server (``tests/e2e/test_openapi_live.py``) checks the answers; this
checks the document itself, fast.
"""

from __future__ import annotations

import time

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from aiops.settings import settings_of
from aiops.store.models import iso
from tests.conftest import dispose_app, make_app
from tests.support.factories import add_incident
from tests.support.incident_rows import add_incidents

# Routes that are not JSON endpoints: the pages (HTML, their forms answer 303) and the assets.
NOT_JSON = {
    ("GET", "/"),
    ("GET", "/logs"),
    ("GET", "/slos"),
    ("GET", "/rules"),
    ("GET", "/map"),
    ("GET", "/incidents/{incident_id}"),
    ("POST", "/incidents/{incident_id}/acknowledge"),
    ("POST", "/incidents/{incident_id}/resolve"),
    ("GET", "/silences"),
    ("POST", "/silences"),
    ("POST", "/silences/{silence_id}/expire"),
    ("GET", "/static/{filename}"),
    ("GET", "/traces"),
    ("GET", "/services/{service}/endpoints/{name}"),
    ("GET", "/traces/{trace_id}"),
}
IMPLICIT = {"HEAD", "OPTIONS"}  # Flask adds them to every route


def routes(app) -> set[tuple[str, str]]:
    from aiops.web.openapi import _openapi_path

    return {(method, _openapi_path(rule.rule)) for rule in app.url_map.iter_rules()
            for method in rule.methods - IMPLICIT}


def operations(doc: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item}


@pytest.fixture(params=[True, False], ids=["demo", "no-demo"])
def app(request, sqlite_url):
    app = make_app(sqlite_url, AIOPS_ENABLE_SIMULATION=request.param, AIOPS_API_TOKEN="t0ken")
    yield app
    dispose_app(app)


def test_every_json_route_is_described_with_its_methods_and_nothing_else(app):
    doc = app.test_client().get("/openapi.json").get_json()
    assert NOT_JSON <= routes(app)
    assert operations(doc) == routes(app) - NOT_JSON
    demo = settings_of(app).enable_simulation
    assert any(path.startswith("/simulate/") for path in doc["paths"]) == demo


def test_the_document_is_valid_openapi_3_1(app):
    doc = app.test_client().get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_operation_documents_its_errors_with_the_error_schema(app):
    doc = app.test_client().get("/openapi.json").get_json()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            assert any(s.startswith("2") for s in responses) and "400" in responses, (method, path)
            if op["security"]:
                assert "401" in responses, (method, path)
            if "requestBody" in op:
                assert "413" in responses, (method, path)
            # gunicorn's own refusal of a request line over its limit, before the app: its HTML page.
            assert list(responses["414"]["content"]) == ["text/html"], (method, path)
            if path in ("/v1/traces", "/v1/logs", "/v1/metrics"):
                continue  # OTLP's own error body (google.rpc.Status)
            for status, response in responses.items():
                if status >= "400" and status != "414":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_security_follows_the_configuration(sqlite_url):
    open_app = make_app(sqlite_url, AIOPS_API_TOKEN="", AIOPS_INGEST_TOKEN="")
    protected = make_app(sqlite_url, AIOPS_API_TOKEN="t0ken", AIOPS_PROTECT_READS=True)
    try:
        doc = open_app.test_client().get("/openapi.json").get_json()
        resolve = doc["paths"]["/aiops/incidents/{incident_id}/resolve"]["post"]
        assert resolve["security"] == [] and "401" not in resolve["responses"]
        assert "401" not in doc["paths"]["/v1/traces"]["post"]["responses"]

        auth = {"Authorization": "Bearer t0ken"}
        doc = protected.test_client().get("/openapi.json", headers=auth).get_json()
        assert doc["paths"]["/aiops/incidents"]["get"]["security"] == [{"apiToken": []}, {"readBasic": []}]
        assert doc["paths"]["/aiops/analyze"]["post"]["security"] == [{"apiToken": []}]
        assert doc["paths"]["/health"]["get"]["security"] == []
        assert doc["paths"]["/checkout"]["post"]["security"] == []
        assert doc["paths"]["/v1/traces"]["post"]["security"] == [{"ingestToken": []}, {"ingestHeader": []}]
    finally:
        dispose_app(open_app)
        dispose_app(protected)


def test_answers_match_their_schemas(app):
    """A quick check of the shapes with real rows (the live run checks every operation)."""
    add_incidents(app, 4)
    client = app.test_client()
    doc = client.get("/openapi.json").get_json()

    def check(path: str, url: str, method: str = "get", status: str = "200", **kw):
        r = getattr(client, method)(url, **kw)
        assert r.status_code == int(status), r.get_json()
        schema = doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
        OAS31Validator({**schema, "components": doc["components"]}).validate(r.get_json())
        return r.get_json()

    body = check("/aiops/incidents", "/aiops/incidents?limit=1")
    assert body["next"] and body["active_incidents"]
    check("/aiops/incidents/{incident_id}", "/aiops/incidents/INC-1001-1")
    check("/aiops/incidents/{incident_id}", "/aiops/incidents/nope", status="404")
    check("/aiops/incidents", "/aiops/incidents?limit=0", status="400")
    check("/aiops/notifications", "/aiops/notifications")
    check("/aiops/metrics", "/aiops/metrics")
    check("/health", "/health")
    auth = {"Authorization": "Bearer t0ken"}
    resolve, url = "/aiops/incidents/{incident_id}/resolve", "/aiops/incidents/INC-1001-1/resolve"
    check(resolve, url, "post", headers=auth)
    check(resolve, url, "post", "409", headers=auth)
    check(resolve, url, "post", "401")
    ends = {"matchers": [{"name": "service", "value": "shop"}], "ends_at": "2099-01-01T00:00:00Z"}
    soon = {**ends, "ends_at": iso(time.time() + 3600)}
    silence = check("/aiops/silences", "/aiops/silences", "post", json=soon, headers=auth)
    check("/aiops/silences", "/aiops/silences", "post", "400", json=ends, headers=auth)  # too long
    check("/aiops/silences", "/aiops/silences")
    check("/aiops/silences/{silence_id}", f"/aiops/silences/{silence['id']}")
    check("/aiops/silences/{silence_id}", f"/aiops/silences/{silence['id']}", "delete", headers=auth)
    check("/aiops/silences/{silence_id}", "/aiops/silences/nope", "delete", "404", headers=auth)
    incident = check("/aiops/incidents/{incident_id}", "/aiops/incidents/INC-1002-2")
    assert incident["silenced"] is False and incident["silence_id"] is None
    series = check("/aiops/series", "/aiops/series?service=shop&endpoint=payment&since=7d")
    assert series["points"] and series["incidents"]
    check("/aiops/series", "/aiops/series?service=shop&endpoint=payment&step=1&since=7d", status="400")


def test_an_incident_with_every_anomaly_type_matches_its_schema(app):
    """Every anomaly type the detection records (and an SLO alert's) is one the document allows."""
    from aiops.kinds import AnomalyType
    from aiops.slos.service import SLO_ANOMALY
    from aiops.store.models import AnomalyRecord
    from telemetry.db import begin_write, db

    add_incident(app, "INC-7")
    with app.app_context():
        begin_write()
        for kind in [*AnomalyType, SLO_ANOMALY]:
            db.session.add(AnomalyRecord(incident_id="INC-7", service="shop", endpoint="payment",
                                         type=str(kind), observed=1.0, baseline=None, request_count=1,
                                         message=str(kind), detected_at=1.7e9, trace_ids=[]))
        db.session.commit()
    client = app.test_client()
    doc = client.get("/openapi.json").get_json()
    body = client.get("/aiops/incidents/INC-7").get_json()
    assert {a["type"] for a in body["anomalies"]} == {*map(str, AnomalyType), SLO_ANOMALY}
    answer = doc["paths"]["/aiops/incidents/{incident_id}"]["get"]["responses"]["200"]
    schema = answer["content"]["application/json"]["schema"]
    OAS31Validator({**schema, "components": doc["components"]}).validate(body)


@pytest.mark.parametrize("body", [
    {"name": "r", "query": "{ }", "aggregation": "rate", "threshold": 0.5},
    {"name": "r", "query": "{ }", "aggregation": "rate", "threshold": 1},
    {"name": "r", "kind": "high_error_rate", "threshold": 0.2},
    {"name": "r", "kind": "high_error_rate", "threshold": 5},
    {"name": "r", "kind": "high_error_rate", "aggregation": "count", "threshold": 5},
    {"name": "r", "query": "{ }", "threshold": 5},
])
def test_the_rule_body_schema_and_the_rule_check_agree_on_a_rates_threshold(body):
    """A generated body the schema allows must be one the API takes (a rate's threshold is below 1)."""
    from aiops.rules import spec
    from aiops.slos.spec import SpecError
    from aiops.web.openapi_rules import SCHEMAS

    schema_ok = OAS31Validator(SCHEMAS["RuleBody"]).is_valid(body)
    try:
        spec.check(body)
        check_ok = True
    except SpecError:
        check_ok = False
    assert schema_ok == check_ok
