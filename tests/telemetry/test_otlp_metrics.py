"""OTLP metric points -> rows (telemetry.otlp_metrics, telemetry.metric_math): gauges, counters turned
into rates with resets, delta sums, histogram and exponential histogram quantiles, summaries, the
per-point rejects, OTLP/JSON with exemplars, and the wire scan's point count."""

from __future__ import annotations

import json

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from telemetry import metric_math as mm
from telemetry import otlp, otlp_limits
from telemetry.otlp_metrics import Cumulative, MetricChecks, count_points, to_metric_rows

S = 1_000_000_000
CUMULATIVE = m.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = m.AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA


def kv(key, value):
    return KeyValue(key=key, value=AnyValue(string_value=value))


def request(*metrics, service="orders", pod="orders-7d9f", host="node-1"):
    resource = Resource(
        attributes=[kv("service.name", service), kv("k8s.pod.name", pod), kv("host.name", host)]
    )
    return ExportMetricsServiceRequest(
        resource_metrics=[
            m.ResourceMetrics(resource=resource, scope_metrics=[m.ScopeMetrics(metrics=list(metrics))])
        ]
    )


def counter(value, at, start=1, temporality=CUMULATIVE, monotonic=True, name="http.requests"):
    point = m.NumberDataPoint(
        as_int=value, time_unix_nano=at * S, start_time_unix_nano=start * S, attributes=[kv("route", "/pay")]
    )
    return m.Metric(
        name=name, sum=m.Sum(data_points=[point], aggregation_temporality=temporality, is_monotonic=monotonic)
    )


def values(mapped):
    return {row[4]: row[6] for row in mapped.rows}


def test_a_gauge_is_one_series_of_its_resource():
    gauge = m.Metric(
        name="k8s.pod.cpu.usage",
        gauge=m.Gauge(data_points=[m.NumberDataPoint(as_double=0.25, time_unix_nano=100 * S)]),
    )
    (row,) = to_metric_rows(request(gauge)).rows
    assert row == (100.0, "orders", "orders-7d9f", "node-1", "k8s.pod.cpu.usage", None, 0.25)


def test_a_running_total_becomes_a_rate_and_a_reset_counts_from_zero():
    state = Cumulative()
    first = to_metric_rows(request(counter(100, 10)), state=state)
    assert values(first) == {"http.requests": 100.0}  # no rate before a second point
    assert values(to_metric_rows(request(counter(110, 20)), state=state))["http.requests.rate"] == 1.0
    # The process restarted at t=25: the total starts again, and what it counts is all new.
    assert (
        values(to_metric_rows(request(counter(10, 30, start=25)), state=state))["http.requests.rate"] == 2.0
    )
    # A total that fell without a new start is a reset too.
    assert values(to_metric_rows(request(counter(4, 32, start=25)), state=state))["http.requests.rate"] == 2.0
    # Series are told apart by their attributes and resource.
    other = to_metric_rows(request(counter(500, 40), pod="orders-2"), state=state)
    assert "http.requests.rate" not in values(other)


def test_delta_and_up_down_sums():
    assert values(to_metric_rows(request(counter(30, 20, start=10, temporality=DELTA)))) == {
        "http.requests": 30.0,
        "http.requests.rate": 3.0,
    }
    assert values(to_metric_rows(request(counter(-3, 20, monotonic=False)))) == {"http.requests": -3.0}


def histogram(counts, bounds, total, at=20, start=10, temporality=DELTA, **extra):
    point = m.HistogramDataPoint(
        time_unix_nano=at * S,
        start_time_unix_nano=start * S,
        count=sum(counts),
        sum=total,
        bucket_counts=counts,
        explicit_bounds=bounds,
        **extra,
    )
    return m.Metric(
        name="http.server.duration",
        histogram=m.Histogram(data_points=[point], aggregation_temporality=temporality),
    )


def test_histogram_count_sum_rate_and_quantiles_from_the_buckets():
    got = values(to_metric_rows(request(histogram([0, 50, 40, 10], [10.0, 20.0, 40.0], 1500.0))))
    assert got["http.server.duration.count"] == 100 and got["http.server.duration.sum"] == 1500.0
    assert got["http.server.duration.rate"] == 10.0
    assert got["http.server.duration.p50"] == pytest.approx(20.0)
    assert got["http.server.duration.p95"] == pytest.approx(40.0)  # in the open bucket: its lower bound
    capped = values(to_metric_rows(request(histogram([0, 50, 40, 10], [10.0, 20.0, 40.0], 1500.0, max=55.0))))
    assert 40.0 < capped["http.server.duration.p99"] <= 55.0


def test_a_cumulative_histogram_is_judged_on_the_interval():
    state = Cumulative()
    to_metric_rows(
        request(histogram([100, 0, 0, 0], [10.0, 20.0, 40.0], 500.0, temporality=CUMULATIVE)), state=state
    )
    later = histogram([100, 0, 0, 100], [10.0, 20.0, 40.0], 9000.0, at=30, temporality=CUMULATIVE)
    got = values(to_metric_rows(request(later), state=state))
    assert got["http.server.duration.rate"] == 10.0  # 100 more over 10 s
    assert got["http.server.duration.p50"] == 40.0  # this interval's all slow; the lifetime's are not


def test_exponential_histogram_and_summary():
    point = m.ExponentialHistogramDataPoint(
        time_unix_nano=20 * S,
        start_time_unix_nano=10 * S,
        count=20,
        sum=60.0,
        scale=0,
        zero_count=0,
        positive=m.ExponentialHistogramDataPoint.Buckets(offset=0, bucket_counts=[10, 10]),
    )
    metric = m.Metric(
        name="rpc.duration",
        exponential_histogram=m.ExponentialHistogram(data_points=[point], aggregation_temporality=DELTA),
    )
    got = values(to_metric_rows(request(metric)))
    assert got["rpc.duration.p50"] == pytest.approx(2.0) and 2.0 < got["rpc.duration.p95"] <= 4.0
    summary = m.Metric(
        name="gc.pause",
        summary=m.Summary(
            data_points=[
                m.SummaryDataPoint(
                    time_unix_nano=20 * S,
                    count=5,
                    sum=2.5,
                    quantile_values=[m.SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=1.2)],
                )
            ]
        ),
    )
    assert values(to_metric_rows(request(summary))) == {
        "gc.pause.count": 5.0,
        "gc.pause.sum": 2.5,
        "gc.pause.p99": 1.2,
    }
    bounds, counts = mm.exponential_buckets(1, 5, (0, [10]), (0, [5]))
    assert mm.bucket_quantile(0.3, bounds, counts) == 0.0  # the zero bucket sits in the middle


def test_bad_points_are_rejected_alone_and_empty_ones_skipped():
    good = m.NumberDataPoint(as_double=1.0, time_unix_nano=100 * S)
    crowded = m.NumberDataPoint(
        as_double=1.0, time_unix_nano=100 * S, attributes=[kv(f"k{i}", "v") for i in range(40)]
    )
    no_time = m.NumberDataPoint(as_double=1.0)
    unrecorded = m.NumberDataPoint(time_unix_nano=100 * S, flags=1)
    not_finite = m.NumberDataPoint(as_double=float("nan"), time_unix_nano=100 * S)
    metrics = [
        m.Metric(name="ok", gauge=m.Gauge(data_points=[good, crowded, no_time, unrecorded, not_finite])),
        m.Metric(name="x" * 300, gauge=m.Gauge(data_points=[good])),
        m.Metric(name="", gauge=m.Gauge(data_points=[good])),
        histogram([1, 2], [1.0, 2.0, 3.0], 3.0),
    ]
    mapped = to_metric_rows(request(*metrics))
    assert [row[4] for row in mapped.rows] == ["ok"]
    assert mapped.rejected == 5
    assert "more than 32 attributes" in mapped.error_message and "over 200 characters" in mapped.error_message
    checks = MetricChecks(now=100.0, max_age=10.0, own_services=frozenset({"aiops"}))
    assert to_metric_rows(request(metrics[0], service="aiops"), checks).rejected == 5
    far = m.Metric(
        name="ok", gauge=m.Gauge(data_points=[m.NumberDataPoint(as_double=1, time_unix_nano=50 * S)])
    )
    assert "AIOPS_OTLP_MAX_AGE" in to_metric_rows(request(far), checks).error_message


def test_otlp_json_with_exemplars_and_the_wire_scan():
    doc = otlp.to_json_dict(request(histogram([0, 5, 5, 0], [1.0, 2.0, 3.0], 20.0)))
    point = doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["histogram"]["dataPoints"][0]
    point["exemplars"] = [
        {
            "traceId": "0af7651916cd43dd8448eb211c80319c",
            "spanId": "b7ad6b7169203331",
            "asDouble": 2.5,
            "timeUnixNano": str(20 * S),
        }
    ]
    message = otlp.parse_json(json.dumps(doc).encode(), message_type=ExportMetricsServiceRequest)
    assert count_points(message) == 1
    assert otlp.json_kind(doc) is ExportMetricsServiceRequest
    body = request(counter(1, 10), counter(2, 11)).SerializeToString()
    limits = otlp_limits.Limits(max_records=1, max_items=1000)
    with pytest.raises(otlp.PayloadTooLarge, match="AIOPS_OTLP_MAX_METRIC_POINTS"):
        otlp_limits.scan_protobuf(body, limits, otlp_limits.METRICS)
    assert otlp_limits.scan_protobuf(body, otlp_limits.Limits(2, 1000), otlp_limits.METRICS) > 2
