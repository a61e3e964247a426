"""Young edges judged against the network's gaps (aiops.detection.edges.judged_by).

The network of ``test_evidence`` is learned with the real code (every edge mature); then a new
callee, ``audit``, appears behind ``stock`` with too few calls to know its own normal. A delay on
it must show from a few calls, as it would on a busy edge; an edge slower by nature must not be
judged slow once it has values of its own; an edge never seen is not judged at all.
"""

from __future__ import annotations

from aiops.detection import edges, evidence
from aiops.detection import robust as lb
from tests.detection.test_evidence import BASE, RULES, TOPOLOGY, names, window

WITH_AUDIT = {**TOPOLOGY, "stock": ("stock", "/stock", 4.0, ["audit"]), "audit": ("audit", "/audit", 2.0, [])}
AUDIT_GAP = ("gap", "stock", "audit")


def _with(audit_gaps_ms: list[float]) -> dict:
    """The learned network, with the audit edge's series learned from one window of these gaps."""
    base = dict(BASE)
    base[AUDIT_GAP] = lb.learn(None, audit_gaps_ms, 0.1, RULES)
    return base


def _suspects(base: dict, gap_ms: float, seed: int) -> list:
    # Eight traces four seconds apart: a quiet path, a window of a service called a dozen times a minute.
    return evidence.assess(window(8, 9000.0, seed, gap={"audit": gap_ms}, every=4.0, topology=WITH_AUDIT),
                           base, RULES).suspects


def test_the_network_prior_needs_a_family_of_mature_gaps():
    prior = edges.network_prior(BASE, RULES)
    assert prior is not None
    gaps = [b.center for k, b in BASE.items() if k[0] == "gap"]
    assert min(gaps) <= prior.center <= max(gaps)
    assert prior.between >= RULES.min_spread ** 2  # this network's edges are alike: floored
    two = dict([(k, b) for k, b in BASE.items() if k[0] == "gap"][:2])
    assert edges.network_prior(two, RULES) is None


def test_a_young_edge_whose_spread_one_early_outlier_set_still_shows_a_delay():
    """Two first gaps, 1 ms and 223 ms: alone, the edge's spread is so wide that +260 ms is no news."""
    base = _with([1.0, 223.0])
    assert base[AUDIT_GAP].spread(RULES) > 2.0
    found = _suspects(base, 260.0, seed=31)
    assert names(found)[:1] == ["audit"], [(s.service, s.score) for s in found]
    assert {s.kind for s in found[0].signals} == {"network-in"}


def test_a_young_edge_seen_once_shows_a_delay_on_its_next_calls():
    found = _suspects(_with([1.2]), 300.0, seed=32)
    assert names(found)[:1] == ["audit"], [(s.service, s.score) for s in found]


def test_a_young_edge_at_its_usual_gaps_raises_nothing():
    for seed in range(40, 46):
        assert _suspects(_with([1.0, 1.3]), 0.0, seed) == []


def test_an_edge_slower_by_nature_is_not_judged_slow_on_its_own_values():
    """Forty milliseconds outside the callee on every call (a proxy on the way, say), from the first."""
    base = _with([40.0, 42.0, 38.0, 41.0])
    for seed in range(50, 54):
        assert _suspects(base, 40.0, seed) == []


def test_an_edge_never_seen_is_not_judged():
    """Nothing tells an edge slow by nature from a fault on it before it has a normal of its own."""
    assert _suspects(dict(BASE), 300.0, seed=33) == []
