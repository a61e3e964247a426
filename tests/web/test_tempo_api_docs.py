"""Our ``GET /api/search`` and ``GET /api/traces/<id>`` answers beside the example answers of Tempo's
HTTP API documentation (:mod:`tests.support.tempo_docs`, copied from the docs): every field an
example has, ours has too, with the same JSON type, at every depth; what ours adds is named here.
This is the compatibility check: against Tempo's documentation, not against a running Tempo."""

from __future__ import annotations

import pytest

from telemetry import tempo_pull
from tests.conftest import sqlite_only
from tests.support import tempo_docs
from tests.support.factories import client as client_span
from tests.support.factories import insert_spans, span
from tests.support.tempo_docs import shape

NOW = 1_800_000_000.0
WINDOW = {"start": int(NOW - 600), "end": int(NOW + 600)}

# Fields of ours that the examples lack, and why they are there.
EXTRA = {
    "traces[].spanSets[].spans[].name",  # Tempo's search span has a name (tempopb.Span); the example omits it
    "traces[].spanSet.spans[].name",
    "traces[].spanSet",  # older clients read the first span set here (the push guide's example has it)
    "metrics.inspectedSpans",  # our own figure; Tempo's metrics are open-ended
    "metrics.inspectedTraces",  # in the tags example, not the TraceQL one
    "batches[].scopeSpans[].spans[].parentSpanId",  # OTLP fields the example's one root span lacks
    "batches[].scopeSpans[].spans[].events",
    "batches[].scopeSpans[].spans[].status.code",
    "batches[].scopeSpans[].spans[].status.message",
}
# Fields of the examples ours need not have: Tempo's block and cache figures, the scope's name.
OPTIONAL = {"metrics.totalBlocks", "metrics.inspectedBytes", "metrics.backendReads", "metrics.backendBytes",
            "metrics.additionalMetrics", "metrics.completedJobs", "metrics.totalJobs",
            "batches[].scopeSpans[].scope.name", "batches[].scopeSpans[].scope.version"}


# An attribute's value (OTLP's AnyValue in protobuf's JSON mapping: a 64-bit integer is a string).
ANY_VALUE = {"stringValue": str, "intValue": str, "doubleValue": (int, float), "boolValue": bool}


def _any_value(value) -> bool:
    return (isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ANY_VALUE
            and isinstance(next(iter(value.values())), ANY_VALUE[next(iter(value))]))


def compare(ours, theirs, path: str = "") -> list[str]:
    """Where the shape of ``ours`` departs from the example ``theirs``."""
    if _any_value(theirs):
        return [] if _any_value(ours) else [f"{path}: {ours!r} is not an attribute value"]
    if isinstance(theirs, dict):
        if not isinstance(ours, dict):
            return [f"{path or '.'}: {shape(ours)} where the example has an object"]
        problems = [f"{path}.{k}".lstrip(".") + ": missing" for k in theirs
                    if k not in ours and f"{path}.{k}".lstrip(".") not in OPTIONAL]
        problems += [f"{path}.{k}".lstrip(".") + ": not in the example" for k in ours
                     if k not in theirs and f"{path}.{k}".lstrip(".") not in EXTRA]
        for key in theirs.keys() & ours.keys():
            problems += compare(ours[key], theirs[key], f"{path}.{key}")
        return problems
    if isinstance(theirs, list):
        if not isinstance(ours, list):
            return [f"{path}: {shape(ours)} where the example has a list"]
        return [p for item in ours for p in compare(item, theirs[0], path + "[]")] if theirs else []
    if type(ours) is not type(theirs):
        return [f"{path}: {type(ours).__name__} where the example has {type(theirs).__name__}"]
    return []


@pytest.fixture
def failing_trace(app):
    root = span("update-billing", 557.0, start_time=NOW, service="shop-backend")
    call = client_span(root, "billing", 450.0, start_time=NOW + 0.03, status_code=503)
    insert_spans(app, [root, call])
    return root, call


@sqlite_only
def test_a_traceql_search_answers_as_the_documented_example(client, failing_trace):
    body = client.get("/api/search", query_string={**WINDOW, "q": "{ status=error }"}).get_json()
    assert compare(body, tempo_docs.TRACEQL_SEARCH) == []
    assert compare(body, tempo_docs.SEARCH_WITH_SPANSET) == []
    root, call = failing_trace
    entry = body["traces"][0]
    assert (entry["traceID"], entry["rootServiceName"], entry["rootTraceName"], entry["durationMs"]) == (
        root.trace_id, "shop-backend", "update-billing", 557)
    assert entry["spanSets"][0]["spans"][0]["spanID"] == call.span_id
    assert entry["spanSets"][0]["spans"][0]["attributes"] == (
        tempo_docs.TRACEQL_SEARCH["traces"][0]["spanSets"][0]["spans"][0]["attributes"])


@sqlite_only
def test_a_search_without_q_answers_as_the_documented_tags_example(client, failing_trace):
    body = client.get("/api/search", query_string=WINDOW).get_json()
    # The tags example's traces have no span sets; ours always do (a search by time is `{}`).
    assert compare(body, tempo_docs.TAGS_SEARCH) == ["traces[].spanSets: not in the example"]
    assert len(body["traces"]) == 1


@sqlite_only
def test_a_trace_answers_as_the_documented_example(client, failing_trace):
    root, _ = failing_trace
    body = client.get(f"/api/traces/{root.trace_id}").get_json()
    assert compare(body, tempo_docs.TRACE_V1) == []
    first = body["batches"][0]["scopeSpans"][0]["spans"][0]
    assert tempo_pull.trace_id_of(first["traceId"]) == root.trace_id  # base64, as the example's


def test_the_documented_examples_are_what_the_pull_source_reads():
    """The other direction: what the puller takes from a Tempo answer is in the examples."""
    assert tempo_pull.found_traces(tempo_docs.TRACEQL_SEARCH, 10)[0][0].trace_id == (
        tempo_docs.TRACEQL_SEARCH["traces"][0]["traceID"])
    assert len(tempo_pull.found_traces(tempo_docs.TAGS_SEARCH, 10)[0]) == 2
