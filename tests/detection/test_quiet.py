"""Quiet paths and wide bands (issue 24): evidence judged by its improbability, not its volume.

A quiet path's failures over the last few windows against the endpoint's own usual rate
(aiops.detection.rules.quiet_errors), a shift of a wide band's whole distribution past its
normal p95 (aiops.detection.robust.Shift.spread_p), and the strength every anomaly carries so
incidents and candidates rank by evidence (Anomaly.evidence_strength).
"""

from __future__ import annotations

import math
import random

from aiops.detection import robust as lb
from aiops.detection.ewma import BaselineValue
from aiops.detection.rules import DEFAULT_STRENGTH, Thresholds, detect, quiet_failing, window_stats
from aiops.settings import Settings
from tests.support.factories import span

TH = Thresholds.from_settings(Settings())
RULES = lb.Rules()
PAYMENT = ("shop", "payment")
NEVER_FAILS = BaselineValue(latency_ms=10.0, error_rate=0.0, samples=300, windows=60)


def test_binomial_tail_matches_the_sum_of_its_terms():
    exact = sum(math.comb(6, i) * 0.1 ** i * 0.9 ** (6 - i) for i in range(5, 7))
    assert math.isclose(lb.binomial_tail(5, 6, 0.1), exact, rel_tol=1e-9)
    assert lb.binomial_tail(0, 6, 0.1) == 1.0 and lb.binomial_tail(7, 6, 0.1) == 0.0
    assert lb.surprise(1e-6) == 6.0 and lb.surprise(0.0) == lb.MAX_SURPRISE


def test_five_failures_in_six_requests_over_the_last_windows_are_an_error_spike():
    window = [span("payment", status_code=500), span("payment", status_code=500)]
    stats = window_stats(window)
    assert quiet_failing(stats, TH) == [PAYMENT]
    found = detect(stats, {PAYMENT: NEVER_FAILS}, TH, {PAYMENT: (6, 5)})
    assert [(a.key, a.type) for a in found] == [(PAYMENT, "error")]
    assert found[0].message.startswith("Error spike: 5 of 6 requests failed over the last windows")
    assert found[0].strength > 6


def test_without_the_last_windows_two_failures_are_too_few():
    stats = window_stats([span("payment", status_code=500) for _ in range(2)])
    assert detect(stats, {PAYMENT: NEVER_FAILS}, TH, {PAYMENT: (2, 2)}) == []


def test_failures_at_the_endpoints_own_usual_rate_are_not_news():
    flaky = BaselineValue(latency_ms=10.0, error_rate=0.4, samples=300, windows=60)
    stats = window_stats([span("payment", status_code=500), span("payment")])
    assert detect(stats, {PAYMENT: flaky}, TH, {PAYMENT: (8, 5)}) == []


def test_an_endpoint_with_no_history_is_not_judged_by_the_quiet_rule():
    stats = window_stats([span("payment", status_code=500) for _ in range(3)])
    assert detect(stats, {}, TH, {PAYMENT: (6, 5)}) == []


def test_busy_endpoints_keep_the_window_rule():
    stats = window_stats([span("payment", status_code=500)] + [span("payment") for _ in range(9)])
    assert quiet_failing(stats, TH) == []


def test_the_window_rules_anomalies_carry_their_strength():
    stats = window_stats([span("payment", status_code=500) for _ in range(5)])
    [a] = detect(stats, {PAYMENT: NEVER_FAILS}, TH)
    assert a.strength > 2 * DEFAULT_STRENGTH  # 5 of 5 where none ever failed


# -- a wide band that moved as a whole ------------------------------------------------------------


def _wide(rng: random.Random, n: int = 40) -> list[float]:
    """Slow by design: about 70 ms, 20 to 220 ms for most calls."""
    return [70.0 * math.exp(rng.gauss(0, 0.6)) for _ in range(n)]


def _wide_baseline(rng: random.Random) -> lb.LogBaseline:
    base = None
    for _ in range(10):
        base = lb.learn(base, _wide(rng), alpha=0.1, rules=RULES)
    return base


def _judge(base: lb.LogBaseline, values: list[float], step: float = 0.5) -> lb.Shift:
    items = [("x", PAYMENT, span("payment", v, start_time=1000.0 + i * step), v)
             for i, v in enumerate(values)]
    return lb.judge_all(items, {"x": base}, RULES)[0][PAYMENT].settle(RULES)


def test_a_slow_by_design_service_slowed_past_its_band_is_a_shift():
    rng = random.Random(1)
    base = _wide_baseline(rng)
    moved = _judge(base, [min(v, 150.0) + 240.0 for v in _wide(rng)])
    assert not moved.late(RULES)  # no value is 3 spreads above typical: the late-call test sees nothing
    assert moved.significant(RULES) and moved.strength(RULES) > 6
    assert moved.strong and moved.onset == 1000.0  # the values past the p95 are the evidence


def test_the_wide_band_itself_raises_nothing():
    rng = random.Random(2)
    base = _wide_baseline(rng)
    for _ in range(200):
        assert not _judge(base, _wide(rng)).significant(RULES)


def test_one_pause_past_the_band_is_one_moment():
    rng = random.Random(3)
    base = _wide_baseline(rng)
    # 40 calls at one instant: a pause stalls everything in flight.
    paused = _judge(base, [v + 240.0 for v in _wide(rng)], step=0.001)
    assert not paused.significant(RULES)


def test_quiet_far_late_calls_are_evidence_by_their_improbability():
    rng = random.Random(4)
    base = None
    for _ in range(10):  # a gap of a few ms
        base = lb.learn(base, [3.0 * math.exp(rng.gauss(0, 0.3)) for _ in range(30)], alpha=0.1, rules=RULES)
    shift = _judge(base, [1500.0, 1200.0, 1800.0], step=20.0)
    assert shift.significant(RULES) and shift.strength(RULES) > 10


def test_a_count_far_above_its_expectation_is_strong_and_never_below_the_gate():
    from aiops.detection.rules import count_strength

    assert count_strength(3, 2.0) == DEFAULT_STRENGTH  # passed its own gate: as strong as the gate
    assert count_strength(40, 0.0) > count_strength(20, 0.0) > 2 * DEFAULT_STRENGTH
