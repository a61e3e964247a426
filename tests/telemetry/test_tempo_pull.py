"""The pure rules of the Tempo pull source (:mod:`telemetry.tempo_pull`), on the example answers of
Tempo's HTTP API documentation (:mod:`tests.support.tempo_docs`) and on hostile ones."""

from __future__ import annotations

import base64
import copy
import json

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from telemetry import otlp, otlp_limits, tempo_pull
from telemetry.tempo_pull import Found, Seen
from tests.support import tempo_docs

LIMITS = otlp_limits.Limits(max_records=1_000, max_items=10_000)


def test_the_search_covers_the_lookback_in_whole_seconds():
    assert tempo_pull.search_params(1000.5, 60, 100, "{}") == {
        "start": "940", "end": "1001", "limit": "100", "spss": "1", "q": "{}"}
    assert "q" not in tempo_pull.search_params(1000.0, 60, 100, None)


@pytest.mark.parametrize("given, wanted", [
    ("2f3e0cee77ae5dc9c17ade3689eb2e54", "2f3e0cee77ae5dc9c17ade3689eb2e54"),
    ("2F3E0CEE77AE5DC9C17ADE3689EB2E54", "2f3e0cee77ae5dc9c17ade3689eb2e54"),
    ("d6e9329d67b6146a", "0000000000000000d6e9329d67b6146a"),  # Tempo drops leading zeros
    ("W47/95gDgQPSabYzgT/HAA==", "5b8efff798038103d269b633813fc700"),  # base64, as protobuf's JSON
    ("W47_95gDgQPSabYzgT_HAA", "5b8efff798038103d269b633813fc700"),  # URL-safe, unpadded
])
def test_trace_ids_from_outside_become_32_hex_digits(given, wanted):
    assert tempo_pull.trace_id_of(given) == wanted


@pytest.mark.parametrize("hostile", [
    "../../metrics", "2f3e0cee77ae5dc9c17ade3689eb2e54/../x", "2f3e0cee77ae5dc9c17ade3689eb2e54a",  # 33
    "", "0" * 32, "AAAAAAAAAAAAAAAAAAAAAA==", "7uGbfsPBsQA=",  # empty, zero, 8 bytes of base64
    "2f3e%2F", "abc\n", "ａｂｃ", None, 12, ["2f3e"], {"id": "2f3e"},
])
def test_anything_else_is_no_trace_id(hostile):
    assert tempo_pull.trace_id_of(hostile) is None


def test_the_documented_search_answers_give_their_traces():
    found, refused = tempo_pull.found_traces(tempo_docs.TRACEQL_SEARCH, 100)
    assert refused == 0
    assert found == [Found("2f3e0cee77ae5dc9c17ade3689eb2e54", ("1684778327699392724", 557, 1))]
    found, _ = tempo_pull.found_traces(tempo_docs.TAGS_SEARCH, 100)  # no span sets: no count
    assert [f.trace_id for f in found] == ["0000000000000000d6e9329d67b6146a",
                                           "00000000000000001b1ba462b409200d"]
    assert found[0].summary == ("1634727903545000000", 611, None)
    found, _ = tempo_pull.found_traces(tempo_docs.SEARCH_WITH_SPANSET, 100)
    assert found[0].summary == ("1694718625557000000", 10000, 1)


def test_a_search_answer_is_bounded_and_its_bad_entries_skipped():
    traces = [{"traceID": f"{i + 1:032x}"} for i in range(10)] + [
        {"traceID": "../x"}, "nope", {"traceID": 5}, {}, {"traceID": "1" * 32, "durationMs": {"x": 1},
                                                       "startTimeUnixNano": "9" * 100}]
    found, refused = tempo_pull.found_traces({"traces": traces}, 100)
    assert len(found) == 11 and refused == 4
    assert found[-1].summary == (None, None, None)  # odd fields are no summary
    found, refused = tempo_pull.found_traces({"traces": traces}, 3)
    assert len(found) == 3 and refused == len(traces) - 3
    assert tempo_pull.found_traces({"metrics": {}}, 5) == ([], 0)  # protobuf's JSON omits an empty list


@pytest.mark.parametrize("bad", [[], "traces", None, {"traces": "x"}, {"traces": {"a": 1}}])
def test_what_is_not_a_search_answer_is_an_error(bad):
    with pytest.raises(otlp.OtlpError):
        tempo_pull.found_traces(bad, 10)


def _whole(found: Found, *more: Found) -> Found:
    """What :func:`to_fetch` makes of a trace the searches found: every summary said of it."""
    return Found(found.trace_id, (found.summary, *(m.summary for m in more)))


def test_traces_stored_whole_are_not_fetched_again_until_they_change():
    a, b, c = (Found(f"{i:032x}", ("1", 10, 2)) for i in range(1, 4))
    seen = Seen(10)
    assert tempo_pull.to_fetch([[a, b], [b, c]], seen, 10) == ([_whole(a), _whole(b, b), _whole(c)], 0)
    seen.add(_whole(a))
    seen.add(_whole(b))
    grown = Found(b.trace_id, ("1", 12, 3))
    assert tempo_pull.to_fetch([[a, grown, c]], seen, 10) == ([_whole(grown), _whole(c)], 1)
    assert tempo_pull.to_fetch([[a, grown, c]], seen, 1) == ([_whole(grown)], 1)
    blank = Found(a.trace_id, (None, None, None))  # nothing to compare: fetched (dedup holds)
    seen.add(_whole(blank))
    assert tempo_pull.to_fetch([[blank]], seen, 10) == ([_whole(blank)], 0)


def test_a_trace_that_grows_by_a_span_that_did_not_fail_is_fetched_again():
    errors, every = Found("1" * 32, ("1", 10, 1)), Found("1" * 32, ("1", 10, 3))
    seen = Seen(10)
    [first], _ = tempo_pull.to_fetch([[errors], [every]], seen, 10)
    seen.add(first)
    assert tempo_pull.to_fetch([[errors], [every]], seen, 10) == ([], 1)
    more = Found("1" * 32, ("1", 10, 4))  # the error search says the same; the other does not
    assert tempo_pull.to_fetch([[errors], [more]], seen, 10) == ([_whole(errors, more)], 0)


def test_the_seen_traces_are_bounded_oldest_out():
    seen = Seen(3)
    items = [Found(f"{i:032x}", (i,)) for i in range(5)]
    for item in items:
        seen.add(item)
    assert len(seen) == 3 and items[0] not in seen and items[4] in seen


def _span_ids(message) -> list[tuple[str, str, str]]:
    return [(s.trace_id.hex(), s.span_id.hex(), s.name)
            for rs in message.resource_spans for ss in rs.scope_spans for s in ss.spans]


@pytest.mark.parametrize("doc", [tempo_docs.TRACE_V1, tempo_docs.TRACE_V2], ids=["v1-batches", "v2-trace"])
def test_the_documented_trace_answers_decode_with_their_base64_ids(doc):
    body = json.dumps(doc).encode()
    message = tempo_pull.decode_trace(body, "application/json; charset=utf-8", LIMITS)
    assert _span_ids(message) == [(tempo_docs.TRACE_ID, tempo_docs.SPAN_ID, "I am a span!")]
    span = message.resource_spans[0].scope_spans[0].spans[0]
    assert span.start_time_unix_nano == 1689969302000000000 and span.kind == 2


def test_hex_ids_and_old_names_are_understood_too():
    doc = copy.deepcopy(tempo_docs.TRACE_V1)
    rs = doc["batches"][0]
    rs["instrumentationLibrarySpans"] = rs.pop("scopeSpans")  # Tempo before 2.0
    span = rs["instrumentationLibrarySpans"][0]["spans"][0]
    span["traceId"], span["spanId"] = tempo_docs.TRACE_ID.upper(), tempo_docs.SPAN_ID
    span["parentSpanId"] = "AQIDBAUGBwg="
    message = tempo_pull.decode_trace(json.dumps(doc).encode(), "application/json", LIMITS)
    assert _span_ids(message) == [(tempo_docs.TRACE_ID, tempo_docs.SPAN_ID, "I am a span!")]
    assert message.resource_spans[0].scope_spans[0].spans[0].parent_span_id.hex() == "0102030405060708"


def test_protobuf_answers_decode_as_tempo_s_trace_is_otlp_s_traces_data():
    data = TracesData()
    span = data.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = bytes.fromhex(tempo_docs.TRACE_ID), bytes(range(1, 9)), "x"
    message = tempo_pull.decode_trace(data.SerializeToString(), "application/protobuf", LIMITS)
    assert _span_ids(message) == [(tempo_docs.TRACE_ID, "0102030405060708", "x")]


def test_a_bad_id_costs_its_span_not_the_trace():
    doc = copy.deepcopy(tempo_docs.TRACE_V1)
    spans = doc["batches"][0]["scopeSpans"][0]["spans"]
    spans.append({**spans[0], "spanId": "not an id!", "name": "bad"})
    message = tempo_pull.decode_trace(json.dumps(doc).encode(), "application/json", LIMITS)
    mapped = otlp.to_rows(message)
    assert [r[4] for r in mapped.rows] == ["I am a span!"] and mapped.rejected == 1


def _many_spans(count: int) -> bytes:
    spans = [{"traceId": tempo_docs.TRACE_ID, "spanId": f"{i + 1:016x}", "name": "s",
              "startTimeUnixNano": "1", "endTimeUnixNano": "2"} for i in range(count)]
    return json.dumps({"batches": [{"scopeSpans": [{"spans": spans}]}]}).encode()


@pytest.mark.parametrize("body, content_type", [
    (b"<html>Bad gateway</html>", "text/html"),
    (b"<html>Bad gateway</html>", "application/json"),
    (b"[1, 2]", "application/json"),
    (b'{"batches": "x"}', "application/json"),
    (b'{"batches": ["x"]}', "application/json"),
    (b'{"something": []}', "application/json"),
    (b"\x0a\xff\xff\xff\xff\x0f", "application/protobuf"),  # a length past the end
    (_many_spans(1_001), "application/json"),  # over the span limit
    (base64.b64encode(b"x" * 30), ""),
])
def test_hostile_trace_answers_are_errors(body, content_type):
    with pytest.raises(otlp.OtlpError):
        tempo_pull.decode_trace(body, content_type, LIMITS)


def test_deeply_nested_or_object_heavy_json_is_refused_by_the_ingest_limits():
    with pytest.raises(otlp.PayloadTooLarge):
        tempo_pull.decode_trace(_many_spans(900), "application/json", otlp_limits.Limits(1_000, 500))
    with pytest.raises(otlp.OtlpError):
        tempo_pull.decode_trace(b"[" * 100_000 + b"]" * 100_000, "application/json", LIMITS)


def test_only_the_asked_trace_s_spans_are_kept():
    rows = [("a" * 32, "1"), ("b" * 32, "2"), ("a" * 32, "3")]
    assert tempo_pull.of_trace(rows, "a" * 32) == ([rows[0], rows[2]], 1)
