"""Running TraceQL over one trace's span rows: fields, comparisons, spansets."""

from __future__ import annotations

import pytest

from telemetry.columns import KIND_CLIENT, KIND_INTERNAL
from telemetry.traceql import fields_of, matching_spans, parse, required, trace_facts
from telemetry.traceql.evaluate import route_of
from telemetry.traceql.nodes import Field
from tests.support.factories import client, span


def _trace():
    """checkout (shop, 300 ms) -> CLIENT call to payment -> payment (payments, 250 ms, 503, failed)."""
    root = span("checkout", 300.0, start_time=1000.0)
    root.method = "POST"
    call = client(root, "payment", 260.0, start_time=1000.01, status_code=503)
    call.peer = "payments"
    payment = span("POST /payment", 250.0, parent=call, service="payments", status_code=503,
                   exception_type="TimeoutError", exception_message="db slow", start_time=1000.02)
    payment.method = "POST"
    work = span("charge", 5.0, parent=payment, service="payments", status_code=None, start_time=1000.03)
    work.kind, work.method = KIND_INTERNAL, None
    return [root, call, payment, work]


def _names(text: str, spans=None) -> list[str]:
    spans = spans if spans is not None else _trace()
    return [f"{s.service}:{s.endpoint}" for s in matching_spans(parse(text), spans)]


@pytest.mark.parametrize("text, expected", [
    ("{}", ["shop:checkout", "shop:payment", "payments:POST /payment", "payments:charge"]),
    ("{ status = error }", ["shop:payment", "payments:POST /payment"]),
    ("{ status != error }", ["shop:checkout", "payments:charge"]),
    ("{ status = ok }", ["shop:checkout", "payments:charge"]),  # the store keeps failed / not failed
    ("{ status = unset }", ["shop:checkout", "payments:charge"]),
    ("{ status != ok }", ["shop:payment", "payments:POST /payment"]),
    ('{ resource.service.name = "payments" }', ["payments:POST /payment", "payments:charge"]),
    ('{ .service.name != "payments" }', ["shop:checkout", "shop:payment"]),
    ('{ name = "checkout" }', ["shop:checkout"]),
    ("{ kind = client }", ["shop:payment"]),
    ("{ kind = internal }", ["payments:charge"]),
    ("{ kind != server }", ["shop:payment", "payments:charge"]),
    ("{ duration > 255ms }", ["shop:checkout", "shop:payment"]),
    ("{ duration >= 250ms && duration < 0.26s }", ["payments:POST /payment"]),
    ("{ span.http.status_code >= 500 }", ["shop:payment", "payments:POST /payment"]),
    ("{ span.http.response.status_code = 200 }", ["shop:checkout"]),
    ('{ span.http.status_code = "200" }', []),  # a number is not a string
    ('{ span.http.request.method = "POST" }', ["shop:checkout", "payments:POST /payment"]),
    ('{ span.http.route = "/checkout" }', ["shop:checkout"]),
    ('{ span.http.route = "/payment" }', ["payments:POST /payment"]),
    ('{ span.http.route =~ "/pay.*" }', ["payments:POST /payment"]),
    ('{ span.http.route =~ "pay" }', []),  # anchored at both ends
    ('{ span.http.route !~ "/pay.*" }', ["shop:checkout"]),  # a span without a route never compares
    ('{ span.peer.service = "payments" }', ["shop:payment"]),
    ('{ event.exception.type = "TimeoutError" }', ["payments:POST /payment"]),
    ('{ event.exception.message =~ "db.*" }', ["payments:POST /payment"]),
    ("{ span.http.route = nil }", ["shop:payment", "payments:charge"]),
    ("{ span.http.route != nil }", ["shop:checkout", "payments:POST /payment"]),
    ('{ span.unknown = nil }',
     ["shop:checkout", "shop:payment", "payments:POST /payment", "payments:charge"]),
    ('{ span.unknown != "x" }', []),  # a missing attribute compares with nothing
    ('{ span.unknown = true }', []),
    ('{ resource.http.method = "POST" }', []),  # method is a span attribute, not the resource's
    ('{ trace:rootService = "shop" && kind = internal }', ["payments:charge"]),
    ('{ trace:rootName = "checkout" && status = error && kind = server }', ["payments:POST /payment"]),
    ("{ trace:duration > 305ms && kind = internal }", []),
    ("{ trace:duration >= 299ms && kind = internal }", ["payments:charge"]),
    ('{ status = error && (kind = client || span.http.route = "/payment") }',
     ["shop:payment", "payments:POST /payment"]),
])
def test_span_filters(text, expected):
    assert _names(text) == expected


def test_ids_are_intrinsics():
    spans = _trace()
    root = spans[0]
    assert _names(f'{{ span:id = "{root.span_id}" }}', spans) == ["shop:checkout"]
    assert _names(f'{{ span:parentID = "{root.span_id}" }}', spans) == ["shop:payment"]
    assert len(_names(f'{{ trace:id = "{root.trace_id}" }}', spans)) == 4


def test_spanset_and_needs_both_sides_and_returns_both():
    assert _names('{ kind = client } && { name = "charge" }') == ["shop:payment", "payments:charge"]
    assert _names('{ kind = client } && { name = "nothing" }') == []
    assert _names('{ name = "nothing" } && { kind = client }') == []


def test_spanset_or_is_a_union_without_repeats():
    assert _names('{ kind = client } || { status = error }') == ["shop:payment", "payments:POST /payment"]
    assert _names('{ name = "nothing" } || { kind = internal }') == ["payments:charge"]


def test_no_spans_match_nothing():
    assert matching_spans(parse("{}"), []) == []


def test_trace_facts_find_the_root_and_the_whole_duration():
    facts = trace_facts(_trace())
    assert facts.root.endpoint == "checkout" and facts.start_time == 1000.0
    assert facts.duration_ms == pytest.approx(300.0)
    orphan = _trace()[1:]  # the root has not arrived
    facts = trace_facts(orphan)
    assert facts.root is None and facts.duration_ms == pytest.approx(1000.27e3 - 1000.01e3)
    assert _names('{ trace:rootService = "shop" }', orphan) == []


@pytest.mark.parametrize("endpoint, kind, method, route", [
    ("checkout", None, "POST", "/checkout"),  # the recorders: the route without its slash
    ("GET /users/{id}", None, "GET", "/users/{id}"),  # OTLP SERVER spans with http.route
    ("/users/{id}", None, None, "/users/{id}"),
    ("GET", None, None, None),  # named after the bare method: no route known
    ("checkout", KIND_CLIENT, "POST", None),
])
def test_route_of(endpoint, kind, method, route):
    s = span(endpoint)
    s.method = method
    if kind is not None:
        s.kind = kind
    assert route_of(s) == route


def test_fields_of_lists_each_compared_field_once_in_order():
    query = parse('{ status = error && resource.service.name = "a" } || { status = ok && duration > 1s }')
    assert fields_of(query) == [Field("intrinsic", "status"), Field("resource", "service.name"),
                                Field("intrinsic", "duration")]
    assert fields_of(parse("{}")) == []


def test_required_terms_are_the_top_level_ands_of_the_first_spanset():
    assert [str(t.field) for t in required(parse('{ status = error && (kind = client || name = "x") && '
                                                  'resource.service.name = "a" }'))] == [
        "status", "resource.service.name"]
    assert [str(t.field) for t in required(parse("{ kind = client } && { status = error }"))] == ["kind"]
    assert required(parse("{ kind = client || status = error }")) == []
    assert required(parse("{ kind = client } || { status = error }")) == []
