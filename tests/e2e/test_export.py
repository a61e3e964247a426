"""Resilient OTLP export against a real receiver: a second instance of this product on loopback
(its ``POST /v1/traces``), stopped and restarted in the middle of a run.

The sender is a gunicorn demo server exporting to the receiver with small times (backoff
0.05 s -> 0.2 s, breaker open 1 s, a 20-span memory buffer, so the fallback file is used). In the
breaker test its export timeout (0.5 s) is under the official exporter's first own retry (0.8 s
or more), so every failed attempt is one of ours. The receiver records nothing of its own
(``AIOPS_RECORD_REQUESTS=0``): its span table holds exactly what arrived, and its
``aiops_spans_ingested_total`` counts every span delivered, duplicates included (the table keeps a
span id once), so "delivered == stored == what the sender stored" means each span arrived exactly
once. (A restarted gunicorn starts its counters afresh, so that is checked before the outage
and again for what arrived after it.) The test reads both SQLite files directly, so checking adds
no spans of its own.
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import requests

from tests.e2e.helpers import checkouts, running, shop_env, wait_for
from tests.e2e.server import GunicornServer

SPAN_COLUMNS = "trace_id, span_id, parent_span_id, service, endpoint, kind, start_time, duration_ms"


def spans(db: Path) -> dict[tuple[str, str], tuple]:
    if not db.exists():
        return {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        try:
            rows = conn.execute(f"SELECT {SPAN_COLUMNS} FROM spans").fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return {}
    return {(r[0], r[1]): r for r in rows}


def receiver(tmp_path: Path) -> GunicornServer:
    db = tmp_path / "receiver.db"
    env = shop_env(f"sqlite:///{db}", AIOPS_ENABLE_SIMULATION="0", AIOPS_RECORD_REQUESTS="0",
                   AIOPS_SERVICE_NAME="receiver")
    return GunicornServer(env, workers=1, threads=8, log_path=tmp_path / "receiver.log")


def sender_env(tmp_path: Path, url: str, **overrides) -> dict[str, str]:
    settings = {
        "AIOPS_EXPORT_OTLP_ENDPOINT": url, "AIOPS_EXPORT_INGESTED": "1", "AIOPS_EXPORT_OTLP_TIMEOUT": "0.5",
        "AIOPS_EXPORT_BACKOFF_INITIAL": "0.05", "AIOPS_EXPORT_BACKOFF_MAX": "0.2",
        "AIOPS_EXPORT_BREAKER_FAILURES": "5", "AIOPS_EXPORT_BREAKER_OPEN": "1",
        "AIOPS_EXPORT_BUFFER_SPANS": "20", "AIOPS_EXPORT_FALLBACK_DIR": str(tmp_path / "fallback"),
    }
    return shop_env(f"sqlite:///{tmp_path / 'sender.db'}", **{**settings, **overrides})


def ingested(server: GunicornServer) -> float:
    text = server.get("/metrics").text
    match = re.search(r"^aiops_spans_ingested_total ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def metric(server: GunicornServer, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", server.get("/metrics").text, re.M)
    return float(match.group(1)) if match else 0.0


def fallback_lines(tmp_path: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in (tmp_path / "fallback").rglob("*.jsonl"))


def otlp_json(trace: int, count: int) -> dict:
    """Spans of a service the sender only ingests (exported with AIOPS_EXPORT_INGESTED=1)."""
    now = time.time_ns()
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "billing"}}]},
        "scopeSpans": [{"spans": [
            {"traceId": f"{trace:032x}", "spanId": f"{trace * 100 + i + 1:016x}", "name": "charge",
             "kind": 2, "startTimeUnixNano": str(now + i * 1000),
             "endTimeUnixNano": str(now + i * 1000 + 5_000_000)}
            for i in range(count)]}]}]}


def all_arrived(sender_db: Path, receiver_db: Path) -> bool:
    sent = spans(sender_db)
    return bool(sent) and sent.keys() <= spans(receiver_db).keys()


def test_every_span_arrives_once_and_the_fallback_is_replayed_after_the_receiver_returns(tmp_path):
    sink = receiver(tmp_path).start()
    sender_db, sink_db = tmp_path / "sender.db", tmp_path / "receiver.db"
    # A 2 s timeout: a slow answer is not taken for a failure (and sent again) while the receiver is up.
    env = sender_env(tmp_path, sink.url, AIOPS_EXPORT_OTLP_TIMEOUT="2")
    try:
        with running(tmp_path, env, name="sender", workers=2) as server:
            assert checkouts(server.url, 20, 4) == {200: 20}
            assert server.post("/v1/traces", json=otlp_json(1, 5)).status_code == 200
            wait_for(lambda: all_arrived(sender_db, sink_db) and ingested(sink) == len(spans(sink_db)),
                     "the first spans at the receiver, once each", 60)

            sink.stop()  # the receiver goes away in the middle of the run (its counters with it)
            stored_before = len(spans(sink_db))
            assert checkouts(server.url, 40, 4) == {200: 40}
            assert server.post("/v1/traces", json=otlp_json(2, 30)).status_code == 200
            wait_for(lambda: fallback_lines(tmp_path) > 0, "spans spilled to the fallback file", 60)
            wait_for(lambda: metric(server, "aiops_export_breaker_state") == 2, "the breaker open", 60)
            down = spans(sender_db).keys() - spans(sink_db).keys()
            assert down, "spans stored while the receiver was down"

            sink.start()  # same port, same database
            wait_for(lambda: all_arrived(sender_db, sink_db), "every span at the receiver", 90)
            wait_for(lambda: fallback_lines(tmp_path) == 0, "the fallback file replayed", 30)
            sent, got = spans(sender_db), spans(sink_db)
            assert sent.keys() == got.keys()
            for key, row in sent.items():  # the same span: ids, names, kind, times as stored
                other = got[key]
                assert row[:6] == other[:6], (row, other)
                assert abs(row[6] - other[6]) < 1e-6 and abs(row[7] - other[7]) < 1e-6, (row, other)
            assert {("billing", "charge")} <= {(r[3], r[4]) for r in got.values()}  # ingested, forwarded
            assert metric(server, "aiops_export_spans_total{outcome=\"dropped\"}") == 0
            assert metric(server, "aiops_export_breaker_trips_total") >= 1
        # The sender is stopped. Delivered since the restart (counted by ingest, duplicates included)
        # == stored since the restart: nothing sent before the outage came again, nothing twice.
        got = spans(sink_db)
        assert sent.keys() <= got.keys() and ingested(sink) == len(got) - stored_before
    finally:
        sink.stop()


def observe(server: GunicornServer) -> dict:
    body = server.get("/telemetry/health").json()
    return {"status": body["status"], **body["resilience_metrics"]}


def test_the_breaker_opens_after_five_failures_and_closes_when_the_endpoint_answers(tmp_path):
    sink = receiver(tmp_path).start()
    try:
        env = sender_env(tmp_path, sink.url, AIOPS_EXPORT_BUFFER_SPANS="10000")
        with running(tmp_path, env, name="sender", workers=1) as server:
            assert checkouts(server.url, 5, 2) == {200: 5}
            wait_for(lambda: observe(server)["exported"] > 0, "a first export", 30)
            assert observe(server)["status"] == "healthy"
            response = server.post("/simulate/collector-failure", params={"seconds": 4})
            assert response.status_code == 200, response.text
            seen = []

            def opened() -> bool:
                seen.append(observe(server))  # each health request is a span to export: traffic
                return seen[-1]["breaker_state"] == "open"

            wait_for(opened, "the breaker to open", 30, every=0.05)
            first_open = seen[-1]
            assert first_open["status"] == "failing" and first_open["breaker_trips"] >= 1
            assert first_open["consecutive_failures"] >= 5
            assert "simulated collector failure" in first_open["last_error"]
            # Closed, it never had 5 consecutive failures: the 5th opened it.
            assert all(s["consecutive_failures"] < 5 for s in seen if s["breaker_state"] == "closed")
            assert {"retried", "queued", "fallback_bytes", "last_failure"} <= set(first_open)
            exported = first_open["exported"]

            def closed_again() -> bool:
                seen.append(observe(server))
                return seen[-1]["breaker_state"] == "closed" and seen[-1]["exported"] > exported

            wait_for(closed_again, "the breaker to close once the endpoint answers", 60)
            wait_for(lambda: observe(server)["status"] == "healthy", "healthy again", 30)
            last = observe(server)
            assert last["consecutive_failures"] == 0 and last["fallback_bytes"] == 0
            assert last["last_success"] > first_open["last_failure"]  # ISO times compare in order
            text = requests.get(server.url + "/metrics", timeout=10).text
            assert re.search(r"^aiops_export_breaker_trips_total [1-9]", text, re.M)
            assert re.search(r"^aiops_export_breaker_state 0\.0$", text, re.M)
    finally:
        sink.stop()
