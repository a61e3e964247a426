"""Hostile input, generated: the OTLP decoders and every JSON endpoint (Hypothesis).

At the top of ``tests/``: it crosses telemetry's decoders and every package's routes.

What must hold for any input:

- no 5xx and no exception but the decoders' own :class:`~telemetry.otlp.OtlpError`;
- a rejected request stores nothing and changes nothing;
- decoding cost is bounded: the wire scan counts exactly what the decoder
  builds, so the item limits bound memory, and the process's peak memory
  stays bounded over the whole run;
- the server stays healthy (``/health`` answers 200 afterwards).

Examples are bounded (``max_examples``, and messages of at most two resources,
scopes and events, three spans and four attributes: ample for repeated fields,
and generated five times faster than larger ones) so the suite takes seconds;
``HYPOTHESIS_PROFILE=deep`` runs many more. The coverage-guided atheris run is a
subprocess of its own: ``tests/e2e/test_fuzz_atheris.py``.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import string
import zlib
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from sqlalchemy import func, select

from telemetry import otlp, otlp_limits
from telemetry.rows import UNMATCHED
from tests.conftest import dispose_app, make_app
from tests.support.factories import add_incident
from tests.support.otlp_http import decoded_items
from tests.support.traceql_text import queries

settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("deep", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

LIMITS = otlp_limits.Limits(max_records=500, max_items=5_000)
CHECKS = otlp.SpanChecks(now=1.7e9, max_attributes=20, max_events=5, own_services=frozenset({"shop"}))


# -- strategies ---------------------------------------------------------------------------

texts = st.text(max_size=40)  # any code point but lone surrogates (protobuf strings are UTF-8)
any_values = st.recursive(
    st.one_of(
        texts.map(lambda v: common_pb2.AnyValue(string_value=v)),
        st.integers(-(2**63), 2**63 - 1).map(lambda v: common_pb2.AnyValue(int_value=v)),
        st.floats(allow_nan=True).map(lambda v: common_pb2.AnyValue(double_value=v)),
        st.booleans().map(lambda v: common_pb2.AnyValue(bool_value=v)),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(
            lambda vs: common_pb2.AnyValue(array_value=common_pb2.ArrayValue(values=vs))),
        st.lists(st.tuples(texts, inner), max_size=4).map(
            lambda kvs: common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(
                values=[common_pb2.KeyValue(key=k, value=v) for k, v in kvs]))),
    ),
    max_leaves=8,
)
key_values = st.lists(st.builds(common_pb2.KeyValue, key=st.one_of(texts, st.sampled_from(
    ["http.route", "http.response.status_code", "http.method", "service.name", "peer.service"])),
    value=any_values), max_size=4)
ids = st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=20))
span_ids = st.one_of(st.binary(min_size=8, max_size=8), st.binary(max_size=10))
times = st.integers(0, 2**64 - 1)
events = st.builds(trace_pb2.Span.Event, name=texts, time_unix_nano=times, attributes=key_values)
spans = st.builds(
    trace_pb2.Span, trace_id=ids, span_id=span_ids, parent_span_id=span_ids, name=texts,
    kind=st.integers(0, 5), start_time_unix_nano=times, end_time_unix_nano=times,
    attributes=key_values, events=st.lists(events, max_size=2),
    status=st.builds(trace_pb2.Status, code=st.integers(0, 2), message=texts),
)
requests_ = st.lists(
    st.builds(trace_pb2.ResourceSpans, resource=st.builds(resource_pb2.Resource, attributes=key_values),
              scope_spans=st.lists(st.builds(trace_pb2.ScopeSpans, spans=st.lists(spans, max_size=3)),
                                   max_size=2)),
    max_size=2,
).map(lambda rs: ExportTraceServiceRequest(resource_spans=rs))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
              st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)


def _otlp_shaped_json() -> st.SearchStrategy:
    """JSON near the OTLP shape, with wrong types and values where the decoder must cope."""
    span = st.fixed_dictionaries({}, optional={
        "traceId": st.one_of(st.text(string.hexdigits, max_size=34), json_values),
        "spanId": st.one_of(st.text(string.hexdigits, max_size=18), json_values),
        "parentSpanId": st.one_of(st.text(string.hexdigits, max_size=18), json_values),
        "name": json_values, "kind": json_values, "startTimeUnixNano": json_values,
        "endTimeUnixNano": json_values, "attributes": json_values, "events": json_values,
        "status": json_values, "links": json_values,
    })
    scope = st.fixed_dictionaries({}, optional={"spans": st.one_of(st.lists(span, max_size=3), json_values)})
    rs = st.fixed_dictionaries({}, optional={
        "resource": json_values, "scopeSpans": st.one_of(st.lists(scope, max_size=3), json_values)})
    return st.fixed_dictionaries({}, optional={
        "resourceSpans": st.one_of(st.lists(rs, max_size=3), json_values)})


# -- the pure decoders --------------------------------------------------------------------


def _decode_protobuf(body: bytes) -> None:
    """The ingest path for protobuf: scan, decode, map; only OtlpError may escape."""
    try:
        otlp_limits.scan_protobuf(body, LIMITS)
        message = otlp.parse(body, otlp.PROTOBUF)
    except otlp.OtlpError:
        return
    otlp.to_rows(message, CHECKS)


@given(requests_)
def test_the_scan_counts_exactly_what_the_decoder_builds(request):
    body = request.SerializeToString()
    limits = otlp_limits.Limits(max_records=10**6, max_items=10**6)
    assert otlp_limits.scan_protobuf(body, limits) == decoded_items(request)
    mapped = otlp.to_rows(otlp.parse_protobuf(body), CHECKS) if body else otlp.Mapped()
    assert len(mapped.rows) + mapped.rejected == sum(len(ss.spans) for rs in request.resource_spans
                                                     for ss in rs.scope_spans)


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_escape_the_decoder(body):
    _decode_protobuf(body)


@given(requests_, st.data())
def test_mutated_valid_bodies_never_escape_the_decoder(request, data):
    body = bytearray(request.SerializeToString())
    for _ in range(data.draw(st.integers(1, 4))):
        if not body:
            break
        at = data.draw(st.integers(0, len(body) - 1))
        op = data.draw(st.sampled_from(["flip", "cut", "dup", "bad-utf8"]))
        if op == "flip":
            body[at] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del body[at:]
        elif op == "dup":
            body[at:at] = body[at:at + 16]
        else:
            body[at:at] = b"\xff\xed\xa0\x80"
    _decode_protobuf(bytes(body))


@given(st.one_of(json_values, _otlp_shaped_json()), st.sampled_from(["", "\\ud800", "\\udfff\\ud800"]))
def test_arbitrary_json_never_escapes_the_decoder(doc, junk):
    text = json.dumps(doc)
    if junk and '"' in text:  # put a lone surrogate escape into some string
        at = text.index('"') + 1
        text = text[:at] + junk + text[at:]
    try:
        message = otlp.parse_json(text.encode(), object_hook=otlp_limits.json_object_counter(LIMITS))
    except otlp.OtlpError:
        return
    otlp.to_rows(message, CHECKS)


@given(st.binary(max_size=4096), st.sampled_from(["gzip", "deflate", None]), st.booleans())
def test_read_body_only_raises_its_own_errors(raw, coding, compress):
    if compress and coding == "gzip":
        raw = gzip.compress(raw)[: len(raw) + 10]
    elif compress and coding == "deflate":
        raw = zlib.compress(raw)
    try:
        out = otlp.read_body([raw[:100], raw[100:]], coding=coding, limit=2048)
    except otlp.OtlpError:
        return
    assert len(out) <= 2048


# -- the HTTP endpoints -------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'aiops.db'}"
    app = make_app(url, PROPAGATE_EXCEPTIONS=False, AIOPS_OTLP_MAX_SPANS=500, AIOPS_OTLP_MAX_ITEMS=5_000,
                   AIOPS_API_MAX_BODY_BYTES=4096, AIOPS_DEMO_WORK=0.0)
    yield app
    dispose_app(app)


def _state(app) -> tuple:
    """Everything a rejected request must leave alone: stored spans (not the recorder's own of the
    product's requests), faults, incidents and their timelines."""
    from aiops.store.models import Incident
    from simulation.models import Fault
    from telemetry.db import db
    from telemetry.models import Span

    with app.app_context():
        # The recorder stores a request no route matched (a 404 page) under the demo's service, and
        # its buffer may write the previous example's span at any moment: not a state change either.
        spans = db.session.scalar(select(func.count()).select_from(Span).where(
            Span.service != "aiops", Span.endpoint != UNMATCHED))
        faults = sorted((f.endpoint, f.delay_ms, f.error_rate, f.timeout)
                        for f in db.session.scalars(select(Fault)))
        incidents = sorted((i.id, i.status, len(i.timeline or []))
                           for i in db.session.scalars(select(Incident)))
        db.session.remove()
    return spans, faults, incidents


def _assert_sound(app, response, before) -> None:
    assert response.status_code < 500, (response.status_code, response.data[:300])
    if response.status_code >= 400:
        assert response.is_json or response.mimetype in (otlp.PROTOBUF, otlp.JSON, "text/html")
        assert _state(app) == before


SIMULATE = ["delay", "error", "timeout", "clear", "remediate"]
params = st.dictionaries(st.sampled_from(["endpoint", "duration", "rate", "limit", "status", "channel",
                                          "incident", "refresh", "x"]),
                         st.one_of(st.text(max_size=12), st.sampled_from(["payment", "1_000", "true", "NaN",
                                                                          "-1", "1e309", "0.5"])), max_size=4)


@given(st.sampled_from(SIMULATE), params, st.one_of(st.none(), json_values))
def test_simulate_endpoints(fuzz_app, name, query, body):
    client = fuzz_app.test_client()
    before = _state(fuzz_app)
    r = client.post(f"/simulate/{name}", query_string=query, json=body)
    _assert_sound(fuzz_app, r, before)
    client.post("/simulate/clear")


@given(st.sampled_from(["acknowledge", "resolve"]), st.one_of(st.just("INC-1-1"), st.text(max_size=30)),
       st.one_of(st.none(), json_values, st.binary(max_size=64),
                 st.fixed_dictionaries({}, optional={"by": json_values, "comment": json_values})))
def test_incident_transitions(fuzz_app, action, incident_id, body):
    client = fuzz_app.test_client()
    if client.get("/aiops/incidents/INC-1-1").status_code == 404:
        add_incident(fuzz_app, "INC-1-1")
    before = _state(fuzz_app)
    path = f"/aiops/incidents/{incident_id}/{action}"
    r = client.post(path, data=body) if isinstance(body, bytes) else client.post(path, json=body)
    _assert_sound(fuzz_app, r, before)


@given(queries, st.dictionaries(st.sampled_from(["start", "end", "limit", "spss", "tags"]),
                                st.one_of(st.text(max_size=12), st.sampled_from(["0", "1", "20", "1e309",
                                                                               "1800000000"])), max_size=3))
def test_trace_search(fuzz_app, q, query):
    before = _state(fuzz_app)
    _assert_sound(fuzz_app, fuzz_app.test_client().get("/api/search", query_string={**query, "q": q}), before)


@given(st.text(max_size=40))
def test_trace_lookups(fuzz_app, trace_id):
    r = fuzz_app.test_client().get("/api/traces/" + trace_id)
    # 308: an id starting with "/" makes "//", which the router answers with the merged path
    assert r.status_code in (200, 308, 400, 404), r.status_code


@given(params, st.sampled_from(["/aiops/notifications", "/aiops/incidents", "/aiops/metrics", "/",
                                "/simulate/faults", "/health", "/metrics"]))
def test_reads(fuzz_app, query, path):
    before = _state(fuzz_app)
    _assert_sound(fuzz_app, fuzz_app.test_client().get(path, query_string=query), before)


times_ = st.one_of(st.text(max_size=14), st.sampled_from(["15m", "7d", "0", "1e309", "999999999999", "-1h",
                                                          "2026-02-30T00:00:00Z", "10000-01-01", "NaN"]))


@given(st.text(max_size=20), st.text(max_size=40),
       st.dictionaries(st.sampled_from(["since", "until", "step"]), times_, max_size=3))
def test_series_and_endpoint_pages(fuzz_app, service, endpoint, query):
    client = fuzz_app.test_client()
    before = _state(fuzz_app)
    _assert_sound(fuzz_app, client.get("/aiops/series", query_string={**query, "service": service,
                                                                       "endpoint": endpoint}), before)
    r = client.get(f"/services/{quote(service, safe='')}/endpoints/{quote(endpoint, safe='/')}",
                   query_string=query)
    assert r.status_code in (308, 404) or r.status_code < 500, r.status_code  # 404: an empty name


@given(st.text(max_size=40))
def test_incident_lookups(fuzz_app, incident_id):
    r = fuzz_app.test_client().get(f"/aiops/incidents/{incident_id}")
    assert r.status_code in (404, 308, 200) or r.status_code < 500


@given(st.one_of(st.binary(max_size=2048), requests_.map(lambda m: m.SerializeToString())),
       st.sampled_from([otlp.PROTOBUF, otlp.JSON, "text/plain", ""]),
       st.sampled_from(["", "gzip", "deflate", "br"]))
def test_otlp_ingest(fuzz_app, body, content_type, coding):
    before = _state(fuzz_app)
    headers = {"Content-Type": content_type} if content_type else {}
    if coding:
        headers["Content-Encoding"] = coding
    r = fuzz_app.test_client().post("/v1/traces", data=body, headers=headers)
    _assert_sound(fuzz_app, r, before)


def test_the_process_stayed_bounded_and_healthy(fuzz_app):
    """After everything above: memory bounded, and the server answers."""
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert peak_mb < 1500, f"the test process peaked at {peak_mb:.0f} MB"
    assert fuzz_app.test_client().get("/health").status_code == 200
