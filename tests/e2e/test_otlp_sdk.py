"""The real OpenTelemetry SDK, in its own process, exports to a live server over loopback.

Three "services" (frontend -> orders -> db-service, see otlp_three_services.py)
send normal traffic while baselines are learned, then a fault in the leaf
service; the fault must surface as exactly one incident blaming db-service.
Detection is triggered with ``POST /aiops/analyze`` (no sleeping).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.e2e.server import GunicornServer
from tests.support import environment

pytestmark = pytest.mark.e2e

CLIENT = Path(__file__).with_name("otlp_three_services.py")
SPANS_PER_REQUEST = 5  # frontend SERVER+CLIENT, orders SERVER+CLIENT, db-service SERVER
WARMUP, FAULTY = 30, 20
LIMIT = 1024 * 1024


@pytest.fixture
def server(db_url, tmp_path):
    env = {
        "AIOPS_DATABASE_URL": db_url,
        "AIOPS_SCHEDULER": "0",
        "AIOPS_API_TOKEN": "",
        "AIOPS_FLUSH_INTERVAL": "0.1",
        "AIOPS_MIN_BASELINE_SAMPLES": "20",
        "AIOPS_DETECTION_INTERVAL": "30",
        "AIOPS_OTLP_MAX_BYTES": str(LIMIT),
    }
    with GunicornServer(env, workers=2, threads=4, log_path=tmp_path / "server.log") as s:
        yield s


def send(server: GunicornServer, count: int, fault: str, encoding: str, compression: str) -> dict:
    proc = subprocess.run(
        [sys.executable, str(CLIENT), server.url, "--requests", str(count), "--fault", fault,
         "--encoding", encoding, "--compression", compression],
        capture_output=True, text=True, timeout=120, env=environment.clean(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary == {"spans": count * SPANS_PER_REQUEST, "failed_exports": 0}
    return summary


def analyze(server: GunicornServer) -> dict:
    r = server.post("/aiops/analyze")
    assert r.status_code == 200, r.text
    return r.json()


def stored_spans(db_url: str) -> dict[str, int]:
    """Spans per service of the three-service system (the server also records its own /health)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT service, count(*) FROM spans WHERE service IN ('frontend', 'orders', 'db-service') "
                "GROUP BY service"))
            return dict(rows.all())
    finally:
        engine.dispose()


@pytest.mark.parametrize("encoding, compression, fault", [
    ("protobuf", "gzip", "slow"),
    ("protobuf", "none", "error"),
    ("json", "none", "slow"),
    ("json", "gzip", "error"),
])
def test_leaf_fault_is_one_incident_blaming_the_leaf(server, db_url, encoding, compression, fault):
    for _ in range(2):  # warm-up: two normal windows teach the baselines
        send(server, WARMUP, "none", encoding, compression)
        summary = analyze(server)
        assert summary["anomalies"] == [] and summary["incidents_opened"] == []
    assert stored_spans(db_url) == {"frontend": 2 * WARMUP * 2, "orders": 2 * WARMUP * 2,
                                    "db-service": 2 * WARMUP}

    send(server, FAULTY, fault, encoding, compression)
    summary = analyze(server)
    assert summary["spans"] >= FAULTY * SPANS_PER_REQUEST
    assert {a["service"] for a in summary["anomalies"]} >= {"db-service"}

    incidents = server.get("/aiops/incidents").json()["active_incidents"]
    assert len(incidents) == 1, json.dumps(incidents, indent=1)
    incident = incidents[0]
    assert incident["root_cause"]["service"] == "db-service"
    assert incident["root_cause"]["endpoint"] == "GET /rows"
    assert incident["root_cause_candidates"][0]["service"] == "db-service"
    expected_type = "latency" if fault == "slow" else "error"
    assert any(a["service"] == "db-service" and a["type"] == expected_type for a in incident["anomalies"])
    assert incident["trace_correlation"]["trace_id"]

    # One more faulty window updates the same incident instead of opening another.
    send(server, FAULTY, fault, encoding, compression)
    analyze(server)
    again = server.get("/aiops/incidents").json()["active_incidents"]
    assert [i["id"] for i in again] == [incident["id"]]


def test_sdk_export_survives_malformed_neighbours(server, db_url):
    """Garbage posted between SDK exports gets 4xx and changes nothing; the SDK's spans all land."""
    import gzip

    import requests
    from google.rpc import status_pb2

    url = server.url + "/v1/traces"
    protobuf = {"Content-Type": "application/x-protobuf"}
    # Over the limit, plainly (refused from Content-Length, unread) and as a gzip bomb.
    for body, headers in [(b"\0" * (2 * LIMIT), protobuf),
                          (gzip.compress(b"\0" * (16 * LIMIT)), {**protobuf, "Content-Encoding": "gzip"})]:
        r = requests.post(url, data=body, headers=headers, timeout=30)
        assert r.status_code == 413 and r.headers["Content-Type"] == "application/x-protobuf"
        assert "AIOPS_OTLP_MAX_BYTES" in status_pb2.Status.FromString(r.content).message
    bad = [
        (b"\x0a\xff\xff", {"Content-Type": "application/x-protobuf"}, 400),
        (b"{", {"Content-Type": "application/json"}, 400),
        (b"\x1f\x8b garbage", {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}, 400),
        (b"hello", {"Content-Type": "text/plain"}, 415),
        (b"", {"Content-Type": "application/x-protobuf"}, 400),
    ]
    for body, headers, code in bad:
        assert requests.post(url, data=body, headers=headers, timeout=10).status_code == code
    assert stored_spans(db_url) == {}
    send(server, 10, "none", "protobuf", "gzip")
    assert stored_spans(db_url) == {"frontend": 20, "orders": 20, "db-service": 10}
