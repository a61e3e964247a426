"""The synthetic network fault of ``bench/rca_synthetic.py``: re-timing hand-built traces (no replay)."""

from __future__ import annotations

import copy
import gzip
import importlib.util
import json
import random
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "rca_synthetic.py"
_spec = importlib.util.spec_from_file_location("rca_synthetic_under_test", BENCH)
synth = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synth)

MS = 1_000_000
T0 = 1_674_981_000_000_000_000  # ns
INJECT = T0 + 1_000 * MS  # traces below start at T0 + 2 s (after) or T0 (before)
D = 500 * MS

SERVER, CLIENT, INTERNAL = 2, 3, 1

# (service, spanId, parentSpanId, kind, start ms, end ms) relative to the trace's base time.
# A -> B -> C, with a later sibling inside B and a later call A -> D.
CHAIN = [
    ("A", "a_srv", "", SERVER, 0, 100),
    ("A", "a_cli_b", "a_srv", CLIENT, 10, 50),
    ("B", "b_srv", "a_cli_b", SERVER, 12, 48),
    ("B", "b_cli_c", "b_srv", CLIENT, 20, 40),
    ("C", "c_srv", "b_cli_c", SERVER, 22, 38),
    ("C", "c_db", "c_srv", INTERNAL, 25, 35),
    ("B", "b_int", "b_srv", INTERNAL, 41, 46),
    ("A", "a_cli_d", "a_srv", CLIENT, 60, 80),
    ("D", "d_srv", "a_cli_d", SERVER, 62, 78),
]


def request(traces: dict[str, tuple[int, list]]) -> list[dict]:
    """One ExportTraceServiceRequest per service, spans of every trace, as the Collector writes them."""
    by_service: dict[str, list[dict]] = {}
    for trace_id, (base, spans) in traces.items():
        for service, sid, pid, kind, start, end in spans:
            span = {"traceId": trace_id, "spanId": sid, "name": sid, "kind": kind,
                    "startTimeUnixNano": str(base + start * MS), "endTimeUnixNano": str(base + end * MS),
                    "status": {}}
            if pid:
                span["parentSpanId"] = pid
            by_service.setdefault(service, []).append(span)
    return [{"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}
        for service, spans in by_service.items()]


def times(requests: list[dict], trace_id: str) -> dict[str, tuple[int, int]]:
    return {sid: (int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"]))
            for sid, (_, span) in synth.traces_of(requests)[trace_id].items()}


def delta(before: dict, after: dict) -> dict[str, tuple[int, int]]:
    """spanId -> (start shift, end shift) in ms."""
    return {sid: ((after[sid][0] - before[sid][0]) // MS, (after[sid][1] - before[sid][1]) // MS)
            for sid in before}


def inject(requests, target, variant, delay=D, inject_ns=INJECT):
    return synth.inject_network_fault(requests, target, variant, inject_ns, lambda: delay)


@pytest.fixture
def chain():
    return request({"t_after": (T0 + 2_000 * MS, CHAIN), "t_before": (T0, CHAIN[:5])})


def test_answers_delays_the_calls_into_the_target_not_its_own_spans(chain):
    before = times(chain, "t_after")
    stats = inject(chain, "B", "answers")
    shift = delta(before, times(chain, "t_after"))
    assert stats == {"delayed_calls": 1, "traces": 1}
    assert shift == {
        "a_srv": (0, 500),     # ancestor of the delayed call waits for it
        "a_cli_b": (0, 500),   # the caller's CLIENT span ends d later
        "b_srv": (0, 0),       # the callee's SERVER span is unchanged: the gap grows
        "b_cli_c": (0, 0),     # B's own outgoing call is not delayed in this variant
        "c_srv": (0, 0),
        "c_db": (0, 0),
        "b_int": (0, 0),       # inside B: happened before B answered
        "a_cli_d": (500, 500),  # a later sibling of the delayed call starts d later
        "d_srv": (500, 500),    # ... with its subtree
    }


def test_all_also_delays_the_targets_outgoing_calls(chain):
    before = times(chain, "t_after")
    stats = inject(chain, "B", "all")
    after = times(chain, "t_after")
    shift = delta(before, after)
    assert stats == {"delayed_calls": 2, "traces": 1}
    assert shift == {
        "b_cli_c": (0, 500),     # B's call to C ends d later
        "c_srv": (0, 0),         # C itself is untouched
        "c_db": (0, 0),
        "b_int": (500, 500),     # B's work after that call moves later
        "b_srv": (0, 500),       # B's SERVER span grows by what it waited for
        "a_cli_b": (0, 1000),    # the call into B: B's wait plus B's delayed answer
        "a_srv": (0, 1000),
        "a_cli_d": (1000, 1000),
        "d_srv": (1000, 1000),
    }
    # The re-timed trace is still well nested: every span inside its parent.
    parents = {sid: pid for _, sid, pid, *_ in CHAIN}
    for sid, pid in parents.items():
        if pid:
            assert after[pid][0] <= after[sid][0] and after[sid][1] <= after[pid][1], sid


def test_spans_before_the_injection_are_untouched(chain):
    original = copy.deepcopy(chain)
    inject(chain, "B", "all")
    assert times(chain, "t_before") == times(original, "t_before")
    # A trace that straddles the injection: only the call that ends after it is delayed.
    seq = [
        ("A", "root", "", SERVER, 0, 3000),
        ("A", "call1", "root", CLIENT, 100, 200),
        ("B", "srv1", "call1", SERVER, 110, 190),
        ("A", "call2", "root", CLIENT, 1500, 1600),
        ("B", "srv2", "call2", SERVER, 1510, 1590),
    ]
    reqs = request({"t": (T0, seq)})
    before = times(reqs, "t")
    inject(reqs, "B", "answers")
    shift = delta(before, times(reqs, "t"))
    assert shift["call1"] == (0, 0) and shift["srv1"] == (0, 0)
    assert shift["call2"] == (0, 500) and shift["srv2"] == (0, 0)
    assert shift["root"] == (0, 500)


def test_several_delayed_calls_in_one_trace_add_up():
    seq = [
        ("A", "root", "", SERVER, 0, 100),
        ("A", "call1", "root", CLIENT, 10, 30),
        ("B", "srv1", "call1", SERVER, 12, 28),
        ("A", "call2", "root", CLIENT, 40, 60),
        ("B", "srv2", "call2", SERVER, 42, 58),
        ("A", "tail", "root", INTERNAL, 70, 90),
    ]
    reqs = request({"t": (T0 + 2_000 * MS, seq)})
    before = times(reqs, "t")
    delays = iter([300 * MS, 700 * MS])
    stats = synth.inject_network_fault(reqs, "B", "answers", INJECT, lambda: next(delays))
    shift = delta(before, times(reqs, "t"))
    assert stats["delayed_calls"] == 2
    assert shift["call1"] == (0, 300)          # the earlier call gets the first draw
    assert shift["call2"] == (300, 1000)       # pushed by call1, then delayed itself
    assert shift["srv2"] == (300, 300)         # moved with its call, not stretched
    assert shift["tail"] == (1000, 1000)
    assert shift["root"] == (0, 1000)


def test_a_repeated_span_is_retimed_like_its_first_copy(chain):
    # Exporters resend: the same span (trace and span id) can appear twice in a file.
    resent = copy.deepcopy(chain[0])  # service A's spans again, as a second line
    chain.append(resent)
    inject(chain, "B", "answers")
    first = {s["spanId"]: s for s in chain[0]["resourceSpans"][0]["scopeSpans"][0]["spans"]
             if s["traceId"] == "t_after"}
    again = {s["spanId"]: s for s in resent["resourceSpans"][0]["scopeSpans"][0]["spans"]
             if s["traceId"] == "t_after"}
    assert again == first
    assert int(again["a_cli_b"]["endTimeUnixNano"]) - int(again["a_cli_b"]["startTimeUnixNano"]) == 540 * MS


def test_other_services_and_unrelated_traces_keep_their_times(chain):
    original = copy.deepcopy(chain)
    stats = inject(chain, "Z", "all")  # no such service: nothing is delayed
    assert stats == {"delayed_calls": 0, "traces": 0}
    assert chain == original


def test_unknown_variant_is_refused(chain):
    with pytest.raises(ValueError):
        inject(chain, "B", "sideways")


def test_jitter_stays_within_twenty_percent_and_is_seeded():
    a = synth.jittered(800, random.Random("seed"))
    b = synth.jittered(800, random.Random("seed"))
    sa, sb = [a() for _ in range(200)], [b() for _ in range(200)]
    assert sa == sb
    assert all(640 * MS <= v <= 960 * MS for v in sa)
    assert max(sa) - min(sa) > 200 * MS  # it does jitter


def test_written_file_keeps_everything_but_the_times(tmp_path, chain):
    path = tmp_path / "case.otlp.jsonl.gz"
    original = copy.deepcopy(chain)
    inject(chain, "B", "answers")
    synth.write_requests(chain, path)
    back = synth.read_requests(path)
    assert back == chain
    with gzip.open(path, "rb") as f:
        lines = f.read().splitlines()
    assert len(lines) == len(original)
    assert json.loads(lines[0])["resourceSpans"][0]["resource"] == original[0]["resourceSpans"][0]["resource"]

    def strip(reqs):
        out = copy.deepcopy(reqs)
        for r in out:
            for span in r["resourceSpans"][0]["scopeSpans"][0]["spans"]:
                del span["startTimeUnixNano"], span["endTimeUnixNano"]
        return out

    assert strip(back) == strip(original)


def test_plan_spreads_targets_and_the_grid_deterministically(tmp_path):
    # Two `return` backgrounds and one other case; A calls B, C and D (D once: a quiet service).
    spans = [
        ("A", "a", "", SERVER, 0, 100),
        ("A", "ab", "a", CLIENT, 10, 20), ("B", "b", "ab", SERVER, 11, 19),
        ("A", "ac", "a", CLIENT, 30, 40), ("C", "c", "ac", SERVER, 31, 39),
        ("C", "cc", "c", INTERNAL, 32, 38),
    ]
    quiet = spans + [("A", "ad", "a", CLIENT, 50, 60), ("D", "d", "ad", SERVER, 51, 59)]
    cases = []
    for n, root_cause in enumerate(["B", "C", "D"]):
        name = f"case{n}"
        traces = {f"{name}-t{i}": (T0 + i * 10_000 * MS, quiet if i == 5 else spans) for i in range(12)}
        synth.write_requests(request(traces), tmp_path / f"{name}.otlp.jsonl.gz")
        cases.append({"case": name, "file": f"{name}.otlp.jsonl.gz", "inject_time": "2023-01-29T08:30:10Z",
                      "root_cause_service": root_cause, "fault": "return" if n < 2 else "exception"})
    meta = {"normal_traffic": "normal.otlp.jsonl.gz", "cases": cases}

    plan = synth.plan_cases(meta, tmp_path, 8, seed=3)
    assert plan == synth.plan_cases(meta, tmp_path, 8, seed=3)
    assert plan != synth.plan_cases(meta, tmp_path, 8, seed=4)
    assert {c["background"] for c in plan} == {"case0", "case1"}  # only `return` cases
    by_bg = {c["case"]: c["root_cause_service"] for c in cases}
    for c in plan:
        assert c["target"] in {"B", "C", "D"}  # services with a caller in another service; never A
        assert c["target"] != by_bg[c["background"]]
        assert c["since"] == "2023-01-29T08:30:00Z"  # the file's first span
    assert "D" in {c["target"] for c in plan[:3]}  # every service once before any repeats
    assert sorted((c["variant"], c["delay_ms"]) for c in plan) == sorted(
        (v, d) for v in synth.VARIANTS for d in synth.DELAYS_MS)
