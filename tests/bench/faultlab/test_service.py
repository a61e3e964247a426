"""A fault lab service's own faults, as the product will see them in the spans.

Two real services in this process (the real Flask app, werkzeug server and
OpenTelemetry instrumentation, spans kept in memory): ``front`` calls
``back``, whose faults are switched as the lab switches them.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from werkzeug.serving import make_server

from bench.faultlab import service, topology
from tests.e2e.server import free_port

TOPOLOGY = topology.parse({"service": [
    {"name": "front", "endpoint": [{"name": "page", "share": 1, "work_ms": 0,
                                    "calls": [{"to": "back.data"}]}]},
    {"name": "back", "endpoint": [{"name": "data", "work_ms": 0, "jitter_ms": 0}]},
]})


@pytest.fixture(scope="module")
def system():
    spans = InMemorySpanExporter()
    back_port = free_port()
    servers, faults = [], {}
    providers = {}
    for name in ("back", "front"):
        providers[name] = TracerProvider(resource=Resource.create({"service.name": name}))
        providers[name].add_span_processor(SimpleSpanProcessor(spans))
    service.trace_calls(providers["front"], {"back": back_port})
    for name, port in (("back", back_port), ("front", free_port())):
        faults[name] = service.Faults()
        app = service.build_app(TOPOLOGY, name, service.Caller(TOPOLOGY, {"back": back_port}), faults[name])
        app.logger.disabled = True
        FlaskInstrumentor().instrument_app(app, tracer_provider=providers[name])
        server = make_server("127.0.0.1", port, app, threaded=True, request_handler=service.QuietHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield f"http://127.0.0.1:{servers[1].server_port}/page", faults["back"], spans
    RequestsInstrumentor().uninstrument()
    for server in servers:
        server.shutdown()


@pytest.fixture
def lab(system):
    url, back, spans = system
    back.clear()
    spans.clear()
    yield url, back, spans
    back.clear()


def get(url: str) -> tuple[int, dict]:
    """GET with urllib: the test's own call must not be traced (requests is instrumented here)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, {}


def status(span) -> int:
    """The HTTP status, under the old or the new semantic-convention name (the product reads both)."""
    return span.attributes.get("http.response.status_code", span.attributes.get("http.status_code"))


def by_kind(spans, kind: SpanKind) -> dict[str, object]:
    return {s.resource.attributes["service.name"]: s for s in spans.get_finished_spans() if s.kind == kind}


def test_healthy_calls_are_traced_across_services_with_peer_service(lab):
    url, _, spans = lab
    code, body = get(url)
    assert code == 200 and body["count"] == 2
    servers, client = by_kind(spans, SpanKind.SERVER), by_kind(spans, SpanKind.CLIENT)["front"]
    assert client.attributes["peer.service"] == "back"
    assert servers["back"].context.trace_id == servers["front"].context.trace_id
    assert servers["back"].parent.span_id == client.context.span_id


def test_exception_is_a_500_with_an_exception_event_and_fails_the_caller(lab):
    url, back, spans = lab
    back.handle({"op": "set", "kind": "exception", "params": {"endpoint": "data", "rate": 1.0}})
    assert get(url)[0] == 500
    servers = by_kind(spans, SpanKind.SERVER)
    assert servers["back"].status.status_code == StatusCode.ERROR
    assert status(servers["back"]) == 500
    assert [e.attributes["exception.type"] for e in servers["back"].events] == ["RuntimeError"]
    front_errors = [e.attributes["exception.type"] for e in servers["front"].events]
    assert front_errors == ["requests.exceptions.HTTPError"]


def test_wrong_answer_is_a_healthy_200_that_makes_the_caller_fail(lab):
    url, back, spans = lab
    back.handle({"op": "set", "kind": "wrong", "params": {"endpoint": "data"}})
    assert get(url)[0] == 500
    servers = by_kind(spans, SpanKind.SERVER)
    assert servers["back"].status.status_code == StatusCode.UNSET and not servers["back"].events
    assert status(servers["back"]) == 200
    assert [e.attributes["exception.type"] for e in servers["front"].events] == ["KeyError"]


def test_slow_code_path_adds_to_the_endpoints_own_time(lab):
    url, back, spans = lab
    back.handle({"op": "set", "kind": "slow", "params": {"endpoint": "data", "ms": 300}})
    assert get(url)[0] == 200
    back_span = by_kind(spans, SpanKind.SERVER)["back"]
    assert (back_span.end_time - back_span.start_time) / 1e6 >= 300


def _hog_threads() -> list[threading.Thread]:
    """The hog's own threads (other tests' threads may come and go meanwhile)."""
    return [t for t in threading.enumerate() if t.name.startswith("faultlab-cpu-hog-")]


def test_cpu_hog_runs_bounded_threads_until_cleared(lab):
    _, back, _ = lab
    assert _hog_threads() == []
    back.handle({"op": "set", "kind": "cpu", "params": {"duty": 0.5, "threads": 9}})
    assert len(_hog_threads()) == 4  # capped
    back.clear()
    assert _hog_threads() == []


def test_unknown_faults_are_refused(lab):
    _, back, _ = lab
    with pytest.raises(ValueError):
        back.handle({"op": "set", "kind": "meteor", "params": {}})
    with pytest.raises(ValueError):
        back.handle({"op": "set", "kind": "slow", "params": {"endpoint": "data", "seconds": 3}})


class _Refused:
    def call(self, call):
        raise service.requests.ConnectionError("refused")


class _Wrong:
    def call(self, call):
        raise KeyError("items")


def test_a_best_effort_call_absorbs_transport_failures_but_not_wrong_answers():
    call = topology.Call("back", "data", best_effort=True)
    assert service._absorbed(_Refused(), call) == 0
    with pytest.raises(KeyError):
        service._absorbed(_Wrong(), call)
