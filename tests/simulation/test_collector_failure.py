"""``POST /simulate/collector-failure`` and ``GET /telemetry/health`` through the app.

The apps with export configured record nothing (``AIOPS_RECORD_REQUESTS=0``), so no export thread
starts in the test process: its ``aiops_export_*`` figures would show on every later ``/metrics``
of this process (the multiprocess directory is the process's), and the family list is tested."""

from __future__ import annotations

import time

import pytest

from simulation import collector
from tests.conftest import sqlite_only

BAD = [
    ("/simulate/collector-failure", "'seconds' is required"),
    ("/simulate/collector-failure?seconds=", "'seconds' is required"),
    ("/simulate/collector-failure?seconds=0", "more than 0"),
    ("/simulate/collector-failure?seconds=-5", "'seconds'"),
    ("/simulate/collector-failure?seconds=soon", "must be a number"),
    ("/simulate/collector-failure?seconds=nan", "must be a number"),
    ("/simulate/collector-failure?seconds=86401", "between"),
    ("/simulate/collector-failure?seconds=5&endpoint=payment", "unknown parameter 'endpoint'"),
]


@pytest.mark.parametrize(("path", "message"), BAD)
@sqlite_only
def test_bad_seconds_are_a_clear_400(client, path, message):
    r = client.post(path)
    assert r.status_code == 400 and r.is_json, r.data[:200]
    assert r.get_json()["error"] == "Bad Request" and message in r.get_json()["message"]
    assert client.get("/simulate/faults").get_json()["faults"] == []


@sqlite_only
def test_a_collector_failure_is_stored_seen_by_the_exporter_and_cleared(app_factory, tmp_path):
    app = app_factory(AIOPS_EXPORT_OTLP_ENDPOINT="http://127.0.0.1:9",
                      AIOPS_EXPORT_FALLBACK_DIR=str(tmp_path), AIOPS_RECORD_REQUESTS=False)
    client = app.test_client()
    r = client.post("/simulate/collector-failure?seconds=30")
    assert r.status_code == 200, r.get_json()
    injected = r.get_json()["injected"]
    assert injected["endpoint"] == collector.COLLECTOR and injected["until"].endswith("Z")
    until = collector.blackout_until(app)()
    assert until is not None and until > time.time() + 20
    stored = client.get("/simulate/faults").get_json()["faults"]
    assert [f["endpoint"] for f in stored] == [collector.COLLECTOR]
    assert client.post("/simulate/clear").get_json()["cleared"] == 1
    assert collector.blackout_until(app)() is None


@sqlite_only
def test_the_collector_failure_needs_the_api_token(app_factory):
    client = app_factory(AIOPS_API_TOKEN="tok").test_client()
    assert client.post("/simulate/collector-failure?seconds=5").status_code == 401
    r = client.post("/simulate/collector-failure?seconds=5", headers={"Authorization": "Bearer tok"})
    assert r.status_code == 200


@sqlite_only
def test_health_says_when_export_is_off(client):
    body = client.get("/telemetry/health").get_json()
    assert body["status"] == "healthy" and body["healthy"] is True and body["export"] == "disabled"
    assert "AIOPS_EXPORT_OTLP_ENDPOINT" in body["message"] and body["issues"] == []
    assert body["resilience_metrics"]["breaker_state"] == "closed"


@sqlite_only
def test_health_with_export_configured_hides_the_headers(app_factory, tmp_path):
    app = app_factory(AIOPS_EXPORT_OTLP_ENDPOINT="http://user:pw@127.0.0.1:9",
                      AIOPS_EXPORT_FALLBACK_DIR=str(tmp_path), AIOPS_RECORD_REQUESTS=False,
                      AIOPS_EXPORT_OTLP_HEADERS={"authorization": "Bearer hidden-token"})
    body = app.test_client().get("/telemetry/health").get_json()
    assert body["export"] == "enabled" and body["status"] in ("healthy", "degraded", "failing")
    assert "pw" not in body["endpoint"] and "hidden-token" not in str(body)
    assert set(body["resilience_metrics"]) >= {"queued", "exported", "retried", "dropped", "fallback_bytes",
                                               "breaker_state", "breaker_trips", "last_success",
                                               "last_failure", "last_error"}
