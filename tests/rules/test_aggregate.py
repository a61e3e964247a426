"""Count, rate, p95, the verdict, an alert's identity and the span it names (pure)."""

from __future__ import annotations

import pytest

from aiops.rules.aggregate import Matched, aggregate, example, fingerprint, fires, p95
from tests.support.factories import span


def _matched(*spans) -> list[Matched]:
    return [Matched(s.trace_id, [s]) for s in spans]


def test_count_rate_and_p95():
    matched = _matched(*(span("a", duration_ms=float(d)) for d in range(1, 21)))
    assert aggregate("count", matched, 40) == 20.0
    assert aggregate("rate", matched, 40) == 0.5
    assert aggregate("rate", [], 0) == 0.0  # an empty window matches nothing
    assert aggregate("p95", matched, 40) == 19.0  # nearest rank: the 19th of 20
    assert aggregate("p95", [], 0) is None
    with pytest.raises(ValueError):
        aggregate("p99", matched, 40)


def test_p95_nearest_rank():
    assert p95([5.0]) == 5.0
    assert p95(range(1, 101)) == 95
    assert p95([]) is None


def test_fires_only_above_the_threshold():
    assert fires(1.0, 0.0) and not fires(0.0, 0.0) and not fires(None, 0.0) and not fires(0.05, 0.05)


def test_fingerprint_is_the_set():
    assert fingerprint(["b", "a", "a"]) == fingerprint(["a", "b"]) != fingerprint(["a"])
    assert len(fingerprint([])) == 64


def test_example_names_the_slowest_span_or_the_newest_failure():
    slow = span("pay", duration_ms=900.0, start_time=10.0)
    failed = span("inv", duration_ms=5.0, status_code=503, start_time=11.0)
    boom = span("inv", duration_ms=5.0, exception_type="ValueError", exception_message="no stock",
                start_time=12.0)
    matched = _matched(slow, failed, boom)
    latency = example("high_latency", matched)
    assert latency == {"trace_id": slow.trace_id, "span_name": "pay", "service": "shop",
                       "duration_ms": 900.0, "error_message": None}
    errors = example("error_status", matched)
    assert errors["trace_id"] == boom.trace_id and errors["error_message"] == "ValueError: no stock"
    assert errors["duration_ms"] is None
    assert example("high_error_rate", _matched(failed))["error_message"] == "HTTP 503"
    assert example("query", [])["trace_id"] is None
