"""Robust log baselines and the evidence gate (aiops.detection.robust)."""

from __future__ import annotations

import math
import random

from aiops.detection import robust as lb
from tests.support.factories import span

RULES = lb.Rules()


def _learned(values_per_window: list[list[float]]) -> lb.LogBaseline:
    base = None
    for values in values_per_window:
        base = lb.learn(base, values, alpha=0.1, rules=RULES)
    return base


def _normal(rng: random.Random, typical: float, n: int, jitter: float = 0.25) -> list[float]:
    return [typical * math.exp(rng.gauss(0, jitter)) for _ in range(n)]


def _judge(base: lb.LogBaseline, values: list[float]) -> lb.Shift:
    items = [("x", ("svc", "/x"), span("/x", v, start_time=1000.0 + i), v) for i, v in enumerate(values)]
    verdicts, learned = lb.judge_all(items, {"x": base}, RULES)
    assert learned == {"x": values}
    return verdicts[("svc", "/x")]


def test_median_and_mad_ignore_outliers_in_a_normal_window():
    rng = random.Random(1)
    base = _learned([_normal(rng, 20.0, 50) + [700.0, 900.0] for _ in range(6)])
    assert 17.0 < base.typical_ms < 23.0
    assert math.sqrt(base.var) < 0.5  # two outliers per window do not widen the band


def test_a_consistent_100ms_on_a_20ms_call_for_a_fraction_of_calls_is_significant():
    rng = random.Random(2)
    base = _learned([_normal(rng, 20.0, 60) for _ in range(8)])
    values = _normal(rng, 20.0, 70) + [v + 100.0 for v in _normal(rng, 20.0, 30)]
    shift = _judge(base, values)
    assert shift.significant(RULES), (len(shift.strong), shift.score, shift.p_value(RULES))
    assert 100.0 < shift.observed_ms < 150.0 and 80.0 < shift.excess_ms < 130.0


def test_noise_raises_nothing():
    rng = random.Random(3)
    base = _learned([_normal(rng, 20.0, 60) for _ in range(8)])
    for _ in range(50):
        assert not _judge(base, _normal(rng, 20.0, 100)).significant(RULES)


def test_one_huge_outlier_among_many_calls_is_not_evidence():
    rng = random.Random(4)
    base = _learned([_normal(rng, 3.0, 100) for _ in range(8)])
    assert not _judge(base, _normal(rng, 3.0, 200) + [800.0]).significant(RULES)


def test_few_calls_with_an_enormous_shift_are_evidence():
    """A quiet service: three calls in the window, each delayed by half a second."""
    rng = random.Random(5)
    base = _learned([_normal(rng, 3.0, 10) for _ in range(8)])
    assert _judge(base, [503.0, 610.0, 498.0]).significant(RULES)


def test_one_pause_that_stalls_many_requests_at_once_is_one_piece_of_evidence():
    """A garbage-collection pause: every request in flight in that second is 100 ms late."""
    rng = random.Random(9)
    base = _learned([_normal(rng, 3.0, 100) for _ in range(8)])
    items = [("x", "k", span("/x", 3.0, start_time=1000.0 + i * 0.3), 3.0) for i in range(100)]
    items += [("x", "k", span("/x", 100.0, start_time=1050.0 + i * 0.05), 100.0) for i in range(6)]
    verdicts, _ = lb.judge_all(items, {"x": base}, RULES)
    assert len(verdicts["k"].strong) == 6 and len(verdicts["k"].moments(RULES)) == 1
    assert not verdicts["k"].significant(RULES)


def test_a_small_absolute_shift_is_jitter_however_many_spreads():
    rng = random.Random(6)
    base = _learned([_normal(rng, 1.0, 60, jitter=0.05) for _ in range(8)])
    assert not _judge(base, [9.0] * 20).significant(RULES)  # 8 ms more: below min_excess_ms


def test_a_heavy_tailed_series_learns_its_tail_and_needs_more_to_fire():
    rng = random.Random(7)
    windows = [_normal(rng, 3.0, 90) + [300.0] * 10 for _ in range(12)]
    base = _learned(windows)
    assert base.tail > 0.05
    assert not _judge(base, _normal(rng, 3.0, 90) + [300.0] * 12).significant(RULES)
    assert _judge(base, _normal(rng, 3.0, 40) + [300.0] * 60).significant(RULES)


def test_a_slow_window_does_not_teach():
    rng = random.Random(8)
    base = _learned([_normal(rng, 20.0, 60) for _ in range(8)])
    assert lb.learnable(_normal(rng, 20.0, 60), base, RULES)
    assert not lb.learnable(_normal(rng, 80.0, 60), base, RULES)


def test_poisson_tail_matches_a_direct_sum():
    for k, lam in [(1, 0.5), (3, 0.2), (10, 1.0), (40, 0.5), (5, 5.0)]:
        direct = 1 - sum(math.exp(-lam) * lam ** i / math.factorial(i) for i in range(k))
        if direct > 1e-6:
            assert abs(lb.poisson_tail(k, lam) - direct) < 1e-9
        else:
            exact = sum(math.exp(-lam) * lam ** i / math.factorial(i) for i in range(k, k + 100))
            assert math.isclose(lb.poisson_tail(k, lam), exact, rel_tol=1e-6)
    assert lb.poisson_tail(0, 1.0) == 1.0
