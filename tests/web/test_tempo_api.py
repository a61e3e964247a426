"""``GET /api/search`` and ``GET /api/traces/<id>``: Tempo's query API over the store (both backends).

The shapes are checked against the examples of Tempo's HTTP API documentation
(docs/sources/tempo/api_docs/_index.md, "Example of TraceQL search" and "Query"): a search answers
``traces`` (traceID, rootServiceName, rootTraceName, startTimeUnixNano as a string, durationMs, the
matched spans in spanSets with spanID, startTimeUnixNano, durationNanos as strings, attributes and
matched) and ``metrics``; a trace is OTLP JSON under ``batches``, ids base64 as Tempo has them.
"""

from __future__ import annotations

import base64

import pytest

from telemetry.columns import KIND_CLIENT
from tests.conftest import sqlite_only
from tests.support.factories import client as client_span
from tests.support.factories import insert_spans, span

NOW = 1_800_000_000.0
WINDOW = {"start": int(NOW - 600), "end": int(NOW + 600)}


def _trace(start: float, *, failing: bool = False, service: str = "shop"):
    root = span("checkout", 300.0, start_time=start, service=service)
    root.method = "POST"
    call = client_span(root, "payment", 120.0, start_time=start + 0.01, status_code=503 if failing else 200)
    call.peer = "payments"
    payment = span("POST /payment", 100.0, parent=call, service="payments", start_time=start + 0.02,
                   status_code=503 if failing else 200,
                   exception_type="TimeoutError" if failing else None,
                   exception_message="db slow" if failing else None)
    payment.method = "POST"
    return [root, call, payment]


@pytest.fixture
def traces(app):
    made = [_trace(NOW - 100 + i, failing=i % 3 == 0) for i in range(9)]
    made.append(_trace(NOW - 5000, failing=True))  # outside the window
    insert_spans(app, [s for t in made for s in t])
    return made


def _search(client, **args):
    r = client.get("/api/search", query_string={**WINDOW, **args})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_search_answers_tempo_s_documented_shape(client, traces):
    body = _search(client, q="{ status = error }")
    assert set(body) == {"traces", "metrics"}
    assert body["metrics"]["inspectedTraces"] >= 3
    failing = [t for i, t in enumerate(traces[:9]) if i % 3 == 0]
    assert [t["traceID"] for t in body["traces"]] == [t[0].trace_id for t in reversed(failing)]
    first = body["traces"][0]
    root = failing[-1][0]
    assert first["rootServiceName"] == "shop" and first["rootTraceName"] == "checkout"
    assert first["startTimeUnixNano"] == str(int(root.start_time * 1e9))
    assert first["durationMs"] == 300
    assert first["spanSets"] == [first["spanSet"]]
    spanset = first["spanSet"]
    assert spanset["matched"] == 2
    payment = failing[-1][2]
    shown = spanset["spans"][1]
    assert shown == {"spanID": payment.span_id, "name": "POST /payment",
                     "startTimeUnixNano": str(round(payment.start_time * 1e6) * 1000),
                     "durationNanos": "100000000",
                     "attributes": [{"key": "status", "value": {"stringValue": "error"}}]}


def test_search_filters_by_attributes_and_limits(client, traces):
    body = _search(client, q='{ resource.service.name = "payments" && span.http.status_code = 200 }')
    assert len(body["traces"]) == 6
    attributes = body["traces"][0]["spanSet"]["spans"][0]["attributes"]
    assert attributes == [{"key": "service.name", "value": {"stringValue": "payments"}},
                          {"key": "http.status_code", "value": {"intValue": "200"}}]
    assert len(_search(client, q="{ kind = client }", limit=4)["traces"]) == 4
    assert _search(client, q='{ name = "nothing" }')["traces"] == []
    some = _search(client, q="{}", spss=1)["traces"][0]["spanSet"]
    assert len(some["spans"]) == 1 and some["matched"] == 3


def test_a_float_status_code_is_compared_as_a_float_not_rounded_by_sql(client, traces):
    assert len(_search(client, q="{ kind = server && span.http.status_code > 199.5 }")["traces"]) == 9
    assert len(_search(client, q="{ span.http.status_code > 200.5 && kind = server }")["traces"]) == 3


def test_search_runs_what_sql_cannot(client, traces):
    """Regexes, ||, spanset operators and trace intrinsics are evaluated on the loaded traces."""
    assert len(_search(client, q='{ span.http.route =~ "/pay.*" }')["traces"]) == 9
    assert len(_search(client, q='{ status = error } || { duration > 250ms }')["traces"]) == 9
    both = _search(client, q='{ kind = client && status = error } && { name = "checkout" }')["traces"]
    assert len(both) == 3 and both[0]["spanSet"]["matched"] == 2
    assert len(_search(client, q='{ trace:rootService = "shop" && event.exception.type != nil }')
               ["traces"]) == 3


def test_search_window_defaults_to_the_last_hour(app, client):
    import time

    now = time.time()
    insert_spans(app, _trace(now - 60) + _trace(now - 7200))
    body = client.get("/api/search").get_json()
    assert len(body["traces"]) == 1


def test_a_trace_without_its_root_is_named_as_tempo_does(app, client):
    orphan = _trace(NOW)[1:]
    insert_spans(app, orphan)
    found = _search(client, q="{}")["traces"][0]
    assert found["rootServiceName"] == "<root span not yet received>" and "rootTraceName" not in found


def _b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def test_trace_by_id_answers_otlp_json_batches(client, traces):
    root, call, payment = traces[0]
    r = client.get(f"/api/traces/{root.trace_id}")
    assert r.status_code == 200
    batches = r.get_json()["batches"]
    assert [b["resource"]["attributes"] for b in batches] == [
        [{"key": "service.name", "value": {"stringValue": "shop"}}],
        [{"key": "service.name", "value": {"stringValue": "payments"}}]]
    shop = batches[0]["scopeSpans"][0]["spans"]
    assert [s["spanId"] for s in shop] == [_b64(root.span_id), _b64(call.span_id)]
    first = shop[0]
    assert first["traceId"] == _b64(root.trace_id) and "parentSpanId" not in first
    assert first["kind"] == "SPAN_KIND_SERVER" and first["name"] == "checkout"
    assert first["startTimeUnixNano"] == str(int(root.start_time * 1e9))
    assert int(first["endTimeUnixNano"]) - int(first["startTimeUnixNano"]) == 300_000_000
    assert {"key": "http.route", "value": {"stringValue": "/checkout"}} in first["attributes"]
    assert first["status"] == {}
    assert shop[1]["kind"] == "SPAN_KIND_CLIENT" and shop[1]["parentSpanId"] == _b64(root.span_id)
    assert {"key": "peer.service", "value": {"stringValue": "payments"}} in shop[1]["attributes"]
    failed = batches[1]["scopeSpans"][0]["spans"][0]
    assert failed["status"] == {"code": "STATUS_CODE_ERROR", "message": "db slow"}
    assert failed["events"][0]["name"] == "exception"
    assert {"key": "http.response.status_code", "value": {"intValue": "503"}} in failed["attributes"]


def test_trace_by_id_answers_protobuf_when_asked(client, traces):
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    root = traces[0][0]
    r = client.get(f"/api/traces/{root.trace_id}", headers={"Accept": "application/protobuf"})
    assert r.status_code == 200 and r.mimetype == "application/protobuf"
    data = TracesData.FromString(r.data)
    services = [rs.resource.attributes[0].value.string_value for rs in data.resource_spans]
    assert services == ["shop", "payments"]
    assert data.resource_spans[0].scope_spans[0].spans[0].span_id.hex() == root.span_id
    either = client.get(f"/api/traces/{root.trace_id}", headers={"Accept": "*/*"})
    assert either.mimetype == "application/json"


def test_trace_ids_are_hex_of_any_case_padded_to_32_digits(app, client):
    short = span("checkout", trace_id="0" * 16 + "abcdef0123456789", start_time=NOW)
    insert_spans(app, [short])
    for asked in ("ABCDEF0123456789", "0000000000000000abcdef0123456789"):
        assert client.get(f"/api/traces/{asked}").status_code == 200


@sqlite_only
@pytest.mark.parametrize("asked", ["xyz", "0" * 33, "abc-def", "%00"])
def test_a_malformed_trace_id_is_a_400(client, asked):
    r = client.get(f"/api/traces/{asked}")
    assert r.status_code == 400 and r.get_json()["error"] == "Bad Request"


@sqlite_only
def test_an_unknown_trace_is_a_404(client):
    r = client.get("/api/traces/" + "ab" * 16)
    assert r.status_code == 404 and r.get_json()["error"] == "Not Found"


@sqlite_only
@pytest.mark.parametrize("args, words", [
    ({"q": "{ status = bad }"}, "q: status is one of error, ok, unset (line 1, column 12)"),
    ({"q": "{ span.a = "}, "q: the query ends too early"),
    ({"q": "{" * 40}, "q: nested more than 16 levels deep (line 1, column 17)"),
    ({"q": "{ span.a =~ \"(a+)+\" }"}, "regex refused"),
    ({"q": "{" + " " * 3000 + "}"}, "at most 2000 characters"),
    ({"limit": "0"}, "limit: must be a whole number from 1 to 500"),
    ({"limit": "501"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"spss": "1000"}, "spss"),
    ({"start": "yesterday"}, "start: must be unix epoch seconds"),
    ({"start": ""}, "start: must be unix epoch seconds"),
    ({"limit": ""}, "limit"),
    ({"start": "200", "end": "100"}, "end: must not be before start"),
    ({"tags": "service.name=shop"}, "tags: tag-based search is not supported"),
    ({"q": '{ name = "a\x00b" }'}, "q: must not contain NUL characters"),
])
def test_bad_parameters_are_400_with_a_message_that_says_which(client, args, words):
    r = client.get("/api/search", query_string=args)
    assert r.status_code == 400
    assert words in r.get_json()["message"]


@sqlite_only
def test_reads_need_the_token_when_reads_are_protected(app_factory):
    app = app_factory(AIOPS_API_TOKEN="t0ken", AIOPS_PROTECT_READS=True)
    web = app.test_client()
    assert web.get("/api/search").status_code == 401
    assert web.get("/api/traces/" + "ab" * 16).status_code == 401
    auth = {"Authorization": "Bearer t0ken"}
    assert web.get("/api/search", headers=auth).status_code == 200
    assert web.get("/api/traces/" + "ab" * 16, headers=auth).status_code == 404


def test_values_at_the_edges_of_their_types_answer_without_an_error(client, traces):
    """Pushed into SQL on both backends: the largest integers, huge durations, long strings."""
    for q in ("{ span.http.status_code = 9223372036854775807 }",
              "{ span.http.status_code > -9223372036854775808 }", "{ duration < 99999999999h }",
              '{ name = "' + "x" * 1500 + '" }', '{ name != "é\\u0001" }'):
        assert client.get("/api/search", query_string={**WINDOW, "q": q}).status_code == 200, q


def test_the_client_kind_column_is_what_kind_reads(client, app):
    lone = span("call", start_time=NOW)
    lone.kind = KIND_CLIENT
    insert_spans(app, [lone])
    assert [t["traceID"] for t in _search(client, q="{ kind = client }")["traces"]] == [lone.trace_id]
