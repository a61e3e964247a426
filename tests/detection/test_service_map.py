"""The service map's aggregation (aiops.detection.service_map): spans in, nodes and edges out."""

from __future__ import annotations

import pytest

from aiops.detection.service_map import EXTERNAL_SUFFIX, IncidentMark, build, mark, path, quantile
from telemetry.columns import KIND_CLIENT, KIND_INTERNAL, KIND_PRODUCER
from tests.support.factories import client, span


def call(parent, service: str, endpoint: str, duration_ms: float = 10.0, *, peer: str | None = None,
         client_ms: float | None = None, **kw):
    """A CLIENT span of ``parent`` and the SERVER span of ``service`` under it."""
    out = client(parent, endpoint, client_ms or duration_ms + 2, start_time=parent.start_time, **kw)
    out.peer = peer or service
    return out, span(endpoint, duration_ms, parent=out, service=service, start_time=parent.start_time, **kw)


def edges_of(graph: dict) -> dict[tuple[str, str], dict]:
    return {(e["caller"], e["callee"]): e for e in graph["edges"]}


def nodes_of(graph: dict) -> dict[str, dict]:
    return {n["id"]: n for n in graph["nodes"]}


def demo_trace(start: float, payment_ms: float = 40.0, payment_code: int = 200) -> list:
    """The demo's checkout: shop/checkout calls shop/payment and shop/inventory (CLIENT spans whose
    peer is the shop itself), and each of those calls the external gateway."""
    checkout = span("checkout", payment_ms + 30, start_time=start)
    to_pay, pay = call(checkout, "shop", "payment", payment_ms, status_code=payment_code)
    to_inv, inv = call(checkout, "shop", "inventory", 8.0)
    charge = client(pay, "charge", 5.0, start_time=start)
    charge.peer = "gateway"
    stock = client(inv, "stock", 3.0, start_time=start)
    stock.peer = "gateway"
    return [checkout, to_pay, pay, to_inv, inv, charge, stock]


def test_a_one_service_system_maps_its_endpoints_and_its_external_peer():
    spans = [s for i in range(10) for s in demo_trace(1000.0 + i)]
    graph = build(spans, seconds=10.0)

    assert graph["by"] == "endpoint"
    nodes = nodes_of(graph)
    assert set(nodes) == {"checkout", "payment", "inventory", "gateway"}
    assert nodes["payment"]["endpoint"] == "payment" and nodes["payment"]["service"] == "shop"
    assert nodes["gateway"]["external"] and not nodes["payment"]["external"]
    assert set(edges_of(graph)) == {("checkout", "payment"), ("checkout", "inventory"),
                                    ("payment", "gateway"), ("inventory", "gateway")}
    # Requests into each endpoint: its SERVER spans, not the CLIENT spans calling it.
    assert nodes["payment"]["calls"] == 10 and nodes["payment"]["calls_per_s"] == 1.0
    assert nodes["gateway"]["calls"] == 20  # the calls of both callers
    edge = edges_of(graph)[("checkout", "payment")]
    assert edge["p95_ms"] == 42.0  # the caller's view: the CLIENT spans' durations
    assert edge["traces"] == {"service": "shop", "endpoint": "payment"}
    assert edges_of(graph)[("payment", "gateway")]["traces"] == {"service": "shop", "endpoint": "payment"}


def test_services_are_the_nodes_when_there_are_several():
    spans = []
    for i in range(20):
        front = span("GET /", 50, service="frontend", start_time=1000.0 + i)
        spans += [front, *call(front, "orders", "POST /orders", 30.0, status_code=500 if i < 5 else 200)]
    graph = build(spans, seconds=20.0)

    assert graph["by"] == "service"
    nodes = nodes_of(graph)
    assert set(nodes) == {"frontend", "orders"}
    assert nodes["orders"]["endpoint"] is None
    assert nodes["orders"]["error_rate"] == 0.25
    assert nodes["orders"]["endpoints"] == [{"endpoint": "POST /orders", "calls": 20, "calls_per_s": 1.0,
                                             "error_rate": 0.25, "p95_ms": 30.0}]
    [edge] = graph["edges"]
    assert (edge["caller"], edge["callee"]) == ("frontend", "orders")
    assert (edge["calls"], edge["error_rate"]) == (20, 0.25)
    assert edge["traces"] == {"service": "orders", "endpoint": None}


def test_a_server_span_whose_parent_is_in_another_service_is_an_edge():
    """No CLIENT span between them (an instrumentation that records none): still a call."""
    spans = []
    for i in range(4):
        front = span("GET /", 50, service="frontend", start_time=1000.0 + i)
        worker = span("work", 10, service="frontend", parent=front, start_time=1000.0 + i)
        worker.kind = KIND_INTERNAL
        stock = span("GET /stock", 20.0 + i, service="stock", parent=worker, start_time=1000.0)
        spans += [front, worker, stock]
    graph = build(spans, seconds=4.0)

    assert set(edges_of(graph)) == {("frontend", "stock")}
    assert edges_of(graph)[("frontend", "stock")]["p95_ms"] == 23.0  # the SERVER spans': no client
    assert nodes_of(graph)["frontend"]["calls"] == 4  # the INTERNAL span is not a request


def test_a_producer_and_its_consumer_in_another_service_are_an_edge():
    front = span("GET /", 50, service="frontend")
    send = span("orders publish", 1, service="frontend", parent=front)
    send.kind = KIND_PRODUCER
    receive = span("orders process", 5, service="billing", parent=send)
    receive.kind = 5  # CONSUMER
    graph = build([front, send, receive], seconds=1.0)
    assert set(edges_of(graph)) == {("frontend", "billing")}


def test_an_unanswered_call_is_an_external_peer_unless_its_peer_reached_a_service():
    spans = []
    for i in range(10):
        front = span("GET /", 50, service="frontend", start_time=1000.0 + i)
        to_orders, orders = call(front, "orders", "POST /orders", peer="orders:8080")
        db = client(orders, "SELECT", 2.0, start_time=1000.0 + i)
        db.peer = "postgres.internal"
        spans += [front, to_orders, db] + ([orders] if i < 8 else [])  # two callee spans never arrived
    graph = build(spans, seconds=10.0)

    nodes = nodes_of(graph)
    assert set(nodes) == {"frontend", "orders", "postgres.internal"}
    assert nodes["postgres.internal"]["external"] and nodes["postgres.internal"]["calls"] == 10
    assert edges_of(graph)[("frontend", "orders")]["calls"] == 10  # not an external "orders:8080"
    assert ("orders", "postgres.internal") in edges_of(graph)


def test_an_external_peer_named_like_a_service_gets_its_own_node():
    spans = []
    front = span("GET /", 50, service="frontend")
    to_orders, orders = call(front, "orders", "POST /orders")
    other = span("GET /", 50, service="orders")
    ext = client(other, "GET", 2.0)
    ext.peer = "frontend"  # an uninstrumented host that happens to share a service's name
    ext.service = "batch"
    ext.parent_span_id = None
    spans += [front, to_orders, orders, other, ext]
    graph = build(spans, seconds=1.0)
    assert "frontend" + EXTERNAL_SUFFIX in nodes_of(graph)
    assert ("batch", "frontend" + EXTERNAL_SUFFIX) in edges_of(graph)


def test_ignored_services_and_calls_inside_one_service_are_left_out():
    spans = []
    front = span("GET /", 50, service="frontend")
    inner, inner_server = call(front, "frontend", "GET /internal")  # a service calling itself
    poll = span("GET /aiops/metrics", 1, service="aiops")
    other = span("GET /x", 5, service="orders")
    spans += [front, inner, inner_server, poll, other]
    graph = build(spans, seconds=1.0, ignore_services=("aiops",))
    assert set(nodes_of(graph)) == {"frontend", "orders"}
    assert graph["edges"] == []
    assert nodes_of(graph)["frontend"]["calls"] == 2  # its own call is still a request it served


def test_weights_scale_rates_and_shares():
    ok = [span("GET /", 10, service="a") for _ in range(3)]
    bad = span("GET /", 1000, service="a", status_code=500)
    other = span("GET /", 10, service="b")
    graph = build([*ok, bad, other], seconds=10.0, weights=[1.0, 1.0, 1.0, 3.0, 1.0])
    node = nodes_of(graph)["a"]
    assert (node["calls"], node["calls_per_s"], node["error_rate"]) == (6, 0.6, 0.5)
    assert node["p95_ms"] == 1000.0


@pytest.mark.parametrize(("values", "expected"), [
    ([(float(v), 1.0) for v in range(1, 101)], 95.0),
    ([(float(v), 1.0) for v in range(1, 21)], 19.0),
    ([(5.0, 1.0)], 5.0),
    ([(1.0, 9.0), (100.0, 1.0)], 100.0),
    ([(1.0, 99.0), (100.0, 1.0)], 1.0),
])
def test_p95_is_the_weighted_nearest_rank(values, expected):
    assert quantile(values, 0.95) == expected


def test_statuses_from_errors_and_active_incidents():
    spans = []
    for i in range(10):
        front = span("GET /", 50, service="frontend", start_time=1000.0 + i)
        spans += [front, *call(front, "orders", "POST /orders", status_code=500 if i < 3 else 200)]
        spans += call(front, "payments", "POST /pay")
    spans.append(span("GET /", service="quiet"))
    graph = build(spans, seconds=10.0)
    nodes_of(graph)["quiet"]["calls"] = 0  # as a node with no requests in the range would be
    incidents = [IncidentMark("INC-1", "payments", "POST /pay", frozenset({("frontend", "GET /")}))]
    mark(graph, incidents, error_threshold=0.2)

    nodes = nodes_of(graph)
    assert {k: n["status"] for k, n in nodes.items()} == {
        "frontend": "degraded", "orders": "degraded", "payments": "incident", "quiet": "idle"}
    assert nodes["payments"]["root"] and nodes["payments"]["incidents"] == ["INC-1"]
    assert not nodes["frontend"]["root"] and nodes["frontend"]["incidents"] == ["INC-1"]
    assert nodes["orders"]["incidents"] == []  # degraded by its own errors (30 % > 20 %)


def test_an_endpoint_map_marks_the_root_endpoint_only():
    spans = [s for i in range(5) for s in demo_trace(1000.0 + i)]
    graph = mark(build(spans, seconds=5.0),
                 [IncidentMark("INC-2", "shop", "payment", frozenset({("shop", "checkout")}))], 0.5)
    statuses = {n["id"]: n["status"] for n in graph["nodes"]}
    assert statuses == {"checkout": "degraded", "payment": "incident", "inventory": "ok", "gateway": "ok"}


def test_an_external_peer_blamed_by_rca_is_its_root():
    spans = demo_trace(1000.0)
    graph = mark(build(spans, seconds=1.0), [IncidentMark("INC-3", "gateway", "charge", frozenset())], 0.5)
    assert nodes_of(graph)["gateway"]["status"] == "incident"


def test_no_spans_no_nodes():
    assert build([], seconds=900.0) == {"by": "service", "nodes": [], "edges": []}


def test_a_client_span_without_peer_and_callee_is_no_edge():
    front = span("GET /", 50, service="frontend")
    anon = client(front, "GET", 2.0)
    anon.peer = None
    other = span("GET /", service="orders")
    graph = build([front, anon, other], seconds=1.0)
    assert graph["edges"] == [] and anon.kind == KIND_CLIENT


def test_the_path_of_an_incident_on_an_endpoint_map():
    """payment is the root, checkout its symptom: the call checkout -> payment is the path; the
    gateway payment calls and inventory are not on it."""
    graph = build([s for i in range(5) for s in demo_trace(1000.0 + i)], seconds=5.0)
    hops = [{"service": "shop", "endpoint": "payment", "signal": "self-time"},
            {"service": "shop", "endpoint": "checkout", "signal": "latency"}, "not a hop", {"service": 3}]
    assert path(graph, "INC-1", ("shop", "payment"), hops) == {
        "incident": "INC-1", "root": "payment", "nodes": ["payment", "checkout"],
        "edges": [["checkout", "payment"]]}
    # An external peer on the path is its node; a whole-service root is every endpoint of it.
    hops = [{"service": "gateway", "endpoint": "charge"}]
    assert path(graph, "INC-2", ("shop", "payment"), hops)["edges"] == [["payment", "gateway"]]
    # The affected endpoints no hop named are on it too (the RCA's symptoms).
    got = path(graph, "INC-6", ("shop", "payment"), [], [("shop", "checkout")])
    assert got["edges"] == [["checkout", "payment"]]
    whole = path(graph, "INC-3", ("shop", ""), None)
    assert whole["root"] == "checkout" and set(whole["nodes"]) == {"checkout", "payment", "inventory"}


def test_the_path_of_an_incident_on_a_service_map_and_outside_the_range():
    spans = []
    for i in range(5):
        front = span("GET /", 50, service="frontend", start_time=1000.0 + i)
        to_orders, orders = call(front, "orders", "POST /orders")
        spans += [front, to_orders, orders, *call(orders, "payments", "POST /pay")]
        spans += call(front, "ads", "GET /ad")
    graph = build(spans, seconds=5.0)
    hops = [{"service": "orders", "endpoint": "POST /orders"}, {"service": "frontend", "endpoint": "GET /"}]
    got = path(graph, "INC-4", ("payments", "POST /pay"), hops)
    assert got["root"] == "payments" and got["nodes"] == ["payments", "orders", "frontend"]
    assert got["edges"] == [["frontend", "orders"], ["orders", "payments"]]  # not frontend -> ads
    gone = path(graph, "INC-5", ("billing", "x"), [])
    assert gone == {"incident": "INC-5", "root": None, "nodes": [], "edges": []}
