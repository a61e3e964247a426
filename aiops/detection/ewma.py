"""EWMA baselines: what "normal" latency and error rate look like for an endpoint.

Pure logic. A baseline only learns from windows the detector called normal, so
a fault never becomes the new normal however long it lasts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class BaselineValue:
    latency_ms: float
    error_rate: float = 0.0
    samples: int = 0
    windows: int = 0
    # The slow (long-term) latency baseline and the expected traffic: aiops.detection.degradation
    # and aiops.detection.traffic learn them beside the fast EWMA above.
    slow_ms: float | None = None
    slow_windows: int = 0
    traffic_ratio: float | None = None
    traffic_windows: int = 0

    def ready(self, min_samples: int) -> bool:
        """Enough history to judge against: no verdict before that."""
        return self.samples >= min_samples


def learn(current: BaselineValue | None, mean_ms: float, error_rate: float, count: int,
          alpha: float) -> BaselineValue:
    """Fold one normal window into the baseline (the first window seeds it)."""
    if count <= 0:
        return current  # type: ignore[return-value]
    if current is None or current.windows == 0:
        return BaselineValue(mean_ms, error_rate, count, 1)
    return replace(
        current,
        latency_ms=alpha * mean_ms + (1 - alpha) * current.latency_ms,
        error_rate=alpha * error_rate + (1 - alpha) * current.error_rate,
        samples=current.samples + count,
        windows=current.windows + 1,
    )


def is_normal(window, current: BaselineValue | None, th) -> bool:
    """May this window teach the baseline? Not if it looks slow or failing, even when
    it has too few requests for a verdict: a fault must never become the new normal."""
    if window.count == 0:
        return False
    return window.error_rate <= th.error_rate and not th.is_slow(window.mean_ms, current)
