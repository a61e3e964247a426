"""Exposure guards: host allow-list, security headers, body limits, protected reads, 5xx texts."""

from __future__ import annotations

import base64
import logging

import pytest
from sqlalchemy import text

from aiops.settings import Settings, masked_url
from aiops.web import security
from tests.conftest import dispose_app, make_app

TOKEN = "s3cret-token"


@pytest.fixture
def app(db_url):
    app = make_app(db_url, PROPAGATE_EXCEPTIONS=False)
    yield app
    dispose_app(app)


# -- pure helpers -----------------------------------------------------------------------


@pytest.mark.parametrize("host, trusted, ok", [
    ("127.0.0.1:5000", ("127.0.0.1", "localhost"), True),
    ("localhost", ("127.0.0.1", "localhost"), True),
    ("[::1]:8000", ("::1",), True),
    ("evil.example", ("127.0.0.1", "localhost"), False),
    ("evil.example:5000", ("127.0.0.1",), False),
    ("127.0.0.1.evil.example", ("127.0.0.1",), False),
    ("a.example.com", (".example.com",), True),
    ("anything", ("*",), True),
    ("", ("127.0.0.1",), False),
])
def test_host_allowed(host, trusted, ok):
    assert security.host_allowed(host, trusted) is ok


def test_masked_url_hides_passwords_and_queries():
    assert masked_url("postgresql+psycopg://aiops:hunter2@db:5432/aiops") == \
        "postgresql+psycopg://aiops:***@db:5432/aiops"
    assert masked_url("sqlite:////var/lib/aiops.db") == "sqlite:////var/lib/aiops.db"
    assert "tok" not in masked_url("https://hooks.example/x?token=tok#tok")


@pytest.mark.parametrize("raw", ["1_000", "1e3", "true", "-5", "0", " "])
def test_count_settings_are_plain_positive_integers(raw):
    with pytest.raises(ValueError, match="AIOPS_MAX_BODY_BYTES"):
        Settings.load({"AIOPS_MAX_BODY_BYTES": raw})


# -- the app ----------------------------------------------------------------------------


def test_untrusted_host_is_refused_everywhere(client, app):
    """DNS rebinding: Host and Origin both name the attacker's domain."""
    evil = {"Host": "evil.example", "Origin": "http://evil.example"}
    for method, path in (("GET", "/aiops/incidents"), ("POST", "/simulate/clear"), ("GET", "/"),
                         ("POST", "/aiops/incidents/x/acknowledge"), ("POST", "/v1/traces")):
        r = client.open(path, method=method, headers=evil)
        assert r.status_code == 400, (path, r.status_code)
    assert client.get("/aiops/incidents", headers={"Host": "localhost:5000"}).status_code == 200


def test_any_host_when_configured(app_factory):
    client = app_factory(AIOPS_TRUSTED_HOSTS=("*",)).test_client()
    assert client.get("/aiops/incidents", headers={"Host": "aiops.example.com"}).status_code == 200


def test_security_headers_on_every_response(client):
    for path in ("/", "/health", "/aiops/incidents", "/nope", "/static/style.css"):
        r = client.get(path)
        csp = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in \
            csp.replace("style-src-attr 'unsafe-inline'", "")
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Referrer-Policy"] == "same-origin"


def test_body_limits_hold(app_factory):
    """Flask's default config holds MAX_CONTENT_LENGTH=None: the limit must be assigned, not defaulted."""
    client = app_factory(AIOPS_MAX_BODY_BYTES=4096, AIOPS_API_MAX_BODY_BYTES=1024).test_client()
    assert client.application.config["MAX_CONTENT_LENGTH"] == 4096
    big = {"amount": "x" * 8192}
    r = client.post("/payment", json=big)
    assert r.status_code == 413 and r.is_json
    assert client.post("/payment", json={"amount": 3}).status_code == 200
    r = client.post("/aiops/incidents/x/acknowledge", json={"by": "x" * 2000})
    assert r.status_code == 413
    r = client.post("/simulate/delay", json={"endpoint": "payment", "duration": 5, "pad": "x" * 2000})
    assert r.status_code == 413


def test_default_body_limit_is_set(client):
    assert client.application.config["MAX_CONTENT_LENGTH"] == 1024 * 1024
    assert client.post("/payment", data=b"x" * (2 * 1024 * 1024),
                       content_type="application/json").status_code == 413


def test_protected_reads_need_the_token(app_factory):
    app = app_factory(AIOPS_API_TOKEN=TOKEN, AIOPS_PROTECT_READS=True)
    client = app.test_client()
    for path in ("/aiops/incidents", "/aiops/metrics", "/", "/metrics", "/simulate/faults"):
        r = client.get(path)
        assert r.status_code == 401, path
        assert r.headers["WWW-Authenticate"].lower().startswith("basic")
        assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200, path
    basic = base64.b64encode(f"ops:{TOKEN}".encode()).decode()
    assert client.get("/", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    assert client.get("/health").status_code == 200


def test_protect_reads_without_a_token_is_a_configuration_error(db_url):
    with pytest.raises(ValueError, match="AIOPS_API_TOKEN"):
        make_app(db_url, AIOPS_PROTECT_READS=True)


def test_health_says_what_is_open(app_factory):
    body = app_factory().test_client().get("/health").get_json()
    assert body["status"] == "ok" and body["security"]["ingest"] == "open"
    assert any("AIOPS_INGEST_TOKEN" in w for w in body["security"]["warnings"])
    body = app_factory(AIOPS_INGEST_TOKEN="t", AIOPS_API_TOKEN=TOKEN).test_client().get("/health").get_json()
    assert body["security"] == {"ingest": "token", "api": "token", "reads": "open", "warnings": []}


def test_a_500_tells_the_user_a_request_id_and_the_log_the_details(app, client, caplog):
    from telemetry.db import db

    with app.app_context():
        db.session.execute(text("DROP TABLE baselines"))
        db.session.commit()
    with caplog.at_level(logging.ERROR, logger="aiops.web.errors"):
        r = client.get("/aiops/metrics")
        page = client.get("/")
    assert r.status_code == 500 and page.status_code == 500
    body = r.get_json()
    rid = body["request_id"]
    assert r.headers["X-Request-Id"] == rid and len(rid) == 16
    leaked = r.get_data(as_text=True) + page.get_data(as_text=True)
    for secret in ("SELECT", "no such table", "does not exist", "OperationalError", "ProgrammingError",
                   "baselines", "sqlite", "psycopg", "5432", "[SQL"):
        assert secret not in leaked, secret
    assert page.headers["X-Request-Id"] in page.get_data(as_text=True)
    logged = [rec for rec in caplog.records if rid in rec.getMessage()]
    assert logged and "baselines" in logged[0].exc_text


def test_injected_fault_text_stays_visible(client):
    client.post("/simulate/error?endpoint=payment&rate=1")
    r = client.post("/payment")
    assert r.status_code == 500 and "injected error on payment" in r.get_json()["message"]
