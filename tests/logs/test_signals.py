"""Log signals (aiops.logs.signals): each signal against baselines learned from normal windows."""

from __future__ import annotations

from aiops.logs import signals as ls
from aiops.logs.mining import TemplateMiner

RULES = ls.LogRules()


def rec(t, service, body, severity=9, trace_id=None, span_id=None):
    return ls.LogRecord(t, service, severity, body, trace_id, span_id)


def normal_window(t0, n=20):
    lines = [rec(t0 + i, "api", f"order {i} created", trace_id=f"n{i}") for i in range(n)]
    lines += [rec(t0 + i, "db", f"query took {i} ms") for i in range(n)]
    lines += [rec(t0 + 1, "api", "cache miss for item 3", severity=13)]
    return lines


def learned(windows=5):
    miner, base = TemplateMiner(), ls.LogBaselines()
    for w in range(windows):
        lines = normal_window(w * 30.0)
        seen = ls.judge(lines, miner, base, RULES)
        assert not seen.suspects  # normal windows raise nothing
        ls.learn(base, seen, {r.service for r in lines} | set(base.windows), RULES, skip=seen.suspects)
    return miner, base


def test_an_error_surge_is_a_signal_at_that_service():
    miner, base = learned()
    lines = normal_window(300.0)
    lines += [rec(301.0 + i, "db", f"deadlock on row {i}", severity=17) for i in range(8)]
    seen = ls.judge(lines, miner, base, RULES)
    assert set(seen.suspects) == {"db"}
    kinds = {s.kind for s in seen.suspects["db"].signals}
    assert kinds == {"surge", "new"}


def test_a_new_template_needs_a_watched_service_and_enough_lines():
    miner, base = learned()
    few = normal_window(300.0) + [rec(301.0, "db", "replica lag 3 s", severity=13)]
    assert not ls.judge(few, miner, base, RULES).suspects
    unseen = [rec(301.0 + i, "newcomer", f"boom {i}", severity=17) for i in range(5)]
    assert "newcomer" not in ls.judge(unseen, miner, base, RULES).suspects  # never watched: no verdict


def test_new_info_lines_weigh_less_than_new_errors_and_exceptions_most():
    miner, base = learned()
    info = [rec(301.0 + i, "api", f"took route north {i}") for i in range(9)]
    error = [rec(301.0 + i, "db", f"write refused {i}", severity=17) for i in range(9)]
    exc = [rec(301.0 + i, "api", f"java.lang.NullPointerException at line {i}", severity=17)
           for i in range(9)]
    scores = {}
    for name, extra in (("info", info), ("error", error), ("exception", exc)):
        m, b = learned()
        seen = ls.judge(normal_window(300.0) + extra, m, b, RULES)
        scores[name] = max(s.score for s in seen.suspects[extra[0].service].signals if s.kind == "new")
    assert scores["info"] < scores["error"] < scores["exception"]
    assert miner is not None and base is not None


def test_a_template_found_mostly_in_slow_traces_is_a_signal():
    miner, base = learned()
    slow = [rec(301.0 + i, "db", f"lock wait {i} ms", trace_id=f"t{i}") for i in range(4)]
    slow_traces = {"t0", "t1", "t2", "t3"}
    seen = ls.judge(normal_window(300.0) + slow, miner, base, RULES, abnormal_traces=slow_traces)
    assert "trace-bound" in {s.kind for s in seen.suspects["db"].signals}
    calm = ls.judge(normal_window(330.0), miner, base, RULES, abnormal_traces={"t9"})
    assert not calm.suspects


def test_error_lines_are_indexed_by_trace_and_an_abnormal_window_is_not_learned():
    miner, base = learned()
    lines = normal_window(300.0)
    lines += [rec(301.0 + i, "db", f"deadlock {i}", 17, "t1", f"s{i}") for i in range(5)]
    seen = ls.judge(lines, miner, base, RULES)
    assert [r.span_id for r in seen.lines_of("t1") if r.service == "db"] == [f"s{i}" for i in range(5)]
    before = dict(base.warn_rate)
    ls.learn(base, seen, set(base.windows), RULES, skip=seen.suspects)
    assert base.warn_rate["db"] == before["db"]


def test_warnings_are_judged_against_the_traffic_served():
    """Four times the requests log four times the warnings: not a surge. The same warnings over the
    usual traffic are."""
    miner, base = TemplateMiner(), ls.LogBaselines()
    for w in range(5):
        lines = [rec(w * 30.0 + i, "api", f"stock low for item {i}", severity=13) for i in range(3)]
        seen = ls.judge(lines, miner, base, RULES, traffic={"api": 10})
        ls.learn(base, seen, {"api"}, RULES, skip=seen.suspects, traffic={"api": 10})
    assert base.traffic["api"] == 10.0
    busy = [rec(300.0 + i, "api", f"stock low for item {i}", severity=13) for i in range(12)]
    assert not ls.judge(busy, miner, base, RULES, traffic={"api": 40}).suspects
    assert "api" in ls.judge(busy, miner, base, RULES, traffic={"api": 10}).suspects


def test_a_warning_and_an_info_line_of_one_shape_are_different_templates():
    miner = TemplateMiner()
    found = ls.mine([rec(1.0, "api", "order 5 paid"), rec(2.0, "api", "order 6 paid", severity=13),
                     rec(3.0, "api", "order 7 paid")], miner)
    assert sorted(len(lines) for lines in found.values()) == [1, 2]
    assert {miner.template(k).split()[0] for k in found} == {"INFO", "WARN"}


def test_the_first_lines_of_a_new_error_do_not_make_it_normal():
    """Two lines at a fault's onset are under the signal's three; the next window's lines still count
    as new. An INFO line is learned at once, as before."""
    miner, base = learned()
    onset = normal_window(300.0) + [rec(301.0 + i, "db", f"replica {i} refused the write", severity=17)
                                    for i in range(2)] + [rec(302.0, "db", "vacuum of table 9 started")]
    seen = ls.judge(onset, miner, base, RULES)
    assert "db" not in seen.suspects
    ls.learn(base, seen, {"api", "db"}, RULES, skip=seen.suspects)
    later = normal_window(330.0) + [rec(331.0 + i, "db", f"replica {i} refused the write", severity=17)
                                    for i in range(3)] + [rec(332.0, "db", "vacuum of table 4 started")]
    signals = ls.judge(later, miner, base, RULES).suspects["db"].signals
    kinds = {(s.kind, s.template.split()[0]) for s in signals}
    assert ("new", "ERROR") in kinds and ("new", "INFO") not in kinds


def test_the_services_learned_are_bounded(monkeypatch):
    """Service names are the sender's: a flood of forged ones does not grow the baselines."""
    monkeypatch.setattr(ls, "MAX_SERVICES", 2)
    miner, base = TemplateMiner(), ls.LogBaselines()
    lines = [rec(1.0, f"forged-{i}", "hello") for i in range(5)]
    ls.learn(base, ls.judge(lines, miner, base, RULES), {r.service for r in lines}, RULES)
    assert len(base.windows) == len(base.warn_rate) == len(base.traffic) == 2
