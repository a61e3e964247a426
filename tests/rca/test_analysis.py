"""Root-cause analysis (aiops.rca.analysis.analyse) on hand-built traces of the demo shop.

Each scenario runs the real rules first (window_stats + detect) so RCA gets the
anomalies a cycle would give it, then checks which endpoint the traces blame.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from aiops.detection.ewma import BaselineValue
from aiops.detection.rules import Thresholds, detect, window_stats
from aiops.rca.analysis import analyse
from aiops.settings import Settings
from tests.support.factories import client, span

TH = Thresholds.from_settings(Settings())
BASELINES = {
    ("shop", "checkout"): BaselineValue(60.0, samples=200, windows=20),
    ("shop", "payment"): BaselineValue(20.0, samples=200, windows=20),
    ("shop", "inventory"): BaselineValue(8.0, samples=200, windows=20),
}


class Store:
    """The trace store RCA reads from: every span of the scenario, by trace id."""

    def __init__(self, spans):
        self.by_trace = defaultdict(list)
        for s in spans:
            self.by_trace[s.trace_id].append(s)
        self.asked: set[str] = set()

    def load(self, trace_ids):
        self.asked |= set(trace_ids)
        return {t: self.by_trace.get(t, []) for t in trace_ids}


def checkout_trace(*, payment_ms=18.0, inventory_ms=6.0, inventory_status=200, payment_status=200,
                   inventory_hangs=False, checkout_extra_ms=5.0, start=1_000.0):
    """One POST /checkout: inventory first, then payment, as simulation.shop does."""
    spans = []
    total = checkout_extra_ms + inventory_ms + 2
    root = span("checkout", 0.0, start_time=start)
    spans.append(root)
    if inventory_hangs:
        spans.append(client(root, "inventory", 1000.0, status_code=None, exception_type="ReadTimeout",
                            exception_message="Read timed out. (read timeout=1.0)"))
        root.duration_ms, root.status_code, root.error = 1000.0 + checkout_extra_ms, 504, True
        root.exception_type = "ReadTimeout"
        return spans
    call = client(root, "inventory", inventory_ms + 1, status_code=inventory_status)
    spans += [call, span("inventory", inventory_ms, parent=call, status_code=inventory_status,
                         exception_type="InjectedFault" if inventory_status >= 500 else None)]
    if inventory_status >= 500:
        root.duration_ms, root.status_code, root.error = total, 502, True
        root.exception_type = "BadGateway"
        return spans
    call = client(root, "payment", payment_ms + 1, status_code=payment_status)
    spans += [call, span("payment", payment_ms, parent=call, status_code=payment_status,
                         exception_type="InjectedFault" if payment_status >= 500 else None)]
    total += payment_ms + 1
    root.duration_ms = total
    if payment_status >= 500:
        root.status_code, root.error, root.exception_type = 502, True, "BadGateway"
    return spans


def scenario(traces, baselines=BASELINES):
    window = [s for trace in traces for s in trace]
    anomalies = detect(window_stats(window), baselines, TH)
    store = Store(window)
    groups = analyse(anomalies, window, store.load, baselines, TH)
    return anomalies, groups, store


def labels(anomalies):
    return sorted(a.label for a in anomalies)


def test_slow_payment_is_the_root_of_slow_checkouts():
    """(a) checkout -> client -> payment, payment slow: one group rooted at payment."""
    anomalies, groups, _ = scenario([checkout_trace(payment_ms=900.0) for _ in range(5)])
    assert labels(anomalies) == ["checkout_latency", "payment_latency"]
    assert len(groups) == 1
    g = groups[0]
    assert g.root == ("shop", "payment")
    assert g.affected == ["payment", "checkout"]
    assert [a.label for a in g.anomalies] == ["payment_latency", "checkout_latency"]  # own first
    assert g.candidates[0] == (("shop", "payment"), 1.0)


def test_inventory_errors_propagating_to_checkout():
    """(b) inventory fails, checkout answers 502: the root is inventory, not checkout."""
    anomalies, groups, store = scenario([checkout_trace(inventory_status=500) for _ in range(5)])
    assert labels(anomalies) == ["checkout_error", "inventory_error"]
    assert [g.root for g in groups] == [("shop", "inventory")]
    assert groups[0].affected == ["inventory", "checkout"]
    assert groups[0].example_trace in store.asked
    for a in anomalies:
        assert a.trace_ids and set(a.trace_ids) <= store.asked


def test_timeout_blames_the_callee_whose_span_never_arrived():
    """(c) inventory hung: only checkout's CLIENT span (ReadTimeout, no child) names it."""
    anomalies, groups, _ = scenario([checkout_trace(inventory_hangs=True) for _ in range(3)])
    assert "inventory_timeout" in labels(anomalies) and "checkout_timeout" in labels(anomalies)
    assert [g.root for g in groups] == [("shop", "inventory")]
    assert set(groups[0].affected) == {"inventory", "checkout"}


def test_hung_callee_in_another_service_is_blamed_by_its_service_name():
    """OTLP: a CLIENT span names the *service* it calls (peer.service); when that
    service hangs and never reports, the root is the callee service, not the caller."""
    traces = []
    for _ in range(3):
        root = span("GET /orders", 1005.0, service="orders", status_code=504, exception_type="ReadTimeout")
        call = client(root, "SELECT orders", 1000.0, status_code=None, exception_type="ReadTimeout")
        call.peer = "db-service"
        traces.append([root, call])
    _, groups, _ = scenario(traces, baselines={})
    assert [g.root for g in groups] == [("db-service", "SELECT orders")]
    assert groups[0].candidates[0][0] == ("db-service", "SELECT orders")


def test_slow_span_with_healthy_children_is_its_own_root():
    """(d) checkout slow in its own code while payment and inventory are fine."""
    anomalies, groups, _ = scenario([checkout_trace(checkout_extra_ms=800.0) for _ in range(5)])
    assert labels(anomalies) == ["checkout_latency"]
    assert [g.root for g in groups] == [("shop", "checkout")]
    assert groups[0].affected == ["checkout"]


def test_slow_child_without_a_baseline_still_takes_the_blame():
    """Time spent in a child (payment, no baseline yet) is the child's fault, not checkout's."""
    baselines = {k: v for k, v in BASELINES.items() if k != ("shop", "payment")}
    anomalies, groups, _ = scenario([checkout_trace(payment_ms=900.0) for _ in range(5)], baselines)
    assert labels(anomalies) == ["checkout_latency"]
    assert [g.root for g in groups] == [("shop", "payment")]
    assert groups[0].affected == ["payment", "checkout"]


def test_two_independent_roots_give_two_groups():
    """(e) payment slow in some traces and inventory failing in others: two incidents."""
    slow_payment = [checkout_trace(payment_ms=900.0, start=1_000.0 + i) for i in range(5)]
    direct_inventory = []
    for i in range(5):
        direct_inventory.append([span("inventory", 5.0, status_code=500, exception_type="InjectedFault",
                                      start_time=1_100.0 + i)])
    anomalies, groups, _ = scenario(slow_payment + direct_inventory)
    assert labels(anomalies) == ["checkout_latency", "inventory_error", "payment_latency"]
    assert [g.root for g in groups] == [("shop", "inventory"), ("shop", "payment")]
    by_root = {g.root[1]: g for g in groups}
    assert [a.label for a in by_root["inventory"].anomalies] == ["inventory_error"]
    assert sorted(a.label for a in by_root["payment"].anomalies) == ["checkout_latency", "payment_latency"]


def test_candidates_are_ranked_best_first_with_scores_in_unit_range():
    """(f) checkout fails because of inventory in 3 traces and payment in 2."""
    traces = [checkout_trace(inventory_status=500) for _ in range(3)]
    traces += [checkout_trace(payment_status=500) for _ in range(2)]
    anomalies, groups, _ = scenario(traces)
    assert labels(anomalies) == ["checkout_error", "inventory_error"]  # payment: only 2 requests
    assert [g.root for g in groups] == [("shop", "inventory")]
    candidates = groups[0].candidates
    keys = [k for k, _ in candidates]
    scores = [s for _, s in candidates]
    assert keys[0] == ("shop", "inventory")
    assert ("shop", "payment") in keys
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert sum(scores) == pytest.approx(1.0, abs=1e-3)
    assert dict(candidates)[("shop", "inventory")] > dict(candidates)[("shop", "payment")]


def test_no_anomalies_no_groups_and_no_trace_reads():
    _, groups, store = scenario([checkout_trace() for _ in range(10)])
    assert groups == [] and store.asked == set()


def test_traces_missing_from_the_store_blame_the_anomalous_endpoint_itself():
    """A trace not (yet) stored still yields a group: the anomaly's own endpoint."""
    window = [span("payment", 5.0, status_code=500) for _ in range(5)]
    anomalies = detect(window_stats(window), BASELINES, TH)
    groups = analyse(anomalies, window, lambda ids: {}, BASELINES, TH)
    assert [g.root for g in groups] == [("shop", "payment")]


def _failing_after_call(fail_after_ms: float, start: float):
    """orders calls stock (a healthy 200), then fails ``fail_after_ms`` later."""
    root = span("GET /orders", 25.0 + fail_after_ms, service="orders", status_code=500,
                exception_type="KeyError", exception_message="'items'", start_time=start)
    call = client(root, "GET", 20.0, start_time=start + 0.005)
    call.peer = None
    answer = span("/items", 15.0, service="stock", parent=call, start_time=start + 0.007)
    return [root, call, answer]


def test_a_span_failing_right_after_a_healthy_answer_blames_the_answer_first():
    """A wrong response: the callee's span is a healthy 200, the caller fails on what it got."""
    _, groups, _ = scenario([_failing_after_call(1.0, 1000.0 + i) for i in range(6)], baselines={})
    assert [g.root for g in groups] == [("stock", "/items")]
    assert [k for k, _ in groups[0].candidates] == [("stock", "/items"), ("orders", "GET /orders")]


def test_a_span_failing_well_after_its_calls_blames_itself():
    _, groups, _ = scenario([_failing_after_call(60.0, 1000.0 + i) for i in range(6)], baselines={})
    assert [g.root for g in groups] == [("orders", "GET /orders")]
