"""GET /aiops/changes and the "What changed" panels, on SQLite and PostgreSQL, fed real OTLP: spans
made by the OpenTelemetry SDK (resources with ``k8s.pod.name``) and encoded by its OTLP encoder,
posted to ``/v1/traces``."""

from __future__ import annotations

import json
import time
from urllib.parse import quote, urlencode

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select

from telemetry.attributes import MAX_KEYS, MAX_VALUE_CHARS
from telemetry.db import db
from telemetry.models import Span
from tests.support.factories import add_incident
from tests.support.hostile_pages import HOSTILE_NAME, XSS_CALLER, assert_inert
from tests.support.otlp_http import PB, post

ENDPOINT = "GET /pay"


def sdk_spans(
    pod: str, count: int, duration_ms: float, start: float, host: str = "node-1", **attributes
) -> list:
    """``count`` SERVER spans of orders' ``GET /pay`` from ``pod``, by the real SDK."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource(
            {"service.name": "orders", "k8s.pod.name": pod, "host.name": host, "service.version": "1.4"}
        ),
        span_limits=SpanLimits(max_span_attributes=1000, max_attribute_length=10_000),
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for i in range(count):
        t0 = int((start + i * 0.5) * 1e9)
        span = tracer.start_span(
            "pay",
            kind=SpanKind.SERVER,
            start_time=t0,
            attributes={
                "http.request.method": "GET",
                "http.route": "/pay",
                "http.response.status_code": 200,
                "request.id": f"{pod}-{i}",
                **attributes,
            },
        )
        span.end(end_time=t0 + int((duration_ms + i) * 1e6))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def ingest(client, spans: list) -> None:
    response = post(client, encode_spans(spans).SerializeToString(), PB)
    assert response.status_code == 200, response.data


def seed(client, now: float, slow_pod: str = "shop-a") -> None:
    ingest(client, sdk_spans(slow_pod, 30, 400.0, now - 600) + sdk_spans("shop-b", 70, 20.0, now - 590))


def changes_url(**args) -> str:
    return f"/aiops/changes?{urlencode({'service': 'orders', 'endpoint': ENDPOINT, **args}, quote_via=quote)}"


def test_the_slow_pod_is_the_top_factor(app, client):
    now = time.time()
    seed(client, now)
    body = client.get(changes_url(since="1h")).get_json()
    assert (body["bad"], body["good"], body["spans"]) == (10, 90, 100)
    top = body["factors"][0]
    assert (top["field"], top["value"], top["source"]) == ("k8s.pod.name", "shop-a", "attribute")
    assert top["bad_share"] == 1.0 and top["good_share"] == round(20 / 90, 4) and top["bad_count"] == 10
    # every bad span ran on shop-a and node-1: named apart, though node-1 is no factor (all ran there)
    assert [(f["field"], f["value"]) for f in body["where"]] == [
        ("k8s.pod.name", "shop-a"),
        ("host.name", "node-1"),
        ("service.version", "1.4"),
    ]
    fields = {f["field"] for f in body["factors"]}
    assert "request.id" not in fields  # unique per span: explains nothing
    assert "host.name" not in fields and "service.version" not in fields  # alike on every span
    # the whole service compares the same spans here (one endpoint)
    whole = client.get("/aiops/changes?service=orders&since=1h").get_json()
    assert whole["endpoint"] is None and whole["factors"][0]["value"] == "shop-a"


def test_an_attribute_filter_restricts_the_sample(app, client):
    now = time.time()
    seed(client, now)
    body = client.get(changes_url(since="1h", attr="k8s.pod.name:shop-b")).get_json()
    assert body["spans"] == 70 and body["attr"] == "k8s.pod.name:shop-b"
    assert client.get(changes_url(since="1h", attr="service.version:1.4")).get_json()["spans"] == 100
    assert client.get(changes_url(since="1h", attr='we"ird\\key:x')).get_json()["spans"] == 0


def test_bad_parameters_are_400s_that_say_what_was_expected(app, client):
    for args, expected in (
        ({"since": "yesterday"}, "'since' must be a duration back from now (15m, 6h, 7d)"),
        ({"until": "soon"}, "'until' must be"),
        ({"attr": "no-colon"}, "'attr' must be key:value"),
        ({"since": "1h", "until": "2h"}, "'since' must not be after 'until'"),
    ):
        response = client.get(changes_url(**args))
        assert response.status_code == 400 and expected in response.get_json()["message"], args
    response = client.get("/aiops/changes?since=1h")
    assert response.status_code == 400 and "'service' is required" in response.get_json()["message"]


def test_a_span_with_a_thousand_attributes_keeps_the_cap_and_cut_values(app, client):
    many = {f"k{i:04d}": "v" for i in range(990)}
    ingest(client, sdk_spans("shop-a", 1, 10.0, time.time() - 60, long="x" * 5000, **many))
    with app.app_context():
        stored = json.loads(db.session.scalar(select(Span.attributes)))
    assert len(stored) == MAX_KEYS and stored["k8s.pod.name"] == "shop-a" and stored["host.name"] == "node-1"
    assert "http.request.method" not in stored and "service.name" not in stored  # columns already
    assert stored["http.route"] == "/pay" and stored["long"] == "x" * MAX_VALUE_CHARS


def test_hostile_values_are_escaped_on_the_endpoint_and_incident_pages(app, client):
    now = time.time()
    ingest(
        client,
        sdk_spans(HOSTILE_NAME, 30, 400.0, now - 600, tier=XSS_CALLER)
        + sdk_spans("shop-b", 70, 20.0, now - 590, tier="free"),
    )
    page = client.get(f"/services/orders/endpoints/{quote(ENDPOINT)}?since=1h")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert_inert(html)
    assert 'id="changes-card"' in html and "k8s.pod.name" in html
    assert "&lt;img src=x onerror=" in html and "&lt;script&gt;" in html
    add_incident(
        app, "INC-CHG", root_service="orders", root_endpoint=ENDPOINT, at=now, first_detected=now - 300
    )
    incident = client.get("/incidents/INC-CHG").get_data(as_text=True)
    assert_inert(incident)
    assert 'id="changes-card"' in incident and "&lt;img src=x onerror=" in incident


def test_export_and_the_tempo_api_carry_the_stored_attributes(app, client):
    spans = sdk_spans("shop-a", 1, 10.0, time.time() - 60, tier="gold")
    ingest(client, spans)
    trace_id = format(spans[0].context.trace_id, "032x")
    body = client.get(f"/api/traces/{trace_id}").get_json()
    [span] = body["batches"][0]["scopeSpans"][0]["spans"]
    attributes = {kv["key"]: kv["value"] for kv in span["attributes"]}
    assert attributes["k8s.pod.name"] == {"stringValue": "shop-a"} and attributes["tier"] == {
        "stringValue": "gold"
    }
    assert attributes["http.request.method"] == {"stringValue": "GET"}
    from telemetry.export.spans import readable_spans
    from tests.support.factories import SPAN_FIELDS

    with app.app_context():
        row = db.session.execute(
            select(*(getattr(Span, f) for f in SPAN_FIELDS)).where(Span.service == "orders")
        ).one()
    [out] = readable_spans([tuple(row)])
    assert out.attributes["k8s.pod.name"] == "shop-a" and out.attributes["request.id"] == "shop-a-0"


def test_the_trace_search_filters_on_a_stored_attribute(app, client):
    now = time.time()
    ingest(client, sdk_spans("shop-a", 3, 400.0, now - 600) + sdk_spans("shop-b", 4, 20.0, now - 590))
    found = client.get("/aiops/traces?since=1h&attr=k8s.pod.name:shop-b").get_json()["traces"]
    assert len(found) == 4
    assert len(client.get("/aiops/traces?since=1h&attr=tier:none").get_json()["traces"]) == 0
    assert len(client.get("/aiops/traces?since=1h&service=orders&attr=").get_json()["traces"]) == 7
    response = client.get("/aiops/traces?since=1h&attr=nocolon")
    assert response.status_code == 400 and "'attr' must be key:value" in response.get_json()["message"]
    page = client.get("/traces?since=1h&attr=k8s.pod.name:shop-a").get_data(as_text=True)
    assert page.count("/traces/") >= 3 and 'value="k8s.pod.name:shop-a"' in page
