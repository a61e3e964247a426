"""Self time: own work per span, counted per service entry, judged against a log baseline."""

from __future__ import annotations

import math

from aiops.detection import robust as lb
from aiops.detection import selftime as st
from aiops.detection.shifts import shifted
from telemetry.columns import KIND_CLIENT, KIND_INTERNAL
from tests.support.factories import span

RULES = lb.Rules()


def internal(endpoint, duration_ms, parent, start_time, service="svc"):
    s = span(endpoint, duration_ms, parent=parent, service=service, start_time=start_time)
    s.kind = KIND_INTERNAL
    return s


def test_self_time_counts_overlapping_children_once():
    root = span("/order", 100.0, service="svc", start_time=1000.0)
    a = internal("db", 40.0, root, 1000.010)
    b = internal("db", 40.0, root, 1000.030)  # overlaps a by 20 ms
    index = st.SpanIndex([root, a, b])
    assert abs(index.self_ms(root) - 40.0) < 1e-6  # 100 - (10..70 covered = 60)
    assert index.self_ms(a) == 40.0


def test_internal_spans_count_for_their_service_entry():
    root = span("/order", 100.0, service="svc", start_time=1000.0)
    op = internal("OrderController.create", 90.0, root, 1000.0)
    callee = span("/price", 10.0, service="other", parent=op, start_time=1000.01)
    index = st.SpanIndex([root, op, callee])
    assert index.entry(op) == ("svc", "/order")
    assert index.entry(callee) == ("other", "/price")


def test_learn_seeds_then_moves_slowly():
    first = lb.learn(None, [10.0, 10.0], alpha=0.1, rules=RULES)
    assert first.samples == 2 and abs(first.typical_ms - 10.0) < 1e-9
    for _ in range(RULES.warmup_windows):
        first = lb.learn(first, [10.0] * 10, alpha=0.1, rules=RULES)
    moved = lb.learn(first, [1000.0], alpha=0.1, rules=RULES)
    assert first.center < moved.center < first.center + 1 and moved.var > 0
    assert not lb.learnable([1000.0] * 3, lb.LogBaseline(first.center, 0.01, 0.0, 0.0, 50, 5), RULES)


def test_a_call_to_a_known_callee_is_an_edge_not_the_callers_own_work():
    root = span("/order", 500.0, service="svc", start_time=1000.0)
    call = span("HTTP GET", 480.0, parent=root, service="svc", start_time=1000.01)
    call.kind = KIND_CLIENT
    callee = span("/price", 10.0, service="other", parent=call, start_time=1000.2)
    index = st.SpanIndex([root, call, callee])
    assert st.is_edge(index, call)
    _, values = st.shifts(index, {}, RULES)
    assert ("self", "svc", "HTTP GET") not in values  # the 470 ms outside /price is the network's
    assert [round(v, 6) for v in values[("self", "svc", "/order")]] == [20.0]


def test_a_call_whose_callee_reports_later_is_not_the_callers_own_work():
    """Each service exports in its own batches: one call's callee span is in the window, the
    other's lands a cycle later. The second call is still an edge, not 3 s of the caller's work."""
    def order(start: float):
        root = span("/order", 3020.0, service="svc", start_time=start)
        call = span("POST /pay", 3000.0, parent=root, service="svc", start_time=start + 0.01)
        call.kind = KIND_CLIENT
        return root, call

    root, call = order(1000.0)
    answered = span("/pay", 2990.0, service="payments", parent=call, start_time=1000.015)
    late_root, late_call = order(1001.0)
    index = st.SpanIndex([root, call, answered, late_root, late_call])
    assert st.is_edge(index, late_call)
    _, values = st.shifts(index, {}, RULES)
    assert ("self", "svc", "POST /pay") not in values

    # With no call of that operation answered, it is a call to an uninstrumented dependency: own work.
    alone = st.SpanIndex([late_root, late_call])
    assert not st.is_edge(alone, late_call)
    assert ("self", "svc", "POST /pay") in st.shifts(alone, {}, RULES)[1]


def _window(self_ms: float, n: int):
    spans = []
    for i in range(n):
        root = span("/contacts", self_ms + 5.0, service="svc", start_time=1000.0 + i)
        spans += [root, internal("SELECT", 5.0, root, 1000.0 + i)]
    return st.SpanIndex(spans)


def test_a_starved_entry_is_one_self_time_anomaly_and_jitter_is_none():
    base = {("self", "svc", "/contacts"): lb.LogBaseline(*_log_stats(10.0), 0.0, 0.0, 50, 5),
            ("self", "svc", "SELECT"): lb.LogBaseline(*_log_stats(5.0), 0.0, 0.0, 50, 5)}
    verdicts, values = st.shifts(_window(12.0, 6), base, RULES, now=2000.0)
    assert shifted(verdicts, RULES, "self") == []
    assert len(values[("self", "svc", "/contacts")]) == 6

    verdicts, _ = st.shifts(_window(300.0, 6), base, RULES, now=2000.0)
    found = shifted(verdicts, RULES, "self")
    assert [(a.key, a.type) for a in found] == [(("svc", "/contacts"), "latency")]
    assert len(found[0].evidence) == 6 and found[0].observed > 250


def test_spans_still_running_at_the_cycle_are_not_judged():
    base = {("self", "svc", "/contacts"): lb.LogBaseline(*_log_stats(10.0), 0.0, 0.0, 50, 5)}
    verdicts, values = st.shifts(_window(300.0, 3), base, RULES, now=1000.1)
    assert verdicts == {} and ("self", "svc", "/contacts") not in values


def _log_stats(ms: float) -> tuple[float, float]:
    return math.log1p(ms), 0.04


def test_the_traces_to_look_up_are_unanswered_calls_first_then_spans_begun_before_the_last_cycle():
    old = span("/report", 5000.0, service="svc", start_time=990.0)  # began before the last cycle (995)
    fresh = span("/order", 20.0, service="svc", start_time=999.0)
    call = span("GET", 10.0, parent=fresh, service="svc", start_time=999.001)
    call.kind = KIND_CLIENT  # its callee's span is not in the window
    answered = span("/home", 30.0, service="svc", trace_id="f" * 32, start_time=999.0)
    asked = span("GET", 10.0, parent=answered, service="svc", start_time=999.001)
    asked.kind = KIND_CLIENT
    callee = span("/price", 5.0, parent=asked, service="other", start_time=999.002)
    assert st.needs_context([old, fresh, call, answered, asked, callee], since=995.0) == [
        fresh.trace_id, old.trace_id]
