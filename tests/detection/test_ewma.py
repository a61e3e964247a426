"""EWMA baselines (aiops.detection.ewma): how "normal" is learned, and what may teach it."""

from __future__ import annotations

import pytest

from aiops.detection.ewma import BaselineValue, is_normal, learn
from aiops.detection.rules import Thresholds, WindowStats
from aiops.settings import Settings

# The defaults: 3x and +50 ms for "slow", 20 % errors, 20 samples to be ready.
TH = Thresholds.from_settings(Settings())


def window(count: int, mean_ms: float, errors: int = 0) -> WindowStats:
    return WindowStats(count=count, errors=errors, total_ms=mean_ms * count)


def test_first_window_seeds_the_baseline():
    """With no history the first normal window *is* the baseline (no decay from zero)."""
    b = learn(None, 120.0, 0.05, 10, alpha=0.1)
    assert b == BaselineValue(latency_ms=120.0, error_rate=0.05, samples=10, windows=1)


def test_an_empty_row_is_seeded_like_no_row():
    """A stored row with zero windows carries no information: the next window seeds it."""
    b = learn(BaselineValue(latency_ms=0.0), 80.0, 0.0, 4, alpha=0.1)
    assert b == BaselineValue(80.0, 0.0, 4, 1)


def test_later_windows_are_weighted_by_alpha():
    """EWMA: new = alpha * window + (1 - alpha) * old, for latency and error rate alike."""
    b = learn(None, 100.0, 0.0, 10, alpha=0.1)
    b = learn(b, 200.0, 0.5, 5, alpha=0.1)
    assert b.latency_ms == pytest.approx(110.0)
    assert b.error_rate == pytest.approx(0.05)
    assert (b.samples, b.windows) == (15, 2)
    b = learn(b, 110.0, 0.05, 7, alpha=0.5)
    assert b.latency_ms == pytest.approx(110.0)
    assert b.error_rate == pytest.approx(0.05)
    assert (b.samples, b.windows) == (22, 3)


def test_an_empty_window_teaches_nothing():
    current = BaselineValue(100.0, 0.0, 30, 3)
    assert learn(current, 999.0, 1.0, 0, alpha=0.1) is current


def test_ready_needs_min_samples_not_windows():
    b = BaselineValue(100.0, samples=19, windows=5)
    assert not b.ready(20)
    assert BaselineValue(100.0, samples=20, windows=1).ready(20)


def test_normal_window_may_teach():
    base = BaselineValue(100.0, samples=50, windows=5)
    assert is_normal(window(10, 120.0), base, TH)
    assert is_normal(window(10, 120.0, errors=2), base, TH)  # exactly at the 20 % threshold


def test_slow_window_is_refused():
    """A slow window never becomes the new normal, however long the fault lasts."""
    base = BaselineValue(100.0, samples=50, windows=5)
    assert not is_normal(window(10, 400.0), base, TH)


def test_failing_window_is_refused_even_when_too_small_for_a_verdict():
    """Two requests are too few to raise an error anomaly, but still must not teach."""
    assert not is_normal(window(2, 10.0, errors=2), BaselineValue(10.0, samples=50, windows=5), TH)
    assert not is_normal(window(10, 10.0, errors=3), None, TH)


def test_slowness_is_judged_only_against_a_ready_baseline():
    """Before the baseline is ready nothing counts as slow, so warm-up windows all teach."""
    young = BaselineValue(100.0, samples=5, windows=1)
    assert is_normal(window(10, 400.0), young, TH)
    assert is_normal(window(10, 400.0), None, TH)


def test_empty_window_is_not_normal():
    assert not is_normal(window(0, 0.0), None, TH)
