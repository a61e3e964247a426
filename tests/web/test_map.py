"""``GET /aiops/map`` and the ``/map`` page over a real store (SQLite and PostgreSQL): nodes and edges
from stored spans, statuses from active incidents, the ETag that changes per cycle, bad ranges, and
hostile names escaped."""

from __future__ import annotations

import json
import re
import time
from html import unescape

import pytest
from markupsafe import escape

from telemetry import span_sample
from telemetry.columns import KIND_CLIENT, KIND_SERVER
from tests.conftest import sqlite_only
from tests.support.factories import add_incident, insert_spans, span
from tests.support.factories import client as client_span
from tests.support.hostile_pages import XSS_SERVICE, assert_inert

SCRIPTS = ("/static/live.js", "/static/vendor/cytoscape/cytoscape.min.js",
           "/static/vendor/cytoscape-dagre/cytoscape-dagre.min.js", "/static/map.js")
DATA = re.compile(r'<script type="application/json" id="map-data">(.*?)</script>', re.S)


def inert_page(html: str):
    """``assert_inert`` of the page but for its own scripts (the vendored files, map.js) and its data
    block (JSON, which the browser never runs)."""
    for src in SCRIPTS:
        tag = f'<script src="{src}" defer></script>'
        assert html.count(tag) == 1, src
        html = html.replace(tag, "")
    return assert_inert(DATA.sub("", html))


def traffic(now: float, count: int = 10, callee: str = "orders") -> list:
    """frontend -> ``callee`` (CLIENT + SERVER; a fifth fail) -> an uninstrumented database."""
    spans = []
    for i in range(count):
        front = span("GET /", 40, service="frontend", start_time=now - 60 + i)
        to_orders = client_span(front, "POST /orders", 25, start_time=front.start_time,
                           status_code=500 if i % 5 == 0 else 200)
        to_orders.peer = callee
        orders = span("POST /orders", 20, service=callee, parent=to_orders, start_time=front.start_time,
                      status_code=500 if i % 5 == 0 else 200)
        query = client_span(orders, "SELECT orders", 3, start_time=front.start_time)
        query.peer = "postgres"
        spans += [front, to_orders, orders, query]
    return spans


def test_the_map_of_stored_spans(app, client):
    now = time.time()
    insert_spans(app, traffic(now))
    insert_spans(app, [span("GET /aiops/metrics", service="aiops", start_time=now - 30)])  # left out
    response = client.get("/aiops/map")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["by"], body["sampled"], body["spans_read"]) == ("service", False, 40)
    nodes = {n["id"]: n for n in body["nodes"]}
    assert set(nodes) == {"frontend", "orders", "postgres"}
    assert nodes["postgres"]["external"] and nodes["orders"]["status"] == "ok"
    assert nodes["orders"]["error_rate"] == 0.2 and nodes["orders"]["calls"] == 10
    assert nodes["orders"]["calls_per_s"] == pytest.approx(10 / 900, abs=1e-3)  # over the default 15 min
    edges = {(e["caller"], e["callee"]): e for e in body["edges"]}
    assert set(edges) == {("frontend", "orders"), ("orders", "postgres")}
    assert edges[("frontend", "orders")]["p95_ms"] == 25.0
    for node in body["nodes"]:
        assert {"service", "calls_per_s", "error_rate", "p95_ms", "status"} <= set(node)
    for edge in body["edges"]:
        assert {"caller", "callee", "calls_per_s", "error_rate", "p95_ms"} <= set(edge)


def test_a_range_holds_only_its_spans(app, client):
    now = time.time()
    insert_spans(app, traffic(now - 3 * 3600, callee="old-orders") + traffic(now))
    assert {n["id"] for n in client.get("/aiops/map").get_json()["nodes"]} == {"frontend", "orders",
                                                                               "postgres"}
    week = {n["id"] for n in client.get("/aiops/map?since=7d").get_json()["nodes"]}
    assert week == {"frontend", "orders", "old-orders", "postgres"}
    old = client.get("/aiops/map", query_string={"since": "4h", "until": "2h"}).get_json()
    assert {n["id"] for n in old["nodes"]} == {"frontend", "old-orders", "postgres"}


def test_the_root_cause_of_an_active_incident_is_marked(app, client):
    insert_spans(app, traffic(time.time()))
    add_incident(app, "INC-9", root_service="orders", root_endpoint="POST /orders", affected=[],
                 propagation=[{"service": "frontend", "endpoint": "GET /", "signal": "latency"}])
    add_incident(app, "INC-8", status="resolved", root_service="frontend", root_endpoint="GET /")
    nodes = {n["id"]: n for n in client.get("/aiops/map").get_json()["nodes"]}
    assert (nodes["orders"]["status"], nodes["orders"]["root"], nodes["orders"]["incidents"]) == (
        "incident", True, ["INC-9"])
    assert (nodes["frontend"]["status"], nodes["frontend"]["root"]) == ("degraded", False)
    assert nodes["postgres"]["status"] == "ok"


def test_the_etag_holds_until_a_cycle_or_an_incident_changes(app, client):
    insert_spans(app, traffic(time.time()))
    first = client.get("/aiops/map?since=1h")
    tag = first.headers["ETag"]
    again = client.get("/aiops/map?since=1h", headers={"If-None-Match": tag})
    assert (again.status_code, again.data, again.headers["ETag"]) == (304, b"", tag)
    assert client.get("/aiops/map?since=2h", headers={"If-None-Match": tag}).status_code == 200  # other range

    cycle = client.post("/aiops/analyze")
    assert cycle.status_code == 200, cycle.get_json()
    after_cycle = client.get("/aiops/map?since=1h", headers={"If-None-Match": tag})
    assert after_cycle.status_code == 200 and after_cycle.headers["ETag"] != tag
    tag = after_cycle.headers["ETag"]
    add_incident(app, "INC-7", root_service="orders")
    assert client.get("/aiops/map?since=1h", headers={"If-None-Match": tag}).status_code == 200


@sqlite_only
@pytest.mark.parametrize(("query", "expected"), [
    ({"since": "yesterday"}, "'since' must be a duration back from now (15m, 6h, 7d), epoch seconds or an "
                             "ISO 8601 time like 2026-01-20T10:30:00Z, not 'yesterday'"),
    ({"until": "5x"}, "'until' must be a duration back from now"),
    ({"since": "1h", "until": "2h"}, "'since' must not be after 'until'"),
    ({"since": "2026-13-01T00:00:00Z"}, "'since' must be a duration back from now"),
    ({"since": "15m" + " " * 70}, "'since' must be a duration back from now"),
])
def test_a_bad_range_is_a_400_that_says_what_it_expected(client, query, expected):
    for path in ("/aiops/map", "/map"):
        response = client.get(path, query_string=query)
        assert response.status_code == 400, path
        if path == "/aiops/map":
            body = response.get_json()
            assert body["error"] == "Bad Request" and body["message"].startswith(expected), body
        else:
            assert response.mimetype == "text/html"
            assert str(escape(expected)) in response.get_data(as_text=True)
    tagged = client.get("/aiops/map", query_string=query, headers={"If-None-Match": "*"})
    assert tagged.status_code == 400  # checked before the ETag


def test_the_pages_first_poll_is_a_304(app, client):
    """The page hands live.js the ETag it was rendered under: its polls cost no span read until a cycle."""
    insert_spans(app, traffic(time.time()))
    page = client.get("/map?since=1h")
    html = page.get_data(as_text=True)
    tag = re.search(r'data-live-etag="([0-9a-f]+)"', html)[1]
    assert page.headers["ETag"] == f'"{tag}"' and page.headers["Cache-Control"] == "no-store"
    src = unescape(re.search(r'data-src="([^"]+)"', html)[1])
    assert src == "/aiops/map?since=1h&until="  # what the drawing asks for, when it fetches at all
    assert client.get("/map?since=1h", headers={"If-None-Match": f'"{tag}"'}).status_code == 304
    assert client.get("/map?since=2h", headers={"If-None-Match": f'"{tag}"'}).status_code == 200
    assert client.post("/aiops/analyze").status_code == 200
    assert client.get("/map?since=1h", headers={"If-None-Match": f'"{tag}"'}).status_code == 200


def test_the_page_shows_the_map_as_tables_and_as_data(app, client):
    insert_spans(app, traffic(time.time()))
    response = client.get("/map")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    doc = inert_page(html)
    assert doc.texts_of_class("node-name") == ["frontend", "orders", "postgres"]
    assert [f"{a} → {b}" for a, b in zip(doc.texts_of_class("edge-caller"), doc.texts_of_class("edge-callee"),
                                         strict=True)] == ["frontend → orders", "orders → postgres"]
    assert "/services/orders/endpoints/POST%20%2Forders" in html
    assert "/traces?service=orders&amp;since=15m" in html
    data = json.loads(DATA.search(html)[1])
    assert [n["id"] for n in data["nodes"]] == ["frontend", "orders", "postgres"]
    assert '<noscript><meta http-equiv="refresh"' in html
    assert 'href="/map"' in client.get("/").get_data(as_text=True)  # in the nav


@sqlite_only
def test_hostile_names_are_escaped_on_the_page(app, client):
    now = time.time()
    insert_spans(app, traffic(now, callee=XSS_SERVICE))
    html = client.get("/map").get_data(as_text=True)
    doc = inert_page(html)
    assert XSS_SERVICE in doc.texts_of_class("node-name")
    assert XSS_SERVICE not in html  # only escaped: in the tables as entities, in the data as \u003c
    block = DATA.search(html)[1]
    assert "<" not in block and XSS_SERVICE in {n["id"] for n in json.loads(block)["nodes"]}


@sqlite_only
def test_a_large_range_is_read_as_a_bounded_weighted_sample(app, monkeypatch):
    now = time.time()
    insert_spans(app, [span("GET /", 10, service="a" if i % 2 else "b", start_time=now - 600 + i * 0.5)
                       for i in range(1200)])
    with app.app_context():
        whole = span_sample.spans_between(now - 600, now, limit=10_000)
        part = span_sample.spans_between(now - 600, now, limit=120, count=6)
    assert (len(whole.spans), whole.sampled, set(whole.weights)) == (1200, False, {1.0})
    assert part.sampled and len(part.spans) == 120
    assert sum(part.weights) == pytest.approx(1200, rel=0.05)  # each slice's rows stand for the whole slice


@sqlite_only
def test_a_burst_in_a_long_range_is_not_extrapolated_over_its_slice(app):
    """A week's range whose spans all came in the last ten minutes: the slices cut those ten minutes
    (the whole budget is read), and the weights stand for those spans, not for a week at their rate."""
    now = time.time()
    insert_spans(app, [span("GET /", 10, service="a", start_time=now - 600 + i * 0.25) for i in range(2000)])
    with app.app_context():
        part = span_sample.spans_between(now - 7 * 86_400, now, limit=600, count=6)
    assert part.sampled and len(part.spans) == 600
    assert sum(part.weights) == pytest.approx(2000, rel=0.05)


def test_a_database_call_over_otlp_is_an_external_node(app, client):
    """OTLP in (``POST /v1/traces``), map out: a CLIENT span with ``db.system`` and no instrumented
    callee is the database's external node, named by system, database and host."""
    from tests.support.factories import RECENT_NS, make_request, make_span
    from tests.support.otlp_http import PB, encoded, post

    start = int(time.time() - 60) * 1_000_000_000
    assert start > RECENT_NS
    server = make_span(1, name="GET /orders", kind=KIND_SERVER, start_ns=start, dur_ms=30)
    query = make_span(2, parent="0000000000000001", name="SELECT orders", kind=KIND_CLIENT, start_ns=start,
                      dur_ms=8, attrs={"db.system": "postgresql", "db.name": "orders",
                                       "server.address": "db.internal"})
    cache = make_span(3, parent="0000000000000001", name="GET", kind=KIND_CLIENT, start_ns=start, dur_ms=1,
                      attrs={"db.system": "redis"})
    front = make_span(4, trace="1" * 32, name="GET /", kind=KIND_SERVER, start_ns=start, dur_ms=3)
    request = make_request({"orders": [server, query, cache], "frontend": [front]})
    assert post(client, encoded(request, PB), PB).status_code == 200
    body = client.get("/aiops/map").get_json()
    nodes = {n["id"]: n for n in body["nodes"]}
    assert nodes["postgresql:orders@db.internal"]["external"] and nodes["redis"]["external"]
    assert {(e["caller"], e["callee"]) for e in body["edges"]} == {
        ("orders", "postgresql:orders@db.internal"), ("orders", "redis")}
