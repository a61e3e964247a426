"""Performance degradation (aiops.detection.degradation): the slow baseline against the fast one."""

from __future__ import annotations

from dataclasses import replace

from aiops.detection import degradation
from aiops.detection.ewma import BaselineValue
from aiops.detection.rules import Anomaly, Thresholds, window_stats
from aiops.kinds import AnomalyType
from aiops.settings import Settings
from tests.support.factories import span

SETTINGS = Settings.load({"AIOPS_SLOW_MIN_WINDOWS": "5"})
TH = Thresholds.from_settings(SETTINGS)
CFG = degradation.Config.from_settings(SETTINGS)
PAYMENT = ("shop", "payment")


def base(fast: float, slow: float | None = 100.0, slow_windows: int = 50) -> BaselineValue:
    return BaselineValue(latency_ms=fast, samples=1000, windows=50, slow_ms=slow, slow_windows=slow_windows)


def run(ms: float, baseline: BaselineValue, already=(), count: int = 10):
    stats = window_stats([span("payment", ms) for _ in range(count)])
    return degradation.detect(stats, {PAYMENT: baseline}, TH, CFG, list(already))


def test_a_creep_the_fast_baseline_absorbed_is_a_degradation():
    found = run(220.0, base(fast=190.0))
    assert [(a.endpoint, a.type) for a in found] == [("payment", AnomalyType.DEGRADATION)]
    assert (found[0].observed, found[0].baseline) == (220.0, 100.0)
    assert "2.2x its long-term 100ms" in found[0].message


def test_a_sudden_slowdown_is_not_a_degradation():
    """The fast baseline still says 100 ms: nothing absorbed it, the latency rules own it."""
    assert run(220.0, base(fast=100.0)) == []


def test_below_the_factor_or_the_floor_is_calm():
    assert run(190.0, base(fast=185.0)) == []
    assert run(2.4, base(fast=2.3, slow=1.0)) == []  # 2.4x, but 1.4 ms is jitter


def test_the_slow_baseline_needs_history_and_the_window_requests():
    assert run(220.0, base(fast=190.0, slow_windows=4)) == []
    assert run(220.0, base(fast=190.0, slow=None)) == []
    assert run(220.0, base(fast=190.0), count=2) == []


def test_a_degradation_replaces_the_robust_shift_it_explains_not_a_spike():
    shift = Anomaly("shop", "payment", AnomalyType.LATENCY, 220.0, 190.0, 10, "Latency shift: ...")
    found = run(220.0, base(fast=190.0), [shift])
    assert [a.type for a in found] == [AnomalyType.DEGRADATION]
    spike = Anomaly("shop", "payment", AnomalyType.LATENCY, 220.0, 70.0, 10, "Latency spike: ...")
    assert run(220.0, base(fast=190.0), [spike]) == [spike]


def test_the_slow_baseline_learns_slowly_and_freezes_while_creeping():
    b = base(fast=100.0)
    learned = degradation.learn(b, 120.0, 10, CFG, "normal", anomalous=False)
    assert learned.slow_ms == 100.0 + CFG.slow_alpha * 20.0 and learned.slow_windows == 51
    assert degradation.learn(b, 160.0, 10, CFG, "normal", anomalous=False) == b  # 1.6x: frozen
    assert degradation.learn(b, 120.0, 10, CFG, "normal", anomalous=True) == b
    assert degradation.learn(b, 300.0, 10, CFG, "reseed", anomalous=False).slow_ms == 300.0


def test_a_ramp_is_caught_by_the_slow_baseline_that_the_fast_one_follows():
    """10 % more every window, fed through both baselines: the fast rule never fires, the slow one does."""
    alpha = SETTINGS.ewma_alpha
    b = base(fast=100.0)
    fired_at = None
    for step in range(1, 30):
        ms = 100.0 * (1 + 0.1 * step)
        assert not TH.is_slow(ms, b), f"the fast rule fired at step {step}"
        if fired_at is None and run(ms, b):
            fired_at = step
        b = degradation.learn(b, ms, 10, CFG, "normal", anomalous=fired_at is not None)
        b = replace(b, latency_ms=alpha * ms + (1 - alpha) * b.latency_ms)  # the fast EWMA learns it
    assert fired_at is not None and 10 <= fired_at <= 16, fired_at
