"""Vanished code paths (aiops.logs.paths, through aiops.logs.feed.judge): a line most of an endpoint's
requests log and none of the window's did is a log signal; less traffic, a milder drop or a
service gone silent are not."""

from __future__ import annotations

from aiops.logs import clues as logrca
from aiops.logs import feed as logfeed
from aiops.logs import paths as lp
from aiops.logs import signals as ls
from tests.support.factories import span


class ListFeed:
    """A feed of prepared windows of lines, one per take."""

    def __init__(self):
        self.lines: list[ls.LogRecord] = []

    def take(self, until: float) -> list[ls.LogRecord]:
        lines, self.lines = self.lines, []
        return lines


def window(start: float, requests: int, logs_total: bool, service_logs: bool = True):
    """``requests`` calls of cart/checkout; each logs "checkout of cart N started" and, when
    ``logs_total``, "total for cart N computed as M". A second endpoint keeps logging unless
    ``service_logs`` is false."""
    spans, lines = [], []
    for i in range(requests):
        s = span("checkout", 20.0, service="cart", start_time=start + i * 0.1)
        spans.append(s)
        lines.append(ls.LogRecord(start + i * 0.1, "cart", 9, f"checkout of cart {i} started",
                                  s.trace_id, s.span_id))
        if logs_total:
            total = f"total for cart {i} computed as {i * 3}"
            lines.append(ls.LogRecord(start + i * 0.1 + 0.01, "cart", 9, total, s.trace_id, s.span_id))
    for i in range(5):
        s = span("health", 1.0, service="cart", start_time=start + i)
        spans.append(s)
        if service_logs:
            lines.append(ls.LogRecord(start + i, "cart", 9, "health check ok", s.trace_id, s.span_id))
    if not service_logs:
        lines = []
    return spans, lines


def learned(windows: int = 6) -> logfeed.Registered:
    feed = ListFeed()
    reg = logfeed.Registered(feed)
    for w in range(windows):
        spans, lines = window(w * 30.0, 20, logs_total=True)
        feed.lines = lines
        logs = logfeed.judge(reg, w * 30.0 + 30, spans, [])
        assert not logs.suspects  # normal windows are calm
    return reg


def judge(reg: logfeed.Registered, spans, lines, at: float = 300.0) -> ls.LogWindow:
    reg.feed.lines = lines
    return logfeed.judge(reg, at, spans, [])


def test_a_line_every_request_logged_and_none_now_is_a_vanished_path():
    reg = learned()
    spans, lines = window(300.0, 15, logs_total=False)
    logs = judge(reg, spans, lines)
    sus = logs.suspects["cart"]
    [sig] = sus.signals
    assert sig.kind == "vanished" and sig.severe and (sig.count, sig.expected) == (0, 15.0)  # requests
    assert "total for cart" in sig.template and sig.template_id is not None
    assert sig.score >= logrca.MIN_ANOMALY_SCORE  # strong enough to raise on its own
    assert sig.describe().startswith("0 requests logged a line usually logged by 15.0 of them")
    # the examples are lines of the requests that took the other path: they name the endpoint
    assert {r.body for r in sig.examples} <= {f"checkout of cart {i} started" for i in range(15)}


def test_less_traffic_with_the_same_paths_is_not_a_signal():
    reg = learned()
    spans, lines = window(300.0, 6, logs_total=True)
    assert not judge(reg, spans, lines).suspects


def test_a_service_that_logs_nothing_at_all_is_left_to_the_traces():
    """A silent service is a broken log pipeline as often as a fault: no verdict."""
    reg = learned()
    spans, lines = window(300.0, 15, logs_total=False, service_logs=False)
    assert not judge(reg, spans, lines).suspects


def test_a_vanished_path_is_not_learned_as_normal_while_it_lasts():
    reg = learned()
    for w in range(3):
        spans, lines = window(300.0 + w * 30, 15, logs_total=False)
        assert "cart" in judge(reg, spans, lines, at=330.0 + w * 30).suspects


def test_the_test_weighs_how_far_the_share_fell_and_how_many_requests_saw_it():
    base = lp.PathBaselines()
    endpoint = ("cart", "checkout")
    for _ in range(6):
        lp.learn(base, {endpoint: {f"r{i}": ({1, 2} if i % 2 == 0 else {1}) for i in range(20)}})
    assert base.present[endpoint][2] == 10.0 and base.requests[endpoint] == 20.0
    half = {endpoint: {f"s{i}": ({1, 2} if i % 4 == 0 else {1}) for i in range(20)}}
    assert lp.vanished(half, base) == []  # 25% instead of 50%: a drop, not a vanished path
    twenty = {endpoint: {f"s{i}": {1} for i in range(20)}}
    assert lp.vanished(twenty, base) == []  # 0.5 ** 20 at the share's low end: not rare enough
    none = {endpoint: {f"s{i}": {1} for i in range(40)}}
    [v] = lp.vanished(none, base)
    assert (v.template_id, v.requests, v.logged, v.usual_share) == (2, 40, 0, 0.5)
    few = {endpoint: {f"s{i}": {1} for i in range(4)}}
    assert lp.vanished(few, base) == []  # four requests prove nothing


def test_binomial_tail():
    assert abs(lp.log10_tail(0, 10, 0.5) - 10 * -0.30103) < 1e-6
    assert abs(10 ** lp.log10_tail(1, 3, 0.5) - 0.5) < 1e-9


def test_the_suspect_is_keyed_by_the_endpoint_whose_path_vanished():
    """Even when that endpoint logged nothing at all in the window (its other lines name another)."""
    reg = learned()
    spans, lines = window(300.0, 15, logs_total=False)
    lines = [r for r in lines if "checkout" not in r.body]  # the endpoint stopped logging altogether
    logs = judge(reg, spans, lines)
    assert logs.suspects["cart"].signals[0].endpoint == "checkout"
    assert logrca.suspect_keys(logs, spans)["cart"] == ("cart", "checkout")


def test_the_endpoints_followed_are_bounded(monkeypatch):
    """Span names are the sender's: a flood of forged endpoints does not grow the baselines."""
    monkeypatch.setattr(lp, "MAX_ENDPOINTS", 3)
    base = lp.PathBaselines()
    lp.learn(base, {("cart", f"forged-{i}"): {"r": {1}} for i in range(10)})
    assert len(base.windows) == len(base.requests) == len(base.present) == 3
    lp.learn(base, {("cart", "forged-0"): {"r": {1}}})  # one already followed still learns
    assert base.windows[("cart", "forged-0")] == 2
