"""Anomaly rules (aiops.detection.rules) on hand-built windows of spans."""

from __future__ import annotations

from aiops.detection.ewma import BaselineValue
from aiops.detection.rules import Thresholds, detect, window_stats
from aiops.settings import Settings
from tests.support.factories import client, span

TH = Thresholds.from_settings(Settings())  # the documented defaults
PAYMENT = ("shop", "payment")
READY = BaselineValue(latency_ms=100.0, samples=100, windows=10)


def run(spans, baselines=None, th=TH, ignore=()):
    return detect(window_stats(spans, ignore), baselines or {}, th)


def kinds(anomalies):
    return sorted((a.endpoint, a.type) for a in anomalies)


def test_thresholds_come_from_settings():
    th = Thresholds.from_settings(Settings.load({"AIOPS_LATENCY_FACTOR": "5",
        "AIOPS_MIN_WINDOW_REQUESTS": "9"}))
    assert th.latency_factor == 5.0 and th.min_window_requests == 9


# -- latency -----------------------------------------------------------------


def test_latency_spike_over_factor_and_min_delta():
    anomalies = run([span("payment", 400.0) for _ in range(5)], {PAYMENT: READY})
    assert kinds(anomalies) == [("payment", "latency")]
    a = anomalies[0]
    assert (a.service, a.observed, a.baseline, a.request_count) == ("shop", 400.0, 100.0, 5)
    assert a.message == "Latency spike: 400ms (baseline: 100ms)"
    assert a.label == "payment_latency"


def test_latency_exactly_at_the_factor_is_not_a_spike():
    assert run([span("payment", 300.0) for _ in range(5)], {PAYMENT: READY}) == []


def test_latency_needs_the_min_delta_too():
    """A 10 ms endpoint taking 35 ms is 3.5x but only 25 ms worse: jitter, not an incident."""
    fast = BaselineValue(latency_ms=10.0, samples=100, windows=10)
    assert run([span("payment", 35.0) for _ in range(5)], {PAYMENT: fast}) == []
    assert kinds(run([span("payment", 61.0) for _ in range(5)], {PAYMENT: fast})) == [
        ("payment", "latency")
    ]


def test_one_stalled_request_is_not_a_slow_endpoint():
    """A quiet window's mean can be pulled over the line by one request (a GC pause, a stalled
    connection): the verdict needs ``min_slow_requests`` requests each over the line too."""
    fast = BaselineValue(latency_ms=5.0, samples=100, windows=10)
    one = [span("payment", 5.0) for _ in range(9)] + [span("payment", 900.0)]
    assert run(one, {PAYMENT: fast}) == []  # mean 94.5 ms: over 3x and +50 ms, one request
    three = [span("payment", 5.0) for _ in range(7)] + [span("payment", 300.0) for _ in range(3)]
    assert kinds(run(three, {PAYMENT: fast})) == [("payment", "latency")]


def test_no_latency_verdict_before_min_baseline_samples():
    young = BaselineValue(latency_ms=100.0, samples=TH.min_baseline_samples - 1, windows=3)
    slow = [span("payment", 1000.0) for _ in range(5)]
    assert run(slow, {PAYMENT: young}) == []
    assert run(slow, {}) == []
    ready = BaselineValue(latency_ms=100.0, samples=TH.min_baseline_samples, windows=3)
    assert kinds(run(slow, {PAYMENT: ready})) == [("payment", "latency")]


def test_no_latency_verdict_with_too_few_requests():
    slow = [span("payment", 1000.0) for _ in range(TH.min_slow_requests - 1)]
    assert run(slow, {PAYMENT: READY}) == []
    assert kinds(run([*slow, span("payment", 1000.0)], {PAYMENT: READY})) == [("payment", "latency")]


def test_latency_is_judged_on_the_window_mean():
    """One slow outlier among fast requests does not make the endpoint slow."""
    spans = [span("payment", 100.0) for _ in range(9)] + [span("payment", 1000.0)]
    assert run(spans, {PAYMENT: READY}) == []


# -- errors ------------------------------------------------------------------


def test_error_spike_over_threshold_with_enough_requests():
    spans = [span("payment", status_code=500, exception_type="InjectedFault",
                  exception_message="injected error on payment") for _ in range(2)]
    spans += [span("payment") for _ in range(3)]
    anomalies = run(spans)
    assert kinds(anomalies) == [("payment", "error")]
    a = anomalies[0]
    assert a.observed == 0.4 and a.request_count == 5 and a.baseline is None
    assert a.message == "Error spike: 40% of 5 requests failed (InjectedFault: injected error on payment)"


def test_error_rate_exactly_at_threshold_is_not_a_spike():
    spans = [span("payment", status_code=500)] + [span("payment") for _ in range(4)]
    assert run(spans) == []


def test_four_requests_all_failing_are_too_few():
    assert run([span("payment", status_code=500) for _ in range(4)]) == []


def test_error_anomaly_reports_the_baseline_error_rate():
    base = BaselineValue(latency_ms=10.0, error_rate=0.01, samples=100, windows=10)
    anomalies = run([span("payment", status_code=503) for _ in range(5)], {PAYMENT: base})
    assert [(a.type, a.observed, a.baseline) for a in anomalies] == [("error", 1.0, 0.01)]


def test_4xx_is_not_an_error():
    assert run([span("payment", status_code=404) for _ in range(10)]) == []


def _best_effort(calls: int, reset: int, baseline=READY):
    """``calls`` checkouts that call payment and answer 200 whatever it does; ``reset`` of the
    calls get no answer at all (a reset connection: an exception, no status, no payment span).
    ``baseline``: the shop's (None: a service with no history)."""
    spans = []
    for n in range(calls):
        parent = span("checkout", 20.0)
        spans.append(parent)
        if n < reset:
            spans.append(client(parent, "payment", 3.0, status_code=None,
                                exception_type="ConnectionResetError"))
        else:
            call = client(parent, "payment", 10.0)
            spans += [call, span("payment", 8.0, parent=call)]
    return run(spans, {PAYMENT: baseline, ("shop", "checkout"): baseline} if baseline else {})


def test_calls_that_get_no_answer_are_the_callees_errors():
    """A best-effort caller absorbs its callee's resets (every SERVER span is a 200): its CLIENT
    spans are the only sign, and they are the callee's error anomaly."""
    [a] = _best_effort(calls=10, reset=6)
    assert (a.key, a.type, a.observed, a.request_count) == (PAYMENT, "error", 0.6, 10)
    assert a.message == "Calls failing: 6 of 10 calls to it failed before it answered (ConnectionResetError)"
    assert a.pattern == "dependency" and a.strength > 6


def test_a_few_unanswered_calls_are_not_news():
    assert _best_effort(calls=20, reset=2) == []  # under min_slow_requests
    assert _best_effort(calls=20, reset=4) == []  # 20 %: not over the error rate
    # A service with no history is assumed to fail half the time: 3 of 5 is no evidence against it.
    assert _best_effort(calls=5, reset=3, baseline=None) == []
    assert kinds(_best_effort(calls=5, reset=5)) == [("payment", "error")]


def test_an_answered_failure_is_the_callees_own_spans_to_tell():
    """A 500 came from somewhere: the callee's own span (stored now or a cycle later) says what,
    not the call; and a callee whose own error rule fired is not named twice."""
    spans = []
    for _ in range(6):
        parent = span("checkout", 20.0)
        spans += [parent, client(parent, "payment", 5.0, status_code=500)]
    assert run(spans, {PAYMENT: READY}) == []
    for _ in range(6):
        parent = span("checkout", 20.0)
        call = client(parent, "payment", 5.0, status_code=None, exception_type="ConnectionResetError")
        spans += [parent, call, span("payment", 4.0, parent=call, status_code=500)]
    assert kinds(run(spans, {PAYMENT: READY})) == [("payment", "error")]
    assert run(spans, {PAYMENT: READY})[0].message.startswith("Error spike")


# -- timeouts ----------------------------------------------------------------


def test_gateway_timeouts_on_the_endpoint():
    anomalies = run([span("checkout", 1000.0, status_code=504) for _ in range(3)])
    assert kinds(anomalies) == [("checkout", "timeout")]  # 3 requests: too few for an error verdict
    assert anomalies[0].observed == 3.0
    assert anomalies[0].message == "Timeout: 3 of 3 requests timed out"
    more = run([span("checkout", 1000.0, status_code=504) for _ in range(5)])
    assert kinds(more) == [("checkout", "error"), ("checkout", "timeout")]


def test_timeout_exceptions_count_as_timeouts():
    """A handled ``*Timeout*`` exception marks the request even when it answered 200."""
    spans = [span("checkout", status_code=200, error=False, exception_type="ReadTimeout") for _ in range(3)]
    assert kinds(run(spans)) == [("checkout", "timeout")]


def test_too_few_timeouts_is_nothing():
    assert run([span("checkout", status_code=504) for _ in range(2)]) == []


def test_client_spans_that_time_out_count_as_unanswered_on_the_peer():
    """The callee hung, so its own span never arrived: the caller's CLIENT spans speak for it."""
    spans = []
    for _ in range(3):
        parent = span("checkout", 1000.0, status_code=504, exception_type="ReadTimeout")
        spans += [parent, client(parent, "inventory", 1000.0, status_code=None,
                                 exception_type="ReadTimeout")]
    stats = window_stats(spans)
    inventory = stats[("shop", "inventory")]
    assert (inventory.count, inventory.unanswered) == (0, 3)
    anomalies = detect(stats, {}, TH)
    by_key = {(a.endpoint, a.type): a for a in anomalies}
    assert ("inventory", "timeout") in by_key and ("checkout", "timeout") in by_key
    assert by_key[("inventory", "timeout")].message == "Timeout: 3 calls to it timed out"
    assert by_key[("inventory", "timeout")].request_count == 0


def test_client_spans_are_not_requests_of_the_endpoint():
    """Slow or failing CLIENT spans do not count as the callee's requests (its SERVER spans do)."""
    spans = []
    for _ in range(5):
        parent = span("checkout", 950.0)
        spans += [parent, client(parent, "payment", 900.0, status_code=500)]
    stats = window_stats(spans)
    assert ("shop", "payment") not in stats
    assert stats[("shop", "checkout")].count == 5
    assert run(spans, {PAYMENT: READY}) == []


# -- scope -------------------------------------------------------------------


def test_ignored_services_are_not_analysed():
    """The product's own routes (service ``aiops``) never raise incidents about themselves."""
    spans = [span("aiops/analyze", 5000.0, service="aiops", status_code=500) for _ in range(10)]
    spans += [span("checkout", service="aiops", status_code=504) for _ in range(3)]
    stats = window_stats(spans, ignore_services=["aiops"])
    assert stats == {}
    assert kinds(run(spans)) != []  # only because it is ignored


def test_services_are_kept_apart():
    """The same endpoint name in two services is two endpoints."""
    spans = [span("GET /", service="a", status_code=500) for _ in range(5)]
    spans += [span("GET /", service="b") for _ in range(5)]
    assert [(a.service, a.type) for a in run(spans)] == [("a", "error")]
