"""OTLP ingest as an attacker sends it: credentials, decoding limits, timestamps, bad strings."""

from __future__ import annotations

import gzip
import json
import time

import pytest
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1 import trace_pb2

from aiops.settings import Settings
from telemetry import otlp, otlp_limits
from tests.conftest import dispose_app, make_app
from tests.support.factories import empty_spans, good_request, make_request, make_span, varint
from tests.support.otlp_http import JS, PB, decode, decoded_items, encoded, post, stored

NS = 1_000_000_000


@pytest.fixture
def guarded(db_url):
    app = make_app(db_url, AIOPS_INGEST_TOKEN="ingest-t", AIOPS_API_TOKEN="api-t")
    yield app
    dispose_app(app)


# -- credentials --------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [PB, JS])
def test_ingest_needs_the_token_when_one_is_set(guarded, content_type):
    client = guarded.test_client()
    body = encoded(good_request(2), content_type)
    for headers in ({}, {"Authorization": "Bearer api-t"}, {"Authorization": "Bearer wrong"},
                    {"Authorization": "ingest-t"}):
        r = post(client, body, content_type, **headers)
        assert r.status_code == 401, headers
        assert decode(r, status_pb2.Status).code == code_pb2.UNAUTHENTICATED
    assert stored(guarded) == []
    assert post(client, body, content_type, Authorization="Bearer ingest-t").status_code == 200
    assert post(client, body, content_type, **{"X-AIOps-Token": "ingest-t"}).status_code == 200
    assert len(stored(guarded)) == 2

LIMITS = otlp_limits.Limits(Settings().otlp_max_spans, Settings().otlp_max_items)  # the defaults


def test_the_api_token_guards_ingest_when_it_is_the_only_one(app_factory):
    client = app_factory(AIOPS_API_TOKEN="api-t").test_client()
    body = good_request(1).SerializeToString()
    assert post(client, body, PB).status_code == 401
    assert post(client, body, PB, Authorization="Bearer api-t").status_code == 200


def test_open_ingest_is_the_default(client):
    assert post(client, good_request(1).SerializeToString(), PB).status_code == 200
    assert client.get("/health").get_json()["security"]["ingest"] == "open"


def test_the_products_own_service_name_is_refused(app, client):
    request = make_request({"shop": [make_span(1, name="payment")], "orders": [make_span(2)]})
    r = post(client, request.SerializeToString(), PB)
    assert r.status_code == 200
    partial = decode(r, ExportTraceServiceResponse).partial_success
    assert partial.rejected_spans == 1 and "own" in partial.error_message
    assert [s.service for s in stored(app)] == ["orders"]


# -- decoding limits ----------------------------------------------------------------------


def test_scan_counts_what_the_decoder_builds():
    request = good_request(5)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.events.append(trace_pb2.Span.Event(name="exception", attributes=span.attributes))
    span.attributes[0].value.array_value.values.add().kvlist_value.values.add(key="k").value.int_value = 1
    body = request.SerializeToString()
    assert otlp_limits.scan_protobuf(body, LIMITS) == decoded_items(request) == 52


def test_scan_refuses_before_decoding():
    with pytest.raises(otlp.PayloadTooLarge, match="AIOPS_OTLP_MAX_SPANS"):
        otlp_limits.scan_protobuf(empty_spans(101), otlp_limits.Limits(max_records=100,
            max_items=LIMITS.max_items))
    with pytest.raises(otlp.PayloadTooLarge, match="AIOPS_OTLP_MAX_ITEMS"):
        otlp_limits.scan_protobuf(empty_spans(101), otlp_limits.Limits(max_records=LIMITS.max_records,
            max_items=100))
    with pytest.raises(otlp.OtlpError):
        otlp_limits.scan_protobuf(empty_spans(10)[:-1], LIMITS)


def _nested_arrays(depth: int) -> bytes:
    """A request whose one span has one attribute holding arrays ``depth`` deep."""
    value = b""
    for _ in range(depth):
        array = b"\x0a" + varint(len(value)) + value  # ArrayValue.values
        value = b"\x2a" + varint(len(array)) + array  # AnyValue.array_value
    kv = b"\x0a\x01k\x12" + varint(len(value)) + value
    span = b"\x4a" + varint(len(kv)) + kv
    scope = b"\x12" + varint(len(span)) + span
    resource = b"\x12" + varint(len(scope)) + scope
    return b"\x0a" + varint(len(resource)) + resource


def test_scan_refuses_nesting_deeper_than_the_decoder_takes():
    assert otlp_limits.scan_protobuf(_nested_arrays(10), LIMITS) == 3 + 1 + 1 + 2 * 10
    with pytest.raises(otlp.OtlpError, match="too deep"):
        otlp_limits.scan_protobuf(_nested_arrays(200), LIMITS)


def test_a_small_gzip_of_millions_of_empty_spans_is_413(app, client):
    bomb = gzip.compress(empty_spans(4_000_000), compresslevel=9)
    assert len(bomb) < 64 * 1024
    r = post(client, bomb, PB, **{"Content-Encoding": "gzip"})
    assert r.status_code == 413
    assert "AIOPS_OTLP_MAX_SPANS" in decode(r, status_pb2.Status).message
    assert stored(app) == []


def test_a_small_body_is_bounded_by_its_size_and_its_spans_counted_once_decoded(app, app_factory):
    body = empty_spans(101)
    assert len(body) <= otlp_limits.DIRECT_MAX
    bound = otlp_limits.unscanned_items(len(body), LIMITS)
    assert bound is not None and bound >= otlp_limits.scan_protobuf(body, LIMITS)  # no scan needed
    # The size bound holds only while it is within the items cap, and for bodies up to DIRECT_MAX.
    assert otlp_limits.unscanned_items(len(body), otlp_limits.Limits(LIMITS.max_records, 50)) is None
    assert otlp_limits.unscanned_items(otlp_limits.DIRECT_MAX + 1, LIMITS) is None
    # Over the span cap it is the same 413 as a scanned body, and nothing is stored.
    few = app_factory(AIOPS_OTLP_MAX_SPANS=100)
    r = post(few.test_client(), body, PB)
    assert r.status_code == 413 and "AIOPS_OTLP_MAX_SPANS" in decode(r, status_pb2.Status).message
    assert stored(few) == []
    assert post(few.test_client(), good_request(100).SerializeToString(), PB).status_code == 200
    assert len(stored(few)) == 100


def test_json_objects_are_counted_while_parsing(app_factory):
    app = app_factory(AIOPS_OTLP_MAX_ITEMS=50)
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{}] * 100}]}]}).encode()
    r = post(app.test_client(), body, JS)
    assert r.status_code == 413 and "AIOPS_OTLP_MAX_ITEMS" in decode(r, status_pb2.Status).message


def test_spans_over_the_attribute_or_event_limit_are_rejected_alone(app_factory):
    app = app_factory(AIOPS_OTLP_MAX_ATTRIBUTES=3, AIOPS_OTLP_MAX_EVENTS=1)
    many = make_span(1, attrs={f"k{i}": "v" for i in range(4)})
    event = trace_pb2.Span.Event(name="e")
    busy = make_span(2, events=[event, event])
    fine = make_span(3, attrs={"a": "b"}, events=[event])
    r = post(app.test_client(), make_request({"orders": [many, busy, fine]}).SerializeToString(), PB)
    partial = decode(r, ExportTraceServiceResponse).partial_success
    assert r.status_code == 200 and partial.rejected_spans == 2
    assert "AIOPS_OTLP_MAX_ATTRIBUTES" in partial.error_message
    assert "AIOPS_OTLP_MAX_EVENTS" in partial.error_message
    assert [s.span_id for s in stored(app)] == [(3).to_bytes(8, "big").hex()]


def test_the_inflight_budget_turns_excess_into_a_retryable_503(app, client):
    budget = app.extensions["aiops_otlp_budget"]
    budget.used = budget.limit  # every byte taken by requests in flight
    r = post(client, good_request(2).SerializeToString(), PB)
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert decode(r, status_pb2.Status).code == code_pb2.UNAVAILABLE
    budget.used = 0
    assert post(client, good_request(2).SerializeToString(), PB).status_code == 200
    assert budget.used == 0  # given back after the request
    assert post(client, b"\x0a\xff", PB).status_code == 400
    assert budget.used == 0  # and after a failed one


def test_inflight_budget_below_one_request_is_a_configuration_error(db_url):
    with pytest.raises(ValueError, match="AIOPS_OTLP_INFLIGHT_BYTES"):
        make_app(db_url, AIOPS_OTLP_INFLIGHT_BYTES=1024)


# -- timestamps ---------------------------------------------------------------------------


def test_spans_far_from_now_are_rejected_and_never_stored(app, client):
    now = int(time.time()) * NS
    bad = [
        make_span(1, start_ns=1, dur_ms=(584 * 365 * 86400) * 1e3),  # 1970 to the year 2554
        make_span(2, start_ns=now - 8 * 86400 * NS),  # over a week old
        make_span(3, start_ns=now + 2 * 3600 * NS),  # two hours ahead
        make_span(4, start_ns=now - 60 * NS, dur_ms=2 * 86400 * 1e3),  # a two-day span
    ]
    r = post(client, make_request({"orders": bad}).SerializeToString(), PB)
    assert r.status_code == 400  # every span rejected: nothing to store
    message = decode(r, status_pb2.Status).message
    for setting in ("AIOPS_OTLP_MAX_AGE", "AIOPS_OTLP_MAX_AHEAD", "AIOPS_OTLP_MAX_DURATION"):
        assert setting in message
    assert stored(app) == []
    good = make_span(5, start_ns=now - 60 * NS)
    r = post(client, make_request({"orders": [bad[0], good]}).SerializeToString(), PB)
    assert r.status_code == 200 and decode(r, ExportTraceServiceResponse).partial_success.rejected_spans == 1
    assert [s.span_id for s in stored(app)] == [(5).to_bytes(8, "big").hex()]


def test_replay_keeps_old_spans():
    request = make_request({"orders": [make_span(1, start_ns=1_600_000_000 * NS)]})
    assert len(otlp.to_rows(request).rows) == 1  # no checks: the data's own clock


# -- bad strings --------------------------------------------------------------------------


def _two_spans() -> ExportTraceServiceRequest:
    return make_request({"orders": [make_span(1, name="AAAAok"), make_span(2, name="BBBBok")]})


@pytest.mark.parametrize("bad", [b"AA\xff\xfeok", b"A\xed\xa0\x80ok"])  # invalid UTF-8; a UTF-8 surrogate
def test_invalid_utf8_in_protobuf_is_repaired_not_fatal(app, client, bad):
    body = _two_spans().SerializeToString().replace(b"AAAAok", bad)
    r = post(client, body, PB)
    assert r.status_code == 200, r.data
    names = sorted(s.endpoint for s in stored(app))
    assert names[1] == "BBBBok" and "\ufffd" in names[0] and names[0].endswith("ok")


@pytest.mark.parametrize("mangle", [
    lambda text: text.replace(b"AAAAok", b"AA\xffok"),  # invalid UTF-8 in the JSON text
    lambda text: text.replace(b"AAAAok", b"AA\\ud800ok"),  # a lone surrogate escape
    lambda text: text.replace(b"AAAAok", b"AA\\udc00\\ud800ok"),  # reversed pair
])
def test_bad_strings_in_json_are_repaired_not_fatal(app, client, mangle):
    body = mangle(encoded(_two_spans(), JS))
    r = post(client, body, JS)
    assert r.status_code == 200, r.data
    names = sorted(s.endpoint for s in stored(app))
    assert names[1] == "BBBBok" and "\ufffd" in names[0]


def test_a_valid_surrogate_pair_escape_is_kept(app, client):
    body = encoded(_two_spans(), JS).replace(b"AAAAok", b"\\ud83d\\ude00ok")
    assert post(client, body, JS).status_code == 200
    assert "\U0001f600ok" in {s.endpoint for s in stored(app)}
