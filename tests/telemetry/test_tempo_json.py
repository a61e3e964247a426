"""Stored spans in Tempo's JSON shapes (pure): values, ids, kinds, batches."""

from __future__ import annotations

import base64

from telemetry import tempo_json
from telemetry.traceql import fields_of, parse, trace_facts
from tests.support.factories import span


def test_any_value_follows_the_protobuf_json_mapping():
    assert tempo_json.any_value("a") == {"stringValue": "a"}
    assert tempo_json.any_value(503) == {"intValue": "503"}  # int64: a string
    assert tempo_json.any_value(1.5) == {"doubleValue": 1.5}
    assert tempo_json.any_value(True) == {"boolValue": True}


def test_batches_group_spans_by_service_in_order_of_appearance():
    a = span("x", service="a")
    b = span("y", service="b", parent=a)
    c = span("z", service="a", parent=b)
    c.kind = 9  # not an OTLP kind: unspecified
    batches = tempo_json.trace_batches([a, b, c])["batches"]
    services = [b["resource"]["attributes"][0]["value"]["stringValue"] for b in batches]
    assert services == ["a", "b"]
    spans = batches[0]["scopeSpans"][0]["spans"]
    assert [s["spanId"] for s in spans] == [base64.b64encode(bytes.fromhex(x.span_id)).decode()
                                           for x in (a, c)]
    assert spans[1]["kind"] == "SPAN_KIND_UNSPECIFIED"


def test_a_search_entry_shows_the_queried_attributes_but_not_name_or_duration():
    s = span("checkout", 12.5, service="shop", status_code=200, start_time=1.25)
    query = parse('{ name = "checkout" && duration > 1ms && resource.service.name = "shop" '
                  '&& kind = server }')
    entry = tempo_json.search_trace(trace_facts([s]), [s], fields_of(query), 3)
    shown = entry["spanSet"]["spans"][0]
    assert shown["attributes"] == [{"key": "service.name", "value": {"stringValue": "shop"}},
                                   {"key": "kind", "value": {"stringValue": "server"}}]
    assert shown["startTimeUnixNano"] == "1250000000" and shown["durationNanos"] == "12500000"
    assert entry["durationMs"] == 12  # Tempo's durationMs is a whole number (round half to even)


def test_the_trace_json_is_protobuf_s_json_mapping_of_otlp():
    """protobuf's own JSON parser reads the answer as OTLP TracesData (unknown fields would fail),
    and gets the ids and times back."""
    from google.protobuf import json_format
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    root = span("checkout", 12.5, start_time=1.25)
    failed = span("payment", 3.0, parent=root, status_code=503, exception_type="E", exception_message="m")
    answer = tempo_json.trace_batches([root, failed])
    data = json_format.ParseDict({"resourceSpans": answer["batches"]}, TracesData())
    spans = data.resource_spans[0].scope_spans[0].spans
    assert [s.span_id.hex() for s in spans] == [root.span_id, failed.span_id]
    assert spans[1].parent_span_id.hex() == root.span_id and spans[1].trace_id.hex() == root.trace_id
    assert spans[0].end_time_unix_nano - spans[0].start_time_unix_nano == 12_500_000
    assert spans[1].status.code == 2 and spans[1].events[0].name == "exception"
    assert TracesData.FromString(tempo_json.trace_protobuf([root, failed])) == data
