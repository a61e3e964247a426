"""Blame where the time grew, on a mesh (aiops.rca.analysis.analyse after the real detection).

Topology, as the live OpenTelemetry mesh has it: ``front`` calls two parents,
``recs /list`` and ``order /place``; both call the shared mid-tier ``catalog``
(``/list`` and ``/item``), which calls the leaf ``stock /level``. The parents
do more work of their own than catalog does, so when catalog or its leaf slows,
the parents' durations grow by a small factor while the time went below them.
Every span is built as an instrumented mesh reports it: a SERVER span per
service, a CLIENT span per call with the callee's SERVER span under it, the
network between them as the gap.
"""

from __future__ import annotations

import random

import pytest

from aiops.detection import evidence
from aiops.detection import robust as lb
from aiops.detection.ewma import BaselineValue
from aiops.detection.rules import Thresholds, detect, window_stats
from aiops.detection.shifts import network, shifted
from aiops.rca.analysis import analyse
from aiops.rca.walk import Blamer, TraceTree
from aiops.settings import Settings
from telemetry.columns import KIND_CLIENT, KIND_SERVER
from tests.support.factories import new_trace_id, span

RULES = lb.Rules()
TH = Thresholds.from_settings(Settings(min_baseline_samples=1))
MESH = {  # node: (service, endpoint, own work ms, callee nodes)
    "front": ("front", "/home", 3.0, ["recs", "order"]),
    "recs": ("recs", "/list", 40.0, ["catalog-list", "catalog-list"]),
    "order": ("order", "/place", 10.0, ["catalog-item"] * 6 + ["pay"]),
    "catalog-list": ("catalog", "/list", 4.0, ["stock", "stock", "stock"]),
    "catalog-item": ("catalog", "/item", 3.0, ["stock", "stock"]),
    "stock": ("stock", "/level", 3.0, []),
    "pay": ("pay", "/charge", 8.0, []),
}


def _build(node, parent, start, rng, fault, out, pods):
    """One call subtree; returns its end and its SERVER span. ``fault``: extra own work per service
    (``own``), extra network delay on the answers of a service (``gap``) and on its own calls
    (``out``), and the one pod they hit (``pod``: all pods when not given); ``pods``: a service's
    pods, one chosen per span (its resource attributes)."""
    service, endpoint, work, callees = MESH[node]
    server = span(
        endpoint,
        0.0,
        service=service,
        parent=parent,
        start_time=start,
        trace_id=None if parent is not None else new_trace_id(),
    )
    pod = rng.choice(pods[service]) if service in pods else None
    if pod is not None:
        server.attributes = {"k8s.pod.name": pod, "http.route": endpoint}
    out.append(server)
    hit = fault.get("pod") in (None, pod)
    t = start + (work + hit * fault.get("own", {}).get(service, 0.0)) * rng.uniform(0.8, 1.2) / 1000
    for callee in callees:
        call = span("GET", 0.0, service=service, parent=server, start_time=t)
        call.kind, call.peer = KIND_CLIENT, None
        out.append(call)
        end, answered = _build(callee, call, t + 0.0002, rng, fault, out, pods)
        late = (
            fault.get("gap", {}).get(MESH[callee][0], 0.0)
            if fault.get("pod") in (None, (getattr(answered, "attributes", None) or {}).get("k8s.pod.name"))
            else 0.0
        )
        late += fault.get("out", {}).get(service, 0.0)  # all of the caller's traffic delayed
        call.duration_ms = (end - t) * 1000 + rng.uniform(0.5, 1.5) + late * rng.uniform(0.8, 1.2)
        t += call.duration_ms / 1000
    server.duration_ms = (t - start) * 1000 + 0.2
    return start + server.duration_ms / 1000, server


def window(n, start, seed, pods=None, **fault):
    rng = random.Random(seed)
    spans: list = []
    for i in range(n):
        _build("front", None, start + i * 0.1, rng, fault, spans, pods or {})
    return spans


def _learned():
    robust, means = {}, {}
    normal = []
    for w in range(8):
        spans = window(40, 1000.0 + 30 * w, seed=w)
        normal += spans
        seen = evidence.assess(spans, robust, RULES)
        for key, values in seen.values.items():
            if key not in seen.skip and lb.learnable(values, robust.get(key), RULES):
                robust[key] = lb.learn(robust.get(key), values, 0.1, RULES)
    for key, s in window_stats(normal).items():
        means[key] = BaselineValue(s.mean_ms, 0.0, 400, 8)
    return robust, means


ROBUST, MEANS = _learned()


def groups_of(faulty, signals=ROBUST):
    """What a detection cycle does with the window: the anomalies, then the root causes."""
    seen = evidence.assess(faulty, ROBUST, RULES)
    anomalies = detect(window_stats(faulty), MEANS, TH)
    anomalies += shifted(seen.own, RULES, "self", anomalies)
    anomalies += network(seen.suspects, anomalies)
    anomalies += shifted(seen.whole, RULES, "duration", anomalies)
    by_trace: dict[str, list] = {}
    for s in faulty:
        by_trace.setdefault(s.trace_id, []).append(s)
    found = analyse(
        anomalies,
        faulty,
        lambda ids: {t: by_trace[t] for t in ids},
        MEANS,
        TH,
        seen.suspects,
        signals=signals,
    )
    return anomalies, found


def _top(found):
    """The services the incidents would rank first, per group."""
    return sorted({g.candidates[0][0][0] for g in found})


def test_normal_mesh_traffic_has_no_root_cause():
    for seed in (100, 101):
        anomalies, found = groups_of(window(40, 5000.0, seed))
        assert found == [], [a.label for a in anomalies]


def test_a_cpu_hog_in_the_shared_mid_tier_is_blamed_on_it_not_on_its_two_callers():
    anomalies, found = groups_of(window(40, 5000.0, 22, own={"catalog": 22.0}))
    assert {a.service for a in anomalies} == {"catalog"}, [a.label for a in anomalies]
    assert _top(found) == ["catalog"], [(g.root, g.candidates[:3]) for g in found]


def test_the_walk_from_either_caller_follows_the_growth_into_the_mid_tier():
    """Catalog's own work grew a little per call (below the evidence gate); its callers, which do
    more work of their own than any one call takes, grew only by their calls. Each caller's span
    blames catalog, where the time grew, not itself."""
    faulty = window(20, 5000.0, 23, own={"catalog": 12.0})
    blamer = Blamer(MEANS, TH, ROBUST)
    by_trace: dict[str, list] = {}
    for s in faulty:
        by_trace.setdefault(s.trace_id, []).append(s)
    for parent in ("recs", "order"):
        spans = [s for s in faulty if s.service == parent and s.kind == KIND_SERVER]
        blamed = {k[0] for s in spans for k in blamer.culprits(s, TraceTree(by_trace[s.trace_id]))}
        assert blamed == {"catalog"}, (parent, blamed)
        # Without the typical values, the old rule: no call took half the caller's time.
        old = {k[0] for s in spans for k in Blamer(MEANS, TH).culprits(s, TraceTree(by_trace[s.trace_id]))}
        assert old == {parent}


@pytest.mark.parametrize("seed", [20, 23, 25])
def test_a_network_delay_into_the_leaf_is_blamed_on_the_leaf_not_on_the_mid_tier_or_its_callers(seed):
    """Every call from catalog to stock waits a little longer outside stock's span: catalog and, for
    some windows, order (which calls catalog six times) grow enough to be anomalies; stock's own
    spans do not move. One root cause, the leaf."""
    anomalies, found = groups_of(window(40, 5000.0, seed, gap={"stock": 20.0}))
    assert {a.service for a in anomalies} >= {"catalog"}, [a.label for a in anomalies]
    assert [g.root for g in found] == [("stock", "/level")], [(g.root, g.candidates[:3]) for g in found]
    assert found[0].candidates[0][0] == ("stock", "/level")


# -- pods: the service stays the ranked unit; a candidate names the pod its evidence points at ----

PODS = {"catalog": ["catalog-7d9-a", "catalog-7d9-b"], "stock": ["stock-0", "stock-1", "stock-2"]}


def _candidate(found, service):
    [group] = found
    return next(k for k, _ in group.candidates if k[0] == service), group.pods.get(service)


def test_a_cpu_hog_in_one_pod_of_the_mid_tier_names_that_pod():
    faulty = window(60, 5000.0, 22, pods=PODS, own={"catalog": 40.0}, pod="catalog-7d9-b")
    anomalies, found = groups_of(faulty)
    assert _top(found) == ["catalog"], [(g.root, g.candidates[:3]) for g in found]
    assert _candidate(found, "catalog")[1] == "catalog-7d9-b"


def test_a_network_delay_into_one_pod_of_the_leaf_names_that_pod():
    anomalies, found = groups_of(window(60, 5000.0, 24, pods=PODS, gap={"stock": 40.0}, pod="stock-2"))
    assert _top(found) == ["stock"], [(g.root, g.candidates[:3]) for g in found]
    assert _candidate(found, "stock")[1] == "stock-2"


def test_a_fault_in_every_pod_names_none():
    anomalies, found = groups_of(window(40, 5000.0, 22, pods=PODS, own={"catalog": 40.0}))
    assert _top(found) == ["catalog"]
    assert _candidate(found, "catalog")[1] is None


def test_spans_without_pods_name_none():
    anomalies, found = groups_of(window(40, 5000.0, 22, own={"catalog": 40.0}))
    assert all(g.pods == {} for g in found)


@pytest.mark.parametrize("delay", [20.0, 200.0])
def test_all_traffic_of_a_parent_delayed_blames_the_parent_not_the_mid_tier_it_calls(delay):
    """recs' pod delays its answers and its own calls to catalog: the call into recs grew in its gap,
    and so did recs' calls to catalog. Both sides of recs' network grew: recs, not catalog."""
    faulty = window(20, 5000.0, 30, gap={"recs": delay}, out={"recs": delay})
    blamer = Blamer(MEANS, TH, ROBUST)
    by_trace: dict[str, list] = {}
    for s in faulty:
        by_trace.setdefault(s.trace_id, []).append(s)
    fronts = [s for s in faulty if s.service == "front" and s.kind == KIND_SERVER]
    assert {k[0] for s in fronts for k in blamer.culprits(s, TraceTree(by_trace[s.trace_id]))} == {"recs"}
    # From recs' own spans (the anomaly a cycle raises on recs' endpoint) the call into them counts
    # too: it is in the trace, whichever span the walk starts from.
    own = [s for s in faulty if s.service == "recs" and s.kind == KIND_SERVER]
    assert {k[0] for s in own for k in blamer.culprits(s, TraceTree(by_trace[s.trace_id]))} == {"recs"}


def test_a_wrong_answer_whose_callee_span_is_not_stored_yet_in_some_traces_stays_one_callee():
    """order fails (KeyError) right after catalog answered 200 with a wrong body. In half the traces
    catalog's span is not stored yet: the call names it only as ``catalog`` / ``GET``. The blame on
    catalog stays on one key, which outranks order, instead of splitting and losing to it."""
    window_spans = []
    for i in range(12):
        start = 5000.0 + i
        root = span(
            "/place",
            30.0,
            service="order",
            status_code=500,
            exception_type="KeyError",
            exception_message="'items'",
            start_time=start,
        )
        call = span("GET", 8.0, service="order", parent=root, start_time=start + 0.02)
        call.kind, call.peer = KIND_CLIENT, "catalog"
        window_spans += [root, call]
        if i % 2:
            window_spans.append(span("/item", 6.0, service="catalog", parent=call, start_time=start + 0.021))
    anomalies = detect(window_stats(window_spans), MEANS, TH)
    assert [a.label for a in anomalies] == ["/place_error"]
    by_trace: dict[str, list] = {}
    for s in window_spans:
        by_trace.setdefault(s.trace_id, []).append(s)
    [group] = analyse(
        anomalies, window_spans, lambda ids: {t: by_trace[t] for t in ids}, MEANS, TH, [], signals=ROBUST
    )
    assert group.root == ("catalog", "/item")
    assert [k for k, _ in group.candidates] == [("catalog", "/item"), ("order", "/place")]
