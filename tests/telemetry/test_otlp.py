"""OTLP/HTTP trace ingest: the pure decoding and mapping (telemetry.otlp) and ``POST /v1/traces``."""

from __future__ import annotations

import gzip
import json
import time
import zlib

import pytest
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1 import trace_pb2

from telemetry import otlp
from telemetry.columns import KIND_CLIENT, KIND_INTERNAL, KIND_SERVER, SPAN_FIELDS
from telemetry.otlp.mapping import UNKNOWN_SERVICE
from telemetry.otlp.spans import STATUS_ERROR, STATUS_OK, UNNAMED, span_row
from tests.conftest import make_app
from tests.support.factories import RECENT_NS, attributes, good_request, make_request, make_span
from tests.support.otlp_http import JS, PB, decode, encoded, post, stored


def row(span, service="svc") -> dict:
    return dict(zip(SPAN_FIELDS, span_row(span, service), strict=True))


# -- pure mapping -------------------------------------------------------------------------


def test_server_span_with_route_is_keyed_by_method_and_route():
    span = make_span(name="GET /orders/42", kind=KIND_SERVER, dur_ms=12.5,
                     parent="00f067aa0ba902b7",
                     attrs={"http.route": "/orders/{id}", "http.request.method": "GET",
                            "http.response.status_code": 200})
    r = row(span)
    assert r["endpoint"] == "GET /orders/{id}"
    assert (r["service"], r["kind"], r["method"], r["status_code"], r["error"]) == ("svc", KIND_SERVER,
                                                                                   "GET", 200, False)
    assert r["trace_id"] == "0af7651916cd43dd8448eb211c80319c" and r["span_id"] == "0000000000000001"
    assert r["parent_span_id"] == "00f067aa0ba902b7"
    assert r["start_time"] == pytest.approx(RECENT_NS / 1e9) and r["duration_ms"] == pytest.approx(12.5)
    assert r["peer"] is None


def test_endpoint_is_the_span_name_otherwise():
    assert row(make_span(name="SELECT orders", kind=KIND_INTERNAL))["endpoint"] == "SELECT orders"
    # A CLIENT span with a route attribute is still named by its span name.
    assert row(make_span(name="GET", kind=KIND_CLIENT, attrs={"http.route": "/x"}))["endpoint"] == "GET"
    # A SERVER span without a method: the route alone.
    bare = make_span(name="/x/1", kind=KIND_SERVER, attrs={"http.route": "/x/{id}"})
    assert row(bare)["endpoint"] == "/x/{id}"
    assert row(make_span(name="", kind=KIND_INTERNAL))["endpoint"] == UNNAMED


def test_older_http_attributes_and_string_status():
    r = row(make_span(kind=KIND_SERVER, attrs={"http.method": "POST", "http.status_code": "503"}))
    assert (r["method"], r["status_code"], r["error"]) == ("POST", 503, True)  # status UNSET + 5xx
    assert row(make_span(attrs={"http.status_code": "abc"}))["status_code"] is None
    assert row(make_span(attrs={"http.status_code": 70000}))["status_code"] is None


def test_error_follows_status_first():
    assert row(make_span(status=STATUS_ERROR))["error"] is True
    assert row(make_span(status=STATUS_OK, attrs={"http.response.status_code": 500}))["error"] is False
    assert row(make_span(attrs={"http.response.status_code": 404}))["error"] is False


@pytest.mark.parametrize("attrs, peer", [
    ({"peer.service": "db", "server.address": "10.0.0.1", "net.peer.name": "db.local"}, "db"),
    ({"server.address": "10.0.0.1", "net.peer.name": "db.local"}, "10.0.0.1"),
    ({"net.peer.name": "db.local"}, "db.local"),
    ({}, None),
    # A database call: its system, database and host (a database sends no spans of its own).
    ({"db.system": "postgresql", "db.name": "orders", "server.address": "db.internal"},
     "postgresql:orders@db.internal"),
    ({"db.system.name": "postgresql", "db.namespace": "orders"}, "postgresql:orders"),
    ({"db.system": "redis", "net.peer.name": "cache"}, "redis@cache"),
    ({"db.system": "sqlite"}, "sqlite"),
    ({"db.system": "postgresql", "peer.service": "orders-db"}, "orders-db"),  # named: the name wins
])
def test_client_peer_order(attrs, peer):
    assert row(make_span(kind=KIND_CLIENT, attrs=attrs))["peer"] == peer
    assert row(make_span(kind=KIND_SERVER, attrs=attrs))["peer"] is None  # only CLIENT spans call a peer


def test_last_exception_event():
    def event(kind):
        return trace_pb2.Span.Event(name="exception", attributes=attributes({
            "exception.type": kind, "exception.message": "boom", "exception.stacktrace": "Traceback..."}))
    other = trace_pb2.Span.Event(name="log", attributes=attributes({"exception.type": "nope"}))
    r = row(make_span(status=2, events=[event("KeyError"), event("TimeoutError"), other]))
    assert (r["exception_type"], r["exception_message"], r["exception_stack"]) == (
        "TimeoutError", "boom", "Traceback...")


def test_without_an_exception_event_the_attributes_and_status_message_say_what_failed():
    """Instrumentations that set ``exception.*``/``error.type`` attributes or only a status message
    still say what failed (bounded like the rest; an OK span's status message is not a failure)."""
    failed = make_span(status=2, attrs={"error.type": "ConnectionRefusedError"})
    failed.status.message = "connect ECONNREFUSED 10.0.0.7:5432\x00" + "x" * 100_000
    r = row(failed)
    assert r["exception_type"] == "ConnectionRefusedError" and r["exception_stack"] is None
    assert r["exception_message"].startswith("connect ECONNREFUSED 10.0.0.7:5432x")
    assert len(r["exception_message"]) == 32 * 1024
    attrs = row(make_span(status=2, attrs={"exception.type": "OSError", "exception.message": "[Errno 28] No "
                                           "space left on device", "error.type": "500"}))
    assert (attrs["exception_type"], attrs["exception_message"]) == (
        "OSError", "[Errno 28] No space left on device")
    fine = make_span(status=1, attrs={"error.type": "x"})
    fine.status.message = "all good"
    assert (row(fine)["exception_type"], row(fine)["exception_message"]) == (None, None)


def test_strings_are_cut_to_columns_and_cleaned():
    span = make_span(name="x" * 2000 + "\x00", kind=KIND_CLIENT,
                     attrs={"http.request.method": "VERYLONGMETHODNAME123", "peer.service": "p\x00q"})
    r = row(span, service="s")
    assert len(r["endpoint"]) == 512 and "\x00" not in r["endpoint"]
    assert r["method"] == "VERYLONGMETHODNA" and r["peer"] == "pq"


def test_service_name_default():
    request = make_request({"": [make_span()]})
    assert otlp.to_rows(request).rows[0][SPAN_FIELDS.index("service")] == UNKNOWN_SERVICE


@pytest.mark.parametrize("kwargs, reason", [
    ({"trace_id": b"\x01" * 8}, "invalid trace_id"),
    ({"trace_id": b"\x00" * 16}, "invalid trace_id"),
    ({"span_id": b"\x01" * 7}, "invalid span_id"),
    ({"span_id": b"\x00" * 8}, "invalid span_id"),
    ({"parent": "00f067aa0ba902"}, "invalid parent_span_id"),
    ({"start_ns": 0}, "missing start_time"),
    ({"dur_ms": -1}, "end_time_unix_nano before"),
])
def test_invalid_spans_are_rejected_with_a_reason(kwargs, reason):
    request = make_request({"svc": [make_span(1), make_span(2, **kwargs)]})
    mapped = otlp.to_rows(request)
    assert len(mapped.rows) == 1 and mapped.rejected == 1
    assert reason in mapped.error_message


def test_json_hex_ids_enum_names_or_numbers_and_int64_strings_or_numbers():
    doc = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
        "scopeSpans": [{"scope": {"name": "x"}, "spans": [
            {"traceId": "0AF7651916CD43DD8448EB211C80319C", "spanId": "b7ad6b7169203331",
             "parentSpanId": "", "name": "GET /a", "kind": "SPAN_KIND_SERVER",
             "startTimeUnixNano": str(RECENT_NS), "endTimeUnixNano": RECENT_NS + 2_000_000,
             "status": {"code": "STATUS_CODE_ERROR"}, "unknownField": 1,
             "links": [{"traceId": "not hex", "spanId": "zz"}],
             "attributes": [{"key": "http.response.status_code", "value": {"intValue": "500"}}]},
            {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203332",
             "parent_span_id": "b7ad6b7169203331", "name": "call", "kind": 3,
             "start_time_unix_nano": RECENT_NS, "end_time_unix_nano": str(RECENT_NS + 1_000_000),
             "status": {"code": 1}},
        ]}],
    }]}
    mapped = otlp.to_rows(otlp.parse_json(json.dumps(doc).encode()))
    assert mapped.rejected == 0
    a, b = (dict(zip(SPAN_FIELDS, r, strict=True)) for r in mapped.rows)
    assert (a["trace_id"], a["span_id"], a["parent_span_id"]) == (
        "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", None)
    assert (a["kind"], a["error"], a["status_code"], a["duration_ms"]) == (KIND_SERVER, True, 500, 2.0)
    assert (b["kind"], b["parent_span_id"], b["error"], b["duration_ms"]) == (
        KIND_CLIENT, "b7ad6b7169203331", False, 1.0)


def test_json_non_hex_id_rejects_only_that_span():
    doc = otlp.to_json_dict(good_request(2))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["spanId"] = "xyz!xyz!xyz!xyz!"
    mapped = otlp.to_rows(otlp.parse_json(json.dumps(doc)))
    assert (len(mapped.rows), mapped.rejected) == (1, 1)


@pytest.mark.parametrize("doc", [
    {"resourceSpans": ["AAA"]},
    {"resourceSpans": [{"resource": "abc"}]},
    {"resourceSpans": [{"scopeSpans": [{"spans": ["x"], "scope": {}}]}]},
    {"resourceSpans": [{"scopeSpans": [{"spans": [{"status": "x"}]}]}]},
    {"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": ["k"]}]}]}]},
    {"resource_spans": [{"resource": ["attributes"]}]},
])
def test_json_string_where_a_message_belongs_is_an_error(doc):
    """json_format would read the string as an object of unknown fields: an empty resource, a 200."""
    with pytest.raises(otlp.OtlpError, match="must be an object"):
        otlp.parse_json(json.dumps(doc))


def test_to_json_dict_round_trips():
    request = good_request(2)
    doc = otlp.to_json_dict(request)
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == "0af7651916cd43dd8448eb211c80319c" and span["kind"] == 2
    assert otlp.parse_json(json.dumps(doc)) == request


def test_read_body_gunzips_multi_member_and_caps_output():
    data = b"a" * 1000 + b"b" * 1000
    two_members = gzip.compress(data[:1000]) + gzip.compress(data[1000:])
    chunks = [two_members[i : i + 7] for i in range(0, len(two_members), 7)]
    assert otlp.read_body(chunks, coding="gzip", limit=2000) == data
    with pytest.raises(otlp.PayloadTooLarge):
        otlp.read_body(chunks, coding="gzip", limit=1999)
    with pytest.raises(otlp.PayloadTooLarge):
        otlp.read_body([b"x" * 11], coding=None, limit=10)
    with pytest.raises(otlp.OtlpError, match="truncated"):
        otlp.read_body([two_members[:-5]], coding="gzip", limit=10_000)
    with pytest.raises(otlp.OtlpError, match="not valid gzip"):
        otlp.read_body([b"not gzip at all"], coding="gzip", limit=10_000)


def test_gzip_bomb_stops_at_the_limit():
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # ~64 KiB on the wire
    seen = []

    def chunks():
        for i in range(0, len(bomb), 4096):
            seen.append(i)
            yield bomb[i : i + 4096]

    with pytest.raises(otlp.PayloadTooLarge):
        otlp.read_body(chunks(), coding="gzip", limit=1024 * 1024)
    assert len(seen) < len(bomb) // 4096  # gave up before reading (let alone inflating) it all


# -- POST /v1/traces ------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [PB, JS])
@pytest.mark.parametrize("gzipped", [False, True])
def test_export_is_stored_and_answered_in_the_request_encoding(app, client, content_type, gzipped):
    body = encoded(good_request(3), content_type)
    r = post(client, body, content_type + "; charset=utf-8" if content_type == JS else content_type, gzipped)
    assert r.status_code == 200, r.data
    assert r.mimetype == content_type
    assert decode(r, ExportTraceServiceResponse) == ExportTraceServiceResponse()
    spans = stored(app)
    assert [(s.service, s.endpoint, s.status_code, s.method) for s in spans] == [
        ("orders", "GET /orders/{id}", 200, "GET")] * 3


@pytest.mark.parametrize("content_type", [PB, JS])
def test_partial_success_stores_the_valid_spans(app, client, content_type):
    request = make_request({"svc": [make_span(1), make_span(2, trace_id=b"\x01" * 5), make_span(3)]})
    body = encoded(request, content_type)
    r = post(client, body, content_type)
    assert r.status_code == 200
    response = decode(r, ExportTraceServiceResponse)
    assert response.partial_success.rejected_spans == 1
    assert "invalid trace_id" in response.partial_success.error_message
    assert [s.span_id for s in stored(app)] == ["0000000000000001", "0000000000000003"]


def test_a_retried_batch_and_repeated_spans_are_stored_once(app, client):
    """Clients retry whole batches (a lost 200), and some exporters repeat spans: one row each."""
    body = good_request(3).SerializeToString()
    for _ in range(2):
        assert post(client, body, PB).status_code == 200
    repeated = make_request({"orders": [make_span(4), make_span(4), make_span(5)]}).SerializeToString()
    assert post(client, repeated, PB).status_code == 200
    assert [s.span_id for s in stored(app)] == [f"{n:016x}" for n in (1, 2, 3, 4, 5)]


def _bad_id_json() -> bytes:
    doc = otlp.to_json_dict(good_request(2))
    for span in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        span["traceId"] = "zz" * 16
    return json.dumps(doc).encode()


def _short_id_json() -> bytes:
    doc = otlp.to_json_dict(good_request(1))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] = "abcd"
    return json.dumps(doc).encode()


def _bad_kind_type_json() -> bytes:
    doc = otlp.to_json_dict(good_request(1))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["startTimeUnixNano"] = {"at": "noon"}
    return json.dumps(doc).encode()


MALFORMED = [
    # (label, body, content type, extra headers, expected status)
    ("truncated protobuf", good_request(3).SerializeToString()[:-7], PB, {}, 400),
    ("garbage protobuf", b"\x0a\xff\xff\xff\xff\x0f", PB, {}, 400),
    ("invalid JSON", b'{"resourceSpans": [', JS, {}, 400),
    ("JSON not an object", b"[1, 2]", JS, {}, 400),
    ("invalid UTF-8 JSON", b'{"resourceSpans": "\xff\xfe"}', JS, {}, 400),
    ("non-hex ids", _bad_id_json(), JS, {}, 400),
    ("short span id", _short_id_json(), JS, {}, 400),
    ("wrong-length protobuf id", make_request({"s": [make_span(trace_id=b"\x01" * 8)]}).SerializeToString(),
     PB, {}, 400),
    ("wrong type: list as string", b'{"resourceSpans": "nope"}', JS, {}, 400),
    ("wrong type: object as int64", _bad_kind_type_json(), JS, {}, 400),
    ("empty protobuf body", b"", PB, {}, 400),
    ("empty JSON body", b"", JS, {}, 400),
    ("bad gzip", b"this is not gzip", PB, {"Content-Encoding": "gzip"}, 400),
    ("truncated gzip", gzip.compress(good_request(3).SerializeToString())[:-9], PB,
     {"Content-Encoding": "gzip"}, 400),
    ("unsupported content encoding", good_request(1).SerializeToString(), PB,
     {"Content-Encoding": "br"}, 415),
    ("wrong content type", b"hello", "text/plain", {}, 415),
    ("form content type", b"a=b", "application/x-www-form-urlencoded", {}, 415),
    ("no content type", good_request(1).SerializeToString(), None, {}, 415),
]


def test_every_malformed_input_gets_a_4xx_and_stores_nothing(app, client):
    for label, body, content_type, headers, expected in MALFORMED:
        r = post(client, body, content_type, **headers)
        assert r.status_code == expected, (label, r.status_code, r.data)
        if content_type in (PB, JS):
            # An OTLP content type: a google.rpc.Status in the request's encoding.
            assert r.mimetype == content_type, label
            status = decode(r, status_pb2.Status)
            assert status.message and status.code != code_pb2.OK, label
        else:
            assert r.mimetype == "application/json", label
            assert r.get_json()["error"] == "Unsupported Media Type", label
        assert stored(app) == [], label
    r = post(client, good_request(5).SerializeToString(), PB, gzipped=True)
    assert r.status_code == 200
    assert len(stored(app)) == 5


@pytest.fixture
def small_app(db_url):
    """OTLP limit 64 KiB; Flask's own MAX_CONTENT_LENGTH far lower, to prove the route replaces it."""
    app = make_app(db_url, AIOPS_OTLP_MAX_BYTES=64 * 1024, MAX_CONTENT_LENGTH=1024)
    yield app
    from telemetry.db import db

    with app.app_context():
        app.extensions["aiops_buffer"].flush()
        db.session.remove()
        db.engine.dispose()


def _sized_request(min_bytes: int) -> bytes:
    n = 1
    while True:
        body = good_request(n).SerializeToString()
        if len(body) >= min_bytes:
            return body
        n *= 2


@pytest.mark.parametrize("content_type", [PB, JS])
def test_body_limit_after_decompression(small_app, content_type):
    client = small_app.test_client()
    body = encoded(good_request(40), content_type)  # over MAX_CONTENT_LENGTH, under the OTLP limit
    assert 1024 < len(body) < 64 * 1024
    assert post(client, body, content_type).status_code == 200

    big = _sized_request(70 * 1024)
    if content_type == JS:
        big = json.dumps(otlp.to_json_dict(ExportTraceServiceRequest.FromString(big))).encode()
    for gzipped in (False, True):
        r = post(client, big, content_type, gzipped=gzipped)
        assert r.status_code == 413, (gzipped, r.data)
        assert r.mimetype == content_type
        status = decode(r, status_pb2.Status)
        assert status.code == code_pb2.RESOURCE_EXHAUSTED and "AIOPS_OTLP_MAX_BYTES" in status.message
    assert len(stored(small_app)) == 40


def test_gzip_bomb_is_413(small_app):
    bomb = gzip.compress(b"\0" * (32 * 1024 * 1024), compresslevel=9)
    r = small_app.test_client().post("/v1/traces", data=bomb,
                                     headers={"Content-Type": PB, "Content-Encoding": "gzip"})
    assert r.status_code == 413
    assert stored(small_app) == []


def test_store_failure_is_a_retryable_503(app, client, monkeypatch):
    import telemetry.ingest

    def broken(engine, rows):
        raise RuntimeError("database is down")

    monkeypatch.setattr(telemetry.ingest, "insert_spans", broken)
    r = post(client, good_request(2).SerializeToString(), PB)
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert decode(r, status_pb2.Status).code == code_pb2.UNAVAILABLE
    monkeypatch.undo()
    assert post(client, good_request(2).SerializeToString(), PB).status_code == 200
    assert len(stored(app)) == 2


def test_other_methods_get_the_json_error(client):
    r = client.get("/v1/traces")
    assert r.status_code == 405 and r.get_json()["error"] == "Method Not Allowed"


def test_ingested_spans_reach_the_detection_cycle(app, client):
    base = time.time_ns()
    spans = [make_span(i + 1, trace=f"{i + 1:032x}", name="GET /items", kind=KIND_SERVER,
                       start_ns=base + i * 1000, attrs={"http.route": "/items", "http.request.method": "GET"})
             for i in range(7)]
    assert post(client, make_request({"catalog": spans}).SerializeToString(), PB).status_code == 200
    summary = client.post("/aiops/analyze").get_json()
    assert summary["spans"] >= 7
    metrics = client.get("/aiops/metrics").get_json()["metrics"]
    assert metrics["catalog GET /items"]["request_count"] == 7


def test_content_codings_are_not_confused():
    # Content-Encoding: gzip means gzip, deflate means a zlib stream (RFC 9110).
    with pytest.raises(otlp.OtlpError):
        otlp.read_body([zlib.compress(b"abc")], coding="gzip", limit=100)
    with pytest.raises(otlp.OtlpError):
        otlp.read_body([gzip.compress(b"abc")], coding="deflate", limit=100)
    assert otlp.read_body([zlib.compress(b"abc")], coding="deflate", limit=100) == b"abc"


def test_deflate_export_is_accepted(app, client):
    body = zlib.compress(good_request(2).SerializeToString())
    r = post(client, body, PB, **{"Content-Encoding": "deflate"})
    assert r.status_code == 200
    assert len(stored(app)) == 2
