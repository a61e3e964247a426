"""RCA with logs (aiops.rca.analysis.analyse ``logs=``, aiops.logs.clues): log evidence moves the ranking
to the service that logged the new error; without log lines the result is the trace-only one, exactly."""

from __future__ import annotations

import copy

from aiops.detection.ewma import BaselineValue
from aiops.detection.rules import Thresholds, detect, window_stats
from aiops.logs import clues as logrca
from aiops.logs import signals as ls
from aiops.logs.mining import TemplateMiner
from aiops.rca.analysis import analyse
from aiops.rca.walk import TraceTree
from aiops.settings import Settings
from tests.support.factories import client, span

TH = Thresholds.from_settings(Settings())
BASELINES = {("front", "order"): BaselineValue(40.0, samples=200, windows=20),
             ("mid", "price"): BaselineValue(20.0, samples=200, windows=20),
             ("back", "rates"): BaselineValue(8.0, samples=200, windows=20)}


def call(parent, service, endpoint, ms):
    c = client(parent, endpoint, ms + 1)
    c.peer = service
    return c, span(endpoint, ms, parent=c, service=service, start_time=parent.start_time)


def trace(start, failed):
    """front/order -> mid/price -> back/rates; a failed order is a 500 at front only (no status
    codes below it: a wrong answer travelled up)."""
    root = span("order", 38.0, service="front", start_time=start, status_code=500 if failed else 200)
    c1, mid = call(root, "mid", "price", 20.0)
    c2, back = call(mid, "back", "rates", 8.0)
    return [root, c1, mid, c2, back]


def window():
    traces = [trace(1000.0 + i, failed=i % 2 == 0) for i in range(30)]
    return [s for t in traces for s in t], traces


def run(spans, logs=None):
    anomalies = detect(window_stats(spans), BASELINES, TH)
    by_trace = {}
    for s in spans:
        by_trace.setdefault(s.trace_id, []).append(s)
    groups = analyse(anomalies, spans, lambda ids: {t: by_trace.get(t, []) for t in ids}, BASELINES, TH,
                     (), logs)
    return groups


def judged(lines):
    miner, base = TemplateMiner(), ls.LogBaselines()
    for w in range(6):  # long enough for the three services to be known quiet (aiops.logs.noise)
        normal = [ls.LogRecord(w * 30.0 + i, svc, 9, f"handled request {i}") for i in range(10)
                  for svc in ("front", "mid", "back")]
        seen = ls.judge(normal, miner, base)
        ls.learn(base, seen, {"front", "mid", "back"})
    return ls.judge(lines, miner, base)


def summary(groups):
    return [(g.root, g.candidates, [a.label for a in g.anomalies], g.example_trace, g.path) for g in groups]


def test_without_log_lines_the_result_is_the_trace_only_one():
    spans, _ = window()
    today = summary(run(copy.deepcopy(spans)))
    assert today == summary(run(copy.deepcopy(spans), None))
    empty = judged([])
    assert not empty.suspects and not empty.problems
    with_empty = run(copy.deepcopy(spans), empty)
    assert [(g.root, g.candidates, g.example_trace) for g in with_empty] == [
        (root, candidates, example) for root, candidates, _, example, _ in today]
    assert today[0][0][0] != "back"  # traces alone cannot see the wrong answer from back


def test_the_service_that_logged_the_new_error_leads_and_its_lines_reach_the_path():
    spans, traces = window()
    lines = []
    for t in traces[::2]:
        back = t[4]
        lines.append(ls.LogRecord(back.start_time + 0.001, "back", 17,
                                  f"rates table corrupt: row {len(lines)} has no currency",
                                  back.trace_id, back.span_id))
    logs = judged(lines)
    assert set(logs.suspects) == {"back"}
    groups = run(spans, logs)
    assert len(groups) == 1
    group = groups[0]
    assert group.root == ("back", "rates")
    assert group.candidates[0][0] == ("back", "rates")
    first = group.path[0]
    assert first["service"] == "back"
    assert first["log_lines"] and all(line["service"] == "back" for line in first["log_lines"])
    assert len(first["log_lines"]) <= 3
    assert first["templates"] and "rates table corrupt" in first["templates"][0]["template"]



def _timed_out_call(fails: bool):
    """front/order calling mid/price, whose answer never came (its span is not in yet)."""
    root = span("order", 1000.0, service="front", start_time=1000.0, status_code=504 if fails else 200)
    c = client(root, "price", 1000.0)
    c.peer = "mid"
    if fails:
        c.error, c.status_code, c.exception_type = True, None, "ReadTimeout"
    line = ls.LogRecord(1001.0, "front", 17, "call to mid timed out after 1s", root.trace_id, root.span_id)
    spoke = ls.LogSignal("new", "front", "ERROR call to mid timed out after <*>", 3, 0.0, 5.2, 1001.0, [line])
    logs = ls.LogWindow({}, {"front": ls.LogSuspect("front", [spoke])}, {root.trace_id: [line]})
    return root, TraceTree([root, c]), logs


def test_lines_of_a_service_whose_logs_did_not_change_move_no_blame():
    """A service that logs a warning on every request says nothing about this trace: only the lines
    of services whose logs changed in the window walk the blame."""
    root, tree, logs = _timed_out_call(fails=False)
    logs.suspects.clear()
    assert logrca.walk({("mid", "price"): 1.0}, root, tree, logs) == {("mid", "price"): 1.0}


def test_a_caller_logging_its_callees_timeout_keeps_the_blame_on_the_callee():
    """A line logged above the failure the traces blame reports it ("call to mid timed out"): the
    trace walk's blame stays below. A line above a callee that did not fail is the caller's own news."""
    root, tree, logs = _timed_out_call(fails=True)
    assert logrca.walk({("mid", "price"): 1.0}, root, tree, logs) == {("mid", "price"): 1.0}
    root, tree, logs = _timed_out_call(fails=False)
    assert logrca.walk({("mid", "price"): 1.0}, root, tree, logs) == {("mid", "price"): 0.5,
                                                                       ("front", "order"): 0.5}
