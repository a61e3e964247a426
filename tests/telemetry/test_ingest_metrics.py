"""POST /v1/metrics on a real HTTP server (loopback), both backends: the real OpenTelemetry SDK's
OTLPMetricExporter (protobuf, gzip or not) stores gauges, counters (and their rates), histograms (and
their quantiles); the traces' token, caps and partial success; GET /aiops/metrics/points reads them
back, filtered and paged, and refuses bad filters."""

from __future__ import annotations

import gzip
import json

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from sqlalchemy import func, select

from telemetry import otlp
from telemetry.db import db
from telemetry.models import MetricPoint
from tests.conftest import dispose_app, make_app
from tests.support.loopback import LoopbackServer
from tests.telemetry.test_otlp_metrics import counter, kv, request


@pytest.fixture
def server(app):
    s = LoopbackServer(app)
    yield s
    s.stop()


def points(server, **params):
    answer = requests.get(server.url + "/aiops/metrics/points", params=params, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.parametrize("compression", [Compression.Gzip, Compression.NoCompression])
def test_the_sdk_exporter_round_trip(server, compression):
    resource = Resource.create({"service.name": "orders", "k8s.pod.name": "orders-7d9f"})
    exporter = OTLPMetricExporter(endpoint=server.url + "/v1/metrics", compression=compression)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("test")
    requests_total = meter.create_counter("http.requests")
    duration = meter.create_histogram("http.server.duration", unit="ms")
    meter.create_observable_gauge("process.cpu.utilization", callbacks=[lambda _: [Observation(0.42)]])
    try:
        requests_total.add(10, {"route": "/pay"})
        for ms in (5, 8, 12, 30, 250):
            duration.record(ms)
        assert provider.force_flush(30_000)
        requests_total.add(5, {"route": "/pay"})
        assert provider.force_flush(30_000)
    finally:
        provider.shutdown()
    got = points(server, service="orders", limit=1000)["points"]
    names = {p["name"] for p in got}
    assert {
        "http.requests",
        "http.requests.rate",
        "process.cpu.utilization",
        "http.server.duration.count",
        "http.server.duration.sum",
        "http.server.duration.p50",
        "http.server.duration.p95",
    } <= names
    totals = sorted(p["value"] for p in got if p["name"] == "http.requests")
    assert totals[0] == 10.0 and set(totals[1:]) == {15.0}  # shutdown exports once more
    assert all(p["attributes"] == {"route": "/pay"} for p in got if p["name"] == "http.requests")
    rates = [p for p in got if p["name"] == "http.requests.rate"]
    assert max(p["value"] for p in rates) > 0 and {p["pod"] for p in rates} == {"orders-7d9f"}
    cpu = points(server, name="process.cpu.utilization")["points"]
    assert {p["value"] for p in cpu} == {0.42}
    assert len(points(server, name="http.server.duration.*", limit=1000)["points"]) >= 10
    assert points(server, pod="elsewhere")["points"] == []


def post(server, body: bytes, content_type="application/x-protobuf", **headers):
    return requests.post(
        server.url + "/v1/metrics", data=body, timeout=30, headers={"Content-Type": content_type, **headers}
    )


def stored(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(MetricPoint))


def now_request(*metrics):
    return request(*metrics)


def test_partial_success_bad_input_and_json(app, server):
    import time

    at = int(time.time())
    crowded = counter(1, at)
    crowded.sum.data_points[0].attributes.extend([kv(f"k{i}", "v") for i in range(40)])
    answer = post(server, request(counter(1, at), crowded).SerializeToString())
    assert answer.status_code == 200
    partial = otlp.parse_protobuf(answer.content, type(otlp_response()))
    assert partial.partial_success.rejected_data_points == 1
    assert "more than 32 attributes" in partial.partial_success.error_message
    assert stored(app) == 1
    # Every point invalid, garbage, a wrong type: 400, nothing stored.
    assert post(server, request(crowded).SerializeToString()).status_code == 400
    assert post(server, b"\x0a\xff\xff").status_code == 400
    assert post(server, b'{"resourceMetrics": ["x"]}', "application/json").status_code == 400
    assert stored(app) == 1
    # OTLP/JSON, gzip, with an exemplar's hex ids: stored, answered in JSON.
    doc = otlp.to_json_dict(request(counter(7, at, name="jobs")))
    doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"]["dataPoints"][0]["exemplars"] = [
        {"traceId": "0af7651916cd43dd8448eb211c80319c", "asDouble": 1}
    ]
    answer = post(
        server, gzip.compress(json.dumps(doc).encode()), "application/json", **{"Content-Encoding": "gzip"}
    )
    assert answer.status_code == 200 and answer.json() == {}
    assert [p["value"] for p in points(server, name="jobs")["points"]] == [7.0]


def otlp_response():
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse

    return ExportMetricsServiceResponse()


def test_the_token_and_the_point_cap(db_url):
    app = make_app(db_url, AIOPS_INGEST_TOKEN="s3cret", AIOPS_OTLP_MAX_METRIC_POINTS=2)
    server = LoopbackServer(app)
    try:
        import time

        at = int(time.time())
        body = request(counter(1, at), counter(2, at, name="b")).SerializeToString()
        assert post(server, body).status_code == 401
        assert post(server, body, Authorization="Bearer s3cret").status_code == 200
        three = request(
            counter(1, at), counter(2, at, name="b"), counter(3, at, name="c")
        ).SerializeToString()
        answer = post(server, three, Authorization="Bearer s3cret")
        assert answer.status_code == 413 and b"AIOPS_OTLP_MAX_METRIC_POINTS" in answer.content
        assert stored(app) == 2
    finally:
        server.stop()
        dispose_app(app)


@pytest.mark.parametrize(
    "bad",
    [
        {"from": "yesterday"},
        {"limit": "0"},
        {"cursor": "x"},
        {"service": "a\x00"},
    ],
)
def test_the_read_api_refuses_bad_filters(client, bad):
    answer = client.get("/aiops/metrics/points", query_string=bad)
    assert answer.status_code == 400 and answer.get_json()["error"] == "Bad Request"


def test_from_after_to_is_an_empty_list_as_for_logs(client):
    window = {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01"}
    answer = client.get("/aiops/metrics/points", query_string=window)
    assert answer.status_code == 200 and answer.get_json()["points"] == []


def test_the_read_api_pages_newest_first(app, client):
    from telemetry.store import insert_metrics

    with app.app_context():
        insert_metrics(
            db.engine, [(100.0 + i, "orders", "p1", None, "cpu", None, float(i)) for i in range(5)]
        )
    first = client.get("/aiops/metrics/points?limit=3&from=101").get_json()
    assert [p["value"] for p in first["points"]] == [4.0, 3.0, 2.0] and first["next"]
    rest = client.get(f"/aiops/metrics/points?limit=3&from=101&cursor={first['next']}").get_json()
    assert [p["value"] for p in rest["points"]] == [1.0] and rest["next"] is None
