"""OTLP metric points -> metric rows. Pure logic: decoded messages in, tuples out (no Flask).

Decoding is :mod:`telemetry.otlp`'s (the same official messages, limits and UTF-8 repair as traces
and logs). Every point becomes one or more numeric series (``telemetry.columns.METRIC_FIELDS``
order: time, service, pod, host, name, attributes, value), each a name:

- gauge, and a sum that is not monotonic (an up-down counter): ``<name>``, the value;
- monotonic sum: ``<name>`` the value as sent (a running total, or a delta) and ``<name>.rate``,
  per second: a delta over its own interval, a running total against the series' previous point
  (:func:`telemetry.metric_math.counter_rate`: a reset counts from zero);
- histogram and exponential histogram: ``<name>.count`` and ``<name>.sum`` as sent, ``<name>.rate``
  (observations per second, as a sum's) and ``<name>.p50``, ``.p95``, ``.p99`` from the buckets of
  the interval (a delta point's own; a running total's minus the series' previous point, or its own
  when there is none yet);
- summary: ``<name>.count``, ``<name>.sum`` and ``<name>.p<q>`` for each quantile it carries.

A point's resource gives ``service`` (``service.name``), ``pod`` (``k8s.pod.name``) and ``host``
(``host.name``); its own attributes, sorted and bounded, are ``attributes`` (JSON) and tell series
of one name apart. A running total's previous point is remembered by :class:`Cumulative` (in this
process, bounded): a series whose first point this process sees gets its rate from the second.

A point is *rejected* alone (partial success): no time, a name empty or over ``MAX_NAME``, more
attributes than ``MAX_POINT_ATTRIBUTES``, more buckets than ``MAX_BUCKETS``, an exponential scale
out of range; live ingest adds :class:`MetricChecks`. A point flagged "no recorded value" and
values that are not finite are skipped, not rejected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from telemetry import metric_math as mm
from telemetry.otlp.mapping import Mapped, clean, scalar, service_name

MAX_NAME = 200  # characters of a metric name (a derived suffix is added to it; the column holds 255)
MAX_POINT_ATTRIBUTES = 32  # attributes of one point (its series key)
MAX_ATTR_KEY, MAX_ATTR_VALUE = 128, 256
MAX_RESOURCE_VALUE = 255
NO_RECORDED_VALUE = 1  # DataPointFlags
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
_ENCODE = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode


@dataclass(frozen=True)
class MetricChecks:
    """What live ingest also refuses, point by point (replay keeps the data's own clock): the
    spans' rules (far from now, too many attributes, the product's own service name)."""

    now: float
    max_age: float = 7 * 86400.0
    max_ahead: float = 3600.0
    max_attributes: int = 1_000
    own_services: frozenset[str] = frozenset()

    def why(self, service: str, when: float) -> str | None:
        if service in self.own_services:
            return f"service.name {service!r} is this product's own"
        if when < self.now - self.max_age:
            return f"time more than {self.max_age:g}s before now (AIOPS_OTLP_MAX_AGE)"
        if when > self.now + self.max_ahead:
            return f"time more than {self.max_ahead:g}s after now (AIOPS_OTLP_MAX_AHEAD)"
        return None


@dataclass
class Cumulative:
    """The last point of each running-total series this process saw (bounded: cleared when full),
    so the next one can be turned into a rate and its buckets into the interval's."""

    limit: int = 100_000
    last: dict = field(default_factory=dict)

    def swap(self, key: tuple, value: tuple):
        """Remember ``value`` (``(start, time, ...)``) for ``key``; return what was remembered before
        (None). A point older than the one remembered is not remembered, and gets no previous one:
        rates follow the points' own order in time, as exporters send them."""
        previous = self.last.get(key)
        if previous is not None and value[1] <= previous[1]:
            return None
        if previous is None and len(self.last) >= self.limit:
            self.last.clear()
        self.last[key] = value
        return previous


def _resource(resource) -> tuple[str, str | None, str | None]:
    pod = host = None
    for kv in resource.attributes:
        if kv.key == "k8s.pod.name":
            pod = clean(str(scalar(kv.value) or ""), MAX_RESOURCE_VALUE)
        elif kv.key == "host.name":
            host = clean(str(scalar(kv.value) or ""), MAX_RESOURCE_VALUE)
    return service_name(resource), pod, host


def _attributes(attributes) -> str | None | bool:
    """The point's attributes as sorted JSON (None: none; False: too many)."""
    if not attributes:
        return None
    if len(attributes) > MAX_POINT_ATTRIBUTES:
        return False
    kept = {}
    for kv in attributes:
        value = scalar(kv.value)
        key = clean(kv.key, MAX_ATTR_KEY)
        if key is None or value is None:
            continue
        kept[key] = clean(value, MAX_ATTR_VALUE) if isinstance(value, str) else value
    return _ENCODE(kept) if kept else None


def _number(point) -> float | None:
    value = point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)
    return value if math.isfinite(value) else None


class _Point:
    """One point's identity and clock, and the rows it yields."""

    __slots__ = ("attributes", "base", "name", "rows", "start", "when")

    def __init__(self, base: tuple, name: str, attributes, when: float, start: float, rows: list):
        self.base, self.name, self.attributes, self.when, self.start, self.rows = (
            base,
            name,
            attributes,
            when,
            start,
            rows,
        )

    def add(self, suffix: str, value: float | None) -> None:
        if value is not None and math.isfinite(value):
            self.rows.append((self.when, *self.base, self.name + suffix, self.attributes, value))

    @property
    def key(self) -> tuple:
        return (*self.base, self.name, self.attributes)


def _points(metric) -> tuple[str, Iterator]:
    which = metric.WhichOneof("data")
    if which is None:
        return "none", iter(())
    return which, iter(getattr(metric, which).data_points)


def _number_point(p: _Point, point, metric, state: Cumulative) -> None:
    value = _number(point)
    if value is None:
        return
    data = metric.sum
    if metric.WhichOneof("data") != "sum" or not data.is_monotonic:
        p.add("", value)
        return
    p.add("", value)
    if data.aggregation_temporality == CUMULATIVE:
        p.add(".rate", mm.counter_rate(value, p.when, p.start, state.swap(p.key, (p.start, p.when, value))))
    else:
        p.add(".rate", mm.delta_rate(value, p.when, p.start))


def _histogram_point(
    p: _Point, point, bounds: list[float], counts: list[float], cumulative: bool, state: Cumulative
) -> None:
    count, total = float(point.count), point.sum if point.HasField("sum") else None
    p.add(".count", count)
    p.add(".sum", total)
    low = point.min if point.HasField("min") else None
    high = point.max if point.HasField("max") else None
    if cumulative:
        previous = state.swap(p.key, (p.start, p.when, count, tuple(bounds), tuple(counts)))
        p.add(".rate", mm.counter_rate(count, p.when, p.start, previous and previous[:3]))
        same_life = previous is not None and not (p.start > previous[0] > 0) and count >= previous[2]
        if same_life and previous[3] == tuple(bounds) and count > previous[2]:
            counts = [max(0.0, a - b) for a, b in zip(counts, previous[4], strict=True)]
            low = high = None  # the point's min and max are over its whole life
        elif same_life:
            return  # nothing observed since the last point (or its buckets changed): no quantiles
    else:
        p.add(".rate", mm.delta_rate(count, p.when, p.start))
    for q, suffix in mm.QUANTILES:
        p.add("." + suffix, mm.bucket_quantile(q, bounds, counts, low, high))


def _bucket_problem(which: str, point) -> str | None:
    if which == "histogram":
        n = len(point.bucket_counts)
        if n > mm.MAX_BUCKETS:
            return f"more than {mm.MAX_BUCKETS} buckets"
        if n and n != len(point.explicit_bounds) + 1:
            return "bucket_counts must have one more entry than explicit_bounds"
    elif which == "exponential_histogram":
        if len(point.positive.bucket_counts) + len(point.negative.bucket_counts) > mm.MAX_BUCKETS:
            return f"more than {mm.MAX_BUCKETS} buckets"
        if not mm.MIN_SCALE <= point.scale <= mm.MAX_SCALE:
            return f"scale out of range {mm.MIN_SCALE}..{mm.MAX_SCALE}"
    return None


def _one(which: str, metric, point, p: _Point, state: Cumulative) -> None:
    if which in ("gauge", "sum"):
        _number_point(p, point, metric, state)
    elif which == "histogram":
        cumulative = metric.histogram.aggregation_temporality == CUMULATIVE
        _histogram_point(
            p, point, list(point.explicit_bounds), [float(c) for c in point.bucket_counts], cumulative, state
        )
    elif which == "exponential_histogram":
        bounds, counts = mm.exponential_buckets(
            point.scale,
            point.zero_count,
            (point.positive.offset, list(point.positive.bucket_counts)),
            (point.negative.offset, list(point.negative.bucket_counts)),
        )
        cumulative = metric.exponential_histogram.aggregation_temporality == CUMULATIVE
        _histogram_point(p, point, bounds, counts, cumulative, state)
    elif which == "summary":
        p.add(".count", float(point.count))
        p.add(".sum", point.sum)
        for qv in point.quantile_values[:16]:
            if 0.0 <= qv.quantile <= 1.0:
                p.add("." + mm.quantile_name(qv.quantile), qv.value)


def to_metric_rows(
    request: ExportMetricsServiceRequest, checks: MetricChecks | None = None, state: Cumulative | None = None
) -> Mapped:
    """Map every point of ``request``; invalid ones are counted, not raised (``noun``: point)."""
    result = Mapped(noun="metric data point")
    state = state if state is not None else Cumulative()
    for rm in request.resource_metrics:
        base = _resource(rm.resource)
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                name = clean(metric.name, MAX_NAME + 1)
                which, points = _points(metric)
                for point in points:
                    reason = _check(name, which, point, base[0], checks)
                    if reason is not None:
                        result.rejected += 1
                        result.reasons[reason] += 1
                        continue
                    attributes = _attributes(point.attributes)
                    if point.flags & NO_RECORDED_VALUE:
                        continue
                    p = _Point(
                        base,
                        name,
                        attributes,
                        point.time_unix_nano / 1e9,
                        point.start_time_unix_nano / 1e9,
                        result.rows,
                    )
                    _one(which, metric, point, p, state)
    return result


def _check(name: str | None, which: str, point, service: str, checks: MetricChecks | None) -> str | None:
    if not name:
        return "missing metric name"
    if len(name) > MAX_NAME:
        return f"metric name over {MAX_NAME} characters"
    if not point.time_unix_nano:
        return "missing time_unix_nano"
    if len(point.attributes) > MAX_POINT_ATTRIBUTES:
        return f"more than {MAX_POINT_ATTRIBUTES} attributes on a point"
    problem = _bucket_problem(which, point)
    if problem is not None:
        return problem
    return None if checks is None else checks.why(service, point.time_unix_nano / 1e9)


def export_response(mapped: Mapped) -> ExportMetricsServiceResponse:
    """An empty response (full success), or a partial success naming what was rejected."""
    if not mapped.rejected:
        return ExportMetricsServiceResponse()
    return ExportMetricsServiceResponse(
        partial_success=ExportMetricsPartialSuccess(
            rejected_data_points=mapped.rejected, error_message=mapped.error_message
        )
    )


def count_points(request: ExportMetricsServiceRequest) -> int:
    """Data points in a decoded request: JSON, and a small protobuf body, are not scanned first."""
    total = 0
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                which = metric.WhichOneof("data")
                if which is not None:
                    total += len(getattr(metric, which).data_points)
    return total
