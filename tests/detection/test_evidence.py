"""Ranking by explanation (aiops.detection.evidence) on small hand-built traces: one test per rule.

Topology: ``front /home -> api /api -> pay /pay -> bank /bank`` and ``api -> stock /stock``.
Baselines are learned from normal windows with the real learning code, then a
faulty window is judged: the suspects must name the service that *added* the
time, not the callers that waited for it.
"""

from __future__ import annotations

import random

from aiops.detection import evidence
from aiops.detection import robust as lb
from aiops.detection.ewma import BaselineValue
from aiops.detection.rules import WHOLE_SERVICE, Thresholds, detect, window_stats
from aiops.detection.shifts import network, shifted
from aiops.rca.analysis import analyse
from aiops.settings import Settings
from telemetry.columns import KIND_CLIENT
from tests.support.factories import new_trace_id, span

RULES = lb.Rules()
TOPOLOGY = {  # node: (service, endpoint, own work ms, callee nodes); the first node is the entry
    "front": ("front", "/home", 2.0, ["api"]),
    "api": ("api", "/api", 3.0, ["pay", "stock"]),
    "pay": ("pay", "/pay", 10.0, ["bank"]),
    "bank": ("bank", "/bank", 5.0, []),
    "stock": ("stock", "/stock", 4.0, []),
}
SHOP = {  # one service, three endpoints (the demo's shape)
    "checkout": ("shop", "/checkout", 3.0, ["payment", "inventory"]),
    "payment": ("shop", "/payment", 10.0, []),
    "inventory": ("shop", "/inventory", 4.0, []),
}


def _build(node, parent, start, rng, gap, own, down, out, topology=TOPOLOGY):
    service, endpoint, work, callees = topology[node]
    server = span(endpoint, 0.0, service=service, parent=parent, start_time=start,
                  trace_id=None if parent is not None else new_trace_id())
    out.append(server)
    t = start + (work + own.get(node, 0.0)) * rng.uniform(0.8, 1.2) / 1000
    for callee in callees:
        client = span("HTTP GET", 0.0, service=service, parent=server, start_time=t)
        client.kind, client.peer = KIND_CLIENT, None
        out.append(client)
        wire = rng.uniform(0.5, 1.5) + gap.get(callee, 0.0) + gap.get(("out", service), 0.0)
        if callee in down:  # never answered: the client span names it and times out
            client.peer, client.duration_ms = callee, 1000.0
            client.error, client.status_code, client.exception_type = True, None, "ReadTimeout"
        else:
            child_end = _build(callee, client, t + wire / 2000, rng, gap, own, down, out, topology)
            client.duration_ms = (child_end - t) * 1000 + wire / 2
        t += client.duration_ms / 1000
    server.duration_ms = (t - start) * 1000 + 0.2
    return start + server.duration_ms / 1000


def window(n, start, seed, gap=None, own=None, down=(), every=0.1, topology=TOPOLOGY):
    rng = random.Random(seed)
    spans = []
    for i in range(n):
        _build(next(iter(topology)), None, start + i * every, rng, gap or {}, own or {}, set(down), spans,
               topology)
    return spans


def learned(windows=8, n=40, topology=TOPOLOGY):
    base = {}
    for w in range(windows):
        seen = evidence.assess(window(n, 1000.0 + 30 * w, seed=w, topology=topology), base, RULES)
        for key, values in seen.values.items():
            if key not in seen.skip and lb.learnable(values, base.get(key), RULES):
                base[key] = lb.learn(base.get(key), values, 0.1, RULES)
    return base


BASE = learned()


def suspects(spans):
    return evidence.assess(spans, BASE, RULES).suspects


def names(found):
    return [s.service for s in found]


def test_normal_traffic_has_no_suspects():
    for seed in range(100, 110):
        assert suspects(window(40, 5000.0, seed)) == []


def test_delayed_answers_blame_the_callee_not_its_waiting_callers():
    found = suspects(window(40, 5000.0, 11, gap={"pay": 300.0}))
    assert names(found)[0] == "pay", [(s.service, s.score) for s in found]
    assert found[0].key == ("pay", "/pay")
    assert {s.kind for s in found[0].signals} == {"network-in"}


def test_a_quiet_callee_with_few_huge_delays_is_found():
    found = suspects(window(3, 5000.0, 12, gap={"bank": 600.0}, every=10.0))
    assert names(found)[:1] == ["bank"]


def test_all_traffic_delayed_blames_the_service_whose_in_and_out_edges_shifted():
    found = suspects(window(40, 5000.0, 13, gap={"api": 300.0, ("out", "api"): 300.0}))
    assert names(found)[0] == "api", [(s.service, s.score) for s in found]
    assert {s.kind for s in found[0].signals} == {"network-in", "network-out"}
    # Its callees' and caller's only evidence is their edge with api: explained away by it.
    assert names(found) == ["api"]


def test_a_caller_whose_calls_to_several_callees_all_slowed_is_the_one_cause():
    """A starved caller reads its answers late: every call it makes grows, its callers see little."""
    found = suspects(window(40, 5000.0, 19, gap={("out", "api"): 300.0}))
    assert names(found)[0] == "api", [(s.service, s.score) for s in found]
    assert {s.kind for s in found[0].signals} == {"network-out"}


def test_an_only_callee_still_outranks_its_caller_for_delayed_answers():
    found = suspects(window(40, 5000.0, 14, gap={"bank": 300.0}))  # pay calls only bank
    assert names(found)[0] == "bank"
    scores = {s.service: s.score for s in found}
    assert scores.get("pay", 0.0) < scores["bank"]


def test_own_work_slowing_blames_that_service_not_its_callers():
    found = suspects(window(40, 5000.0, 15, own={"stock": 120.0}))
    assert names(found)[0] == "stock"
    assert found[0].lead.kind == "self"


def test_a_callee_that_never_answers_is_evidence_through_the_named_call():
    found = suspects(window(40, 5000.0, 16, down={"bank"}))
    # Timed-out calls are judged as slow calls on the edge pay -> bank.
    assert names(found)[0] == "bank"


def test_rca_groups_the_symptoms_under_the_network_root_with_a_path_in_time_order():
    base_spans = [s for w in range(8) for s in window(40, 1000.0 + 30 * w, w)]
    th = Thresholds.from_settings(Settings(min_baseline_samples=1))
    stats = window_stats(base_spans)
    baselines = {k: BaselineValue(v.mean_ms, 0.0, 400, 8) for k, v in stats.items()}
    faulty = window(40, 5000.0, 17, gap={"pay": 300.0})
    seen = evidence.assess(faulty, BASE, RULES)
    anomalies = detect(window_stats(faulty), baselines, th)
    anomalies += network(seen.suspects, anomalies)
    anomalies += shifted(seen.whole, RULES, "duration", anomalies)
    assert {a.service for a in anomalies} >= {"front", "api", "pay"}
    by_trace = {}
    for s in faulty:
        by_trace.setdefault(s.trace_id, []).append(s)
    groups = analyse(anomalies, faulty, lambda ids: {t: by_trace[t] for t in ids}, baselines, th,
                     seen.suspects)
    assert [g.root[0] for g in groups] == ["pay"]
    group = groups[0]
    assert group.candidates[0][0] == ("pay", "/pay")
    path = group.path
    assert path[0]["service"] == "pay" and path[0]["signal"] == "network"
    assert path[0]["observed_ms"] > 250 and path[0]["baseline_ms"] < 5
    order = [h["service"] for h in path]
    assert order.index("api") < order.index("front"), order  # deepest symptom first
    onsets = [h["onset"] for h in path]
    assert all(isinstance(t, float) for t in onsets)


def test_a_callee_span_stored_by_an_earlier_cycle_still_makes_the_call_an_edge():
    faulty = window(40, 5000.0, 18, gap={"pay": 300.0})
    callee_spans = [s for s in faulty if s.service == "pay" and s.endpoint == "/pay"]
    rest = [s for s in faulty if s not in callee_spans]
    without = evidence.assess(rest, BASE, RULES)
    assert "pay" not in names(without.suspects)[:1]  # no callee span: no gap to judge
    with_context = evidence.assess(rest, BASE, RULES, context=callee_spans)
    assert names(with_context.suspects)[0] == "pay"
    assert not any(k[0] == "duration" and k[1] == "pay" for k in with_context.values)  # not judged twice


def test_a_quiet_callee_slowed_once_per_window_adds_up_over_windows():
    """One delayed call per window is never enough alone; carried over windows it is."""
    pending, names_ = {}, {}
    found = []
    for w in range(2):
        spans = window(1, 6000.0 + 30 * w, 30 + w, gap={"bank": 900.0})
        seen = evidence.assess(spans, BASE, RULES, earlier=pending, earlier_names=names_)
        found.append(names(seen.suspects))
        pending, names_ = seen.pending, seen.names
    assert found[0] == [] and found[1][:1] == ["bank"], found


SHOP_BASE = learned(topology=SHOP)


def test_two_slow_endpoints_of_one_service_stay_two_roots():
    """Payment and inventory slow in their own work, checkout's own work untouched: two faults of one
    service, not a starved process."""
    found = evidence.assess(window(40, 5000.0, 18, own={"payment": 300.0, "inventory": 60.0},
                                   topology=SHOP), SHOP_BASE, RULES).suspects
    [shop] = found
    assert not shop.wide
    assert shop.root_for(("shop", "/inventory")) == ("shop", "/inventory")
    assert shop.root_for(("shop", "/checkout")) == shop.key == ("shop", "/payment")


def test_an_entry_seen_a_few_times_and_untouched_vetoes_a_starved_verdict():
    """Payment and inventory slow in their own work and busy; checkout seen only 6 times (it waits
    on them), its own work as it was: two faults, not a starved process, which leaves no entry
    untouched."""
    own = {"payment": 300.0, "inventory": 60.0}
    spans = window(6, 5000.0, 23, own=own, topology=SHOP)
    for node in ("payment", "inventory"):
        spans += window(30, 5000.0, 24, own=own, topology={node: SHOP[node]})
    found = evidence.assess(spans, SHOP_BASE, RULES)
    checkout = found.own[("shop", "/checkout")]
    assert evidence.UNTOUCHED_ENTRY <= checkout.judged < evidence.BUSY_ENTRY and not checkout.strong
    assert all(v.moved for k, v in found.own.items() if k != ("shop", "/checkout"))
    [shop] = found.suspects
    assert not shop.wide


def test_a_service_slowed_in_every_endpoint_is_one_whole_service_root():
    found = evidence.assess(window(40, 5000.0, 19, own={"checkout": 40.0, "payment": 60.0, "inventory": 50.0},
                                   topology=SHOP), SHOP_BASE, RULES).suspects
    [shop] = found
    assert shop.wide
    assert shop.key == ("shop", WHOLE_SERVICE)
    assert shop.root_for(("shop", "/inventory")) == ("shop", WHOLE_SERVICE)


def _shop_groups(own: dict, seed: int) -> list:
    base_spans = [s for w in range(8) for s in window(40, 1000.0 + 30 * w, w, topology=SHOP)]
    th = Thresholds.from_settings(Settings(min_baseline_samples=1))
    baselines = {k: BaselineValue(v.mean_ms, 0.0, 400, 8) for k, v in window_stats(base_spans).items()}
    faulty = window(40, 5000.0, seed, own=own, topology=SHOP)
    seen = evidence.assess(faulty, SHOP_BASE, RULES)
    anomalies = detect(window_stats(faulty), baselines, th)
    anomalies += shifted(seen.own, RULES, "self", anomalies)
    by_trace = {}
    for s in faulty:
        by_trace.setdefault(s.trace_id, []).append(s)
    return analyse(anomalies, faulty, lambda ids: {t: by_trace[t] for t in ids}, baselines, th, seen.suspects)


def test_rca_gives_two_slow_endpoints_of_one_service_two_groups_and_a_hog_one():
    two = _shop_groups({"payment": 300.0, "inventory": 60.0}, seed=20)
    assert sorted(g.root for g in two) == [("shop", "/inventory"), ("shop", "/payment")]
    checkout = next(g for g in two if g.root == ("shop", "/payment"))
    assert "/checkout" in checkout.affected  # its time went to payment
    hog = _shop_groups({"checkout": 40.0, "payment": 60.0, "inventory": 50.0}, seed=21)
    assert [g.root for g in hog] == [("shop", WHOLE_SERVICE)]


def test_trace_and_log_suspects_share_score_lead_and_onset():
    """One definition (evidence.Accused) for both sources: scores add up, the strongest signal leads,
    the earliest onset is the suspect's (a signal with none is left out)."""
    from types import SimpleNamespace

    from aiops.logs.signals import LogSignal, LogSuspect

    def shift(*starts_and_z):
        return lb.Shift(("self", "pay", "/pay"), strong=[(SimpleNamespace(start_time=t), 9.0, 1.0, z)
                                                         for t, z in starts_and_z])

    quiet = evidence.Signal("network-in", "pay", "/pay", "api", lb.Shift(("gap", "api", "pay")), 1.0)
    own = evidence.Signal("self", "pay", "/pay", None, shift((30.0, 2.0), (20.0, 3.0)), 1.0)
    edge = evidence.Signal("network-in", "pay", "/pay", "api", shift((10.0, 4.0)), 0.5)
    traced = evidence.Suspect("pay", [quiet, own, edge])
    assert (traced.score, traced.lead, traced.onset) == (7.0, own, 10.0)
    assert quiet.onset is None and own.onset == 20.0

    def line(score, onset):
        return LogSignal("surge", "pay", "payment failed <*>", 3, 1.0, score, onset, [])

    first, strongest = line(1.0, 5.0), line(4.0, 8.0)
    logged = LogSuspect("pay", [first, strongest])
    assert (logged.score, logged.lead, logged.onset) == (5.0, strongest, 5.0)
    assert evidence.Suspect("idle").onset is None and LogSuspect("idle").score == 0


def test_every_endpoint_a_little_slower_and_one_past_the_gate_is_that_endpoint_not_a_starved_service():
    """Every endpoint's own work moved (most values above typical) but only payment's strongly: a
    fault of payment, the others slowed a little by the load it holds. A starved process slows
    every endpoint's own work by a like factor, strongly in each."""
    found = evidence.assess(window(40, 5000.0, 22, own={"checkout": 3.0, "payment": 60.0, "inventory": 3.0},
                                   topology=SHOP), SHOP_BASE, RULES)
    assert [k for k, v in found.own.items() if v.significant(RULES)] == [("shop", "/payment")]
    assert all(v.moved for v in found.own.values())
    assert all(len(v.strong) < RULES.min_strong for k, v in found.own.items() if k != ("shop", "/payment"))
    [shop] = found.suspects
    assert not shop.wide and shop.key == ("shop", "/payment")


def test_two_slow_endpoints_and_their_caller_a_little_slower_stay_two_roots():
    """Payment and inventory slow in their own work; checkout, which waits on both, a little slower in
    its own (every value above typical, none strongly): two faults, not a starved process."""
    found = evidence.assess(window(40, 5000.0, 25, own={"checkout": 2.0, "payment": 300.0, "inventory": 60.0},
                                   topology=SHOP), SHOP_BASE, RULES)
    checkout = found.own[("shop", "/checkout")]
    assert checkout.judged >= evidence.BUSY_ENTRY and checkout.moved
    assert len(checkout.strong) < RULES.min_strong
    [shop] = found.suspects
    assert not shop.wide
    assert shop.root_for(("shop", "/inventory")) == ("shop", "/inventory")


def _split_at(spans: list, service: str) -> tuple[list, list]:
    """(the spans of ``service``'s work and below, the rest): what a window holds when the calls
    into ``service`` end, and land, after the spans under them."""
    below = {id(s) for s in spans if s.service == service}
    changed = True
    while changed:
        ids = {s.span_id for s in spans if id(s) in below}
        more = {id(s) for s in spans if s.parent_span_id in ids and id(s) not in below}
        changed = bool(more)
        below |= more
    return [s for s in spans if id(s) in below], [s for s in spans if id(s) not in below]


def test_a_caller_delayed_both_ways_is_blamed_for_its_only_callees_calls_when_its_own_edge_is_unjudged():
    """pay's traffic delayed both ways: its calls to bank (pay's only callee, bank's only caller)
    grew; the calls into pay are stored but were judged by an earlier cycle. They grew as much,
    trace by trace: pay is slow on the network, not bank."""
    spans = window(40, 5000.0, 21, gap={"pay": 300.0, ("out", "pay"): 300.0})
    work, above = _split_at(spans, "pay")
    found = evidence.assess(work, BASE, RULES, context=above).suspects
    assert names(found)[:1] == ["pay"], [(s.service, s.score) for s in found]
    assert "bank" not in names(found)
    # Delayed answers from bank alone still blame bank: the calls into pay did not grow.
    work, above = _split_at(window(40, 5000.0, 22, gap={"bank": 300.0}), "pay")
    assert names(evidence.assess(work, BASE, RULES, context=above).suspects)[:1] == ["bank"]


def test_calls_grown_under_a_caller_whose_own_calls_in_have_not_landed_wait_a_window():
    """The same fault, the calls into pay not stored yet (they end later and land a cycle later):
    the grown calls to bank are held, not blamed on bank; with the calls into pay landed in the
    next window, pay is blamed for both."""
    work, above = _split_at(window(40, 5000.0, 23, gap={"pay": 300.0, ("out", "pay"): 300.0}), "pay")
    first = evidence.assess(work, BASE, RULES)
    assert names(first.suspects) == []
    assert ("gap", "pay", "bank") in first.pending
    second = evidence.assess(above, BASE, RULES, context=work, earlier=first.pending,
                             earlier_names=first.names)
    assert names(second.suspects) == ["pay"], [(s.service, s.score) for s in second.suspects]
    # A caller that is a trace's root has no call into it to wait for; nor has one called only from
    # outside the traces (a client that passed its trace context on but reports no spans).
    work, _ = _split_at(window(40, 5000.0, 24, gap={"api": 300.0}), "front")
    assert names(evidence.assess(work, BASE, RULES).suspects)[:1] == ["api"]
    for s in work:
        if s.parent_span_id is None:
            s.parent_span_id = new_trace_id()[:16]
    assert names(evidence.assess(work, BASE, RULES).suspects)[:1] == ["api"]
