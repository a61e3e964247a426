"""The product attacked from outside, one test per defect of the security review (issue 10).

Each test talks to a real gunicorn (or ``python app.py``) over loopback the
way the review did, and each failed on the code before the fix.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.e2e import helpers as h
from tests.e2e.server import ROOT, free_port
from tests.support import databases, environment
from tests.support.factories import empty_spans, failing_requests, make_request, make_span

pytestmark = pytest.mark.e2e

TOKEN = "e2e-api-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def exposed(tmp_path_factory):
    """A demo server with the API token set, as the review ran it."""
    tmp = tmp_path_factory.mktemp("exposed")
    env = h.shop_env(h.sqlite_url(tmp), AIOPS_API_TOKEN=TOKEN)
    with h.running(tmp, env, workers=1) as server:
        server.db_path = tmp / "aiops.db"
        server.log = tmp / "server.log"
        yield server


class Victim:
    """Another service on loopback that the demo must never be made to call (SSRF target)."""

    def __init__(self):
        self.hits: list[str] = []
        victim = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                victim.hits.append(f"{self.command} {self.path}")
                body = b'{"secret": "victim-internal-data"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def victim():
    v = Victim()
    try:
        yield v
    finally:
        v.close()


# -- 1. Unauthenticated ingest drives the whole alerting chain ----------------------------


def spans_of(server, service: str) -> int:
    with sqlite3.connect(server.db_path) as conn:
        return conn.execute("SELECT count(*) FROM spans WHERE service = ?", (service,)).fetchone()[0]


def otlp_post(server, body: bytes, token: str | None = TOKEN, **headers) -> requests.Response:
    headers = {"Content-Type": "application/x-protobuf", **headers}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(server.url + "/v1/traces", data=body, headers=headers, timeout=60)


def test_ingest_needs_the_token(exposed):
    body = failing_requests("nocreds", 3).SerializeToString()
    assert otlp_post(exposed, body, token=None).status_code == 401
    assert otlp_post(exposed, body, token="guess").status_code == 401
    assert spans_of(exposed, "nocreds") == 0
    assert otlp_post(exposed, body).status_code == 200
    assert spans_of(exposed, "nocreds") == 15


def test_ingest_refuses_the_products_own_service(exposed):
    before = spans_of(exposed, "shop")
    r = otlp_post(exposed, failing_requests("shop", 2, names=("payment",)).SerializeToString())
    assert r.status_code == 400 and "own" in r.text
    assert spans_of(exposed, "shop") == before


def test_a_forged_flood_opens_a_bounded_number_of_incidents(exposed):
    assert otlp_post(exposed, failing_requests("flood", 60).SerializeToString()).status_code == 200
    summary = exposed.post("/aiops/analyze", headers=AUTH, timeout=60).json()
    assert len(summary["incidents_opened"]) <= 11, summary["incidents_opened"]
    assert summary["groups_merged_into_storm"] >= 49
    active = exposed.get("/aiops/incidents").json()["active_incidents"]
    assert sum(i["root_cause"]["endpoint"] == "incident storm" for i in active) == 1


# -- 4. Decoding cost bounded by items ----------------------------------------------------


def _worker_peak_rss_kb(server) -> int:
    """Peak resident memory of the (single) gunicorn worker."""
    master = server.proc.pid
    children = open(f"/proc/{master}/task/{master}/children").read().split()
    assert len(children) == 1, children
    for line in open(f"/proc/{children[0]}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_small_gzip_of_millions_of_spans_costs_little(exposed):
    bomb = gzip.compress(empty_spans(4_190_000), compresslevel=9)
    assert len(bomb) < 16 * 1024
    before = _worker_peak_rss_kb(exposed)
    results: list[int] = []

    def one():
        results.append(otlp_post(exposed, bomb, **{"Content-Encoding": "gzip"}).status_code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [413] * 8
    grown_mb = (_worker_peak_rss_kb(exposed) - before) / 1024
    assert grown_mb < 250, f"eight decoding bombs grew the worker by {grown_mb:.0f} MB"
    assert exposed.get("/health").status_code == 200


# -- 7. Timestamps without sanity bounds --------------------------------------------------


def test_spans_from_1970_to_2554_are_rejected(exposed):
    from opentelemetry.proto.trace.v1 import trace_pb2

    ancient = make_span(1, trace="ab" * 16, name="checkout", start_ns=1, dur_ms=584 * 365 * 86400 * 1e3,
                        kind=trace_pb2.Span.SPAN_KIND_SERVER)
    r = otlp_post(exposed, make_request({"timewarp": [ancient] * 6}).SerializeToString())
    assert r.status_code == 400 and "AIOPS_OTLP_MAX_AGE" in r.text
    assert spans_of(exposed, "timewarp") == 0
    exposed.post("/aiops/analyze", headers=AUTH, timeout=60)
    everything = exposed.get("/aiops/incidents").json()
    assert not [i for i in everything["active_incidents"] if i["root_cause"]["service"] == "timewarp"]


# -- 8. One bad string loses the whole batch ----------------------------------------------


def test_one_bad_string_does_not_lose_the_batch(exposed):
    now = time.time_ns()
    spans = [make_span(1, trace="cd" * 16, name="AAAAok", start_ns=now),
             make_span(2, trace="cd" * 16, name="BBBBok", start_ns=now)]
    body = make_request({"badstrings": spans}).SerializeToString().replace(b"AAAAok", b"AA\xff\xfeok")
    assert otlp_post(exposed, body).status_code == 200
    assert spans_of(exposed, "badstrings") == 2


# -- 2. SSRF through the Host header ------------------------------------------------------


def test_checkout_never_calls_the_host_the_request_names(exposed):
    with victim() as v:
        for host in (f"127.0.0.1:{v.port}", f"localhost:{v.port}"):
            r = requests.post(exposed.url + "/checkout", json={"amount": 1}, headers={"Host": host},
                              timeout=30)
            assert "victim-internal-data" not in r.text
            assert r.status_code == 200, r.text  # it called itself, as it should
        assert v.hits == []


def test_demo_routes_exist_only_with_the_demo_on(tmp_path):
    env = h.shop_env(h.sqlite_url(tmp_path), AIOPS_ENABLE_SIMULATION="0")
    with h.running(tmp_path, env, workers=1) as server:
        for method, path in (("POST", "/checkout"), ("POST", "/payment"), ("GET", "/inventory"),
                             ("POST", "/simulate/clear")):
            assert requests.request(method, server.url + path, timeout=10).status_code == 404, path
        health = server.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"


# -- 3. No request body limit -------------------------------------------------------------


def test_a_large_body_is_refused_not_echoed(exposed):
    big = json.dumps({"amount": "x" * (5 * 1024 * 1024)})
    r = requests.post(exposed.url + "/payment", data=big, headers={"Content-Type": "application/json"},
                      timeout=60)
    assert r.status_code == 413
    assert len(r.content) < 10_000


# -- 5. DNS rebinding, headers, protected reads -------------------------------------------


def test_a_rebound_host_name_is_refused(exposed):
    evil = {"Host": "attacker.example", "Origin": "http://attacker.example"}
    for method, path in (("GET", "/aiops/incidents"), ("GET", "/"), ("POST", "/simulate/clear"),
                         ("POST", "/aiops/incidents/INC-1-1/acknowledge")):
        r = requests.request(method, exposed.url + path, headers={**evil, **AUTH}, timeout=10)
        assert r.status_code == 400, (method, path, r.status_code)
    assert exposed.get("/aiops/incidents").status_code == 200


def test_pages_carry_security_headers(exposed):
    for path in ("/", "/aiops/incidents", "/health"):
        headers = exposed.get(path).headers
        assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", ""), path
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers.get("X-Content-Type-Options") == "nosniff"
        assert headers.get("X-Frame-Options") == "DENY"
        assert headers.get("Referrer-Policy")


def test_reads_can_be_protected_by_the_token(tmp_path):
    env = h.shop_env(h.sqlite_url(tmp_path), AIOPS_API_TOKEN=TOKEN, AIOPS_PROTECT_READS="1")
    with h.running(tmp_path, env, workers=1) as server:
        for path in ("/aiops/incidents", "/aiops/metrics", "/"):
            assert server.get(path).status_code == 401, path
            assert server.get(path, headers=AUTH).status_code == 200, path
        assert server.get("/health").status_code == 200
        assert server.post("/checkout", json={"amount": 1}).status_code == 200  # the demo itself still runs


# -- 6. 500 responses reveal internals ----------------------------------------------------


def test_a_500_carries_a_request_id_and_no_internals(tmp_path):
    env = h.shop_env(h.sqlite_url(tmp_path))
    with h.running(tmp_path, env, workers=1) as server:
        with sqlite3.connect(tmp_path / "aiops.db") as conn:
            conn.execute("DROP TABLE baselines")
        r = server.get("/aiops/metrics")
        assert r.status_code == 500
        for leak in ("SELECT", "baselines", "OperationalError", "sqlite", str(tmp_path)):
            assert leak not in r.text, leak
        rid = r.json()["request_id"]
        assert r.headers["X-Request-Id"] == rid
        server.stop()
        log = (tmp_path / "server.log").read_text()
        assert rid in log and "no such table: baselines" in log


def _pg_url_with_password() -> str:
    if not databases.postgres_available():
        if environment.flag("REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL is required (AIOPS_TEST_REQUIRE_POSTGRES=1) but not reachable")
        pytest.skip("PostgreSQL not reachable")
    url = databases.create_postgres_database()
    return url.replace("postgres@", "postgres:hunter2-db-password@", 1)


def test_python_app_py_does_not_print_the_database_password():
    url = _pg_url_with_password()
    env = environment.clean(AIOPS_DATABASE_URL=url, PORT=free_port(), PYTHONUNBUFFERED="1",
                            AIOPS_NOTIFICATIONS="0")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "AIOps demo on" in line:
                break
        out = "".join(lines)
        assert "AIOps demo on" in out, out
        assert "hunter2-db-password" not in out
        assert "postgres:***@" in out
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        databases.drop_postgres_database(url)
