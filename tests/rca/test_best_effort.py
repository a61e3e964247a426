"""A callee its best-effort caller cannot reach (aiops.detection.rules.refused_calls, then RCA).

``order /place`` calls ``recs`` for suggestions and answers 200 without them when the call fails:
no SERVER span anywhere fails. Reset connections to ``recs`` show only as failed CLIENT spans with
no answer (an exception, no status code, no ``recs`` span under them), named by ``peer.service``
and by the operation as the caller sees it (``GET``), which is none of ``recs``' own endpoints.
"""

from __future__ import annotations

from aiops.detection.ewma import BaselineValue
from aiops.detection.rules import Thresholds, detect, quiet_calls, window_stats
from aiops.rca.analysis import analyse
from aiops.settings import Settings
from telemetry.columns import KIND_CLIENT
from tests.support.factories import span

TH = Thresholds.from_settings(Settings())
BASELINES = {("order", "/place"): BaselineValue(30.0, 0.0, 500, 20),
             ("recs", "/suggest"): BaselineValue(8.0, 0.0, 500, 20)}


def _window(n: int, reset: int) -> list:
    spans = []
    for i in range(n):
        place = span("/place", 30.0, service="order", start_time=1_000.0 + i)
        call = span("GET", 9.0, service="order", parent=place, start_time=1_000.0 + i)
        call.kind, call.peer = KIND_CLIENT, "recs"
        spans += [place, call]
        if i < reset:
            call.status_code, call.error, call.exception_type = None, True, "ConnectionResetError"
        else:
            spans.append(span("/suggest", 8.0, service="recs", parent=call, start_time=1_000.0 + i))
    return spans


def _groups(spans):
    anomalies = detect(window_stats(spans), BASELINES, TH)
    by_trace: dict[str, list] = {}
    for s in spans:
        by_trace.setdefault(s.trace_id, []).append(s)
    return anomalies, analyse(anomalies, spans, lambda ids: {t: by_trace[t] for t in ids}, BASELINES, TH)


def test_resets_into_a_best_effort_callee_are_its_incident():
    anomalies, groups = _groups(_window(20, reset=12))
    assert [(a.key, a.type) for a in anomalies] == [(("recs", "GET"), "error")]
    [group] = groups
    assert group.root[0] == "recs", (group.root, group.candidates)
    assert group.candidates[0][0][0] == "recs"
    assert group.anomalies[0].pattern == "dependency"


def test_the_callees_own_usual_rate_is_the_yardstick_when_the_call_names_none_of_its_endpoints():
    """5 of 20 calls unanswered, at a callee that never fails: news. At one that fails a third of
    its requests anyway: not."""
    assert [a.key for a in detect(window_stats(_window(20, reset=5)), BASELINES, TH)] == [("recs", "GET")]
    flaky = {**BASELINES, ("recs", "/suggest"): BaselineValue(8.0, 0.33, 500, 20)}
    assert detect(window_stats(_window(20, reset=5)), flaky, TH) == []


def test_normal_traffic_raises_nothing():
    anomalies, groups = _groups(_window(20, reset=0))
    assert anomalies == [] and groups == []


def test_a_quiet_path_s_unanswered_calls_are_judged_over_the_last_windows():
    """Two resets in a window of two calls: too few alone. With the last windows' calls (6 of 7
    unanswered) they are news at a callee that never fails, not at one that fails a third anyway."""
    window = window_stats(_window(2, reset=2))
    assert detect(window, BASELINES, TH) == []
    assert quiet_calls(window, TH) == [("recs", "GET")]
    [found] = detect(window, BASELINES, TH, recent_calls={("recs", "GET"): (7, 6, 0)})
    assert found.key == ("recs", "GET") and found.pattern == "dependency"
    assert "6 of 7 calls" in found.message and "over the last windows" in found.message
    flaky = {**BASELINES, ("recs", "/suggest"): BaselineValue(8.0, 0.33, 500, 20)}
    assert detect(window, flaky, TH, recent_calls={("recs", "GET"): (7, 6, 0)}) == []
    busy = window_stats(_window(20, reset=12))
    assert quiet_calls(busy, TH) == []  # the window's own rule judges it


def test_a_quiet_path_s_timed_out_calls_are_judged_over_the_last_windows():
    """One call in a window timed out: too few alone; 4 of 7 over the last windows are news at a
    callee that never fails."""
    spans = _window(2, reset=0)
    call = next(s for s in spans if s.kind == KIND_CLIENT)
    spans = [s for s in spans if s.parent_span_id != call.span_id]  # recs never answered it
    call.status_code, call.error, call.exception_type, call.duration_ms = None, True, "ReadTimeout", 1000.0
    window = window_stats(spans)
    assert detect(window, BASELINES, TH) == []
    assert quiet_calls(window, TH) == [("recs", "GET")]
    [found] = detect(window, BASELINES, TH, recent_calls={("recs", "GET"): (7, 0, 4)})
    assert (found.key, found.type) == (("recs", "GET"), "timeout")
    assert "4 of 7 calls to it timed out over the last windows" in found.message
    assert detect(window, BASELINES, TH, recent_calls={("recs", "GET"): (40, 0, 4)}) == []  # 10 %
