"""Performance degradation: an endpoint running at least ``factor`` x its long-term latency for a
sustained period. Pure logic: window statistics and baselines in, anomalies and learned values out.

The fast EWMA (:mod:`aiops.detection.ewma`) learns every window it calls normal, so a slow creep
(10 % more each window) never looks abnormal to it: it absorbs the creep. Beside it each endpoint
keeps a *slow* baseline (``slow_ms``: an EWMA with a small weight, ``AIOPS_SLOW_ALPHA``) that
stops learning once a window runs well above it (:data:`LEARN_LIMIT` of the way to ``factor``),
so it remembers what the endpoint used to cost. The pattern is the gap between the two:

- the window's mean is at least ``factor`` x the slow baseline (and ``min_delta_ms`` above it);
- the fast baseline, this window included, has absorbed at least half of that gap: the
  slowness is *sustained* (one slow window moves it a tenth of the way), and it was
  absorbed, not flagged (a sudden slowdown the fast rules catch freezes the fast baseline, so
  it stays a ``latency`` incident);
- the slow baseline has ``min_windows`` windows and the window ``min_requests`` requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from aiops.detection import ewma
from aiops.detection.rules import Anomaly, Thresholds
from aiops.kinds import AnomalyType
from telemetry.columns import KIND_CLIENT

# A window is taught to the slow baseline only below this share of the way to ``factor``.
LEARN_LIMIT = 0.5
# Latency anomalies of the faster evidence rules (robust shifts) that a degradation explains.
SHIFT_MESSAGES = ("Latency shift", "Self-time spike")


@dataclass(frozen=True)
class Config:
    """The rule's settings (defaults and meaning: :class:`aiops.settings.Settings`)."""

    factor: float
    min_delta_ms: float
    slow_alpha: float
    fast_alpha: float
    min_windows: int
    min_samples: int
    min_requests: int

    @classmethod
    def from_settings(cls, settings) -> Config:
        return cls(settings.degradation_factor, settings.degradation_min_delta_ms, settings.slow_alpha,
                   settings.ewma_alpha, settings.slow_min_windows, settings.min_baseline_samples,
                   settings.min_slow_requests)

    @property
    def learn_limit(self) -> float:
        """Windows above this x the slow baseline do not teach it (1.5 for a factor of 2)."""
        return 1 + LEARN_LIMIT * (self.factor - 1)


def ready(base: ewma.BaselineValue | None, cfg: Config) -> bool:
    return (base is not None and base.slow_ms is not None and base.slow_windows >= cfg.min_windows
            and base.samples >= cfg.min_samples)


def degraded(mean_ms: float, count: int, base: ewma.BaselineValue | None, fast_normal: bool,
             cfg: Config) -> bool:
    """The rule for one endpoint's window (``fast_normal``: the fast baseline learns this window)."""
    if count < cfg.min_requests or not ready(base, cfg):
        return False
    slow = base.slow_ms
    fast = base.latency_ms
    if fast_normal:  # the fast baseline learns this window too
        fast = cfg.fast_alpha * mean_ms + (1 - cfg.fast_alpha) * fast
    return (mean_ms >= cfg.factor * slow and mean_ms - slow >= cfg.min_delta_ms
            and fast >= cfg.learn_limit * slow)


def detect(stats: Mapping, baselines: Mapping, th: Thresholds, cfg: Config, already: Iterable = (),
           window: Iterable = ()) -> list:
    """Degradation anomalies for the window, in place of the robust latency shifts they explain
    (returns the new list of anomalies: ``already`` without those, plus the degradations). Each
    is shown by its endpoint's spans of ``window`` that ran ``factor`` x its long-term latency."""
    found, explained = [], set()
    already = list(already)
    spiking = {a.key for a in already
               if a.type == AnomalyType.LATENCY and a.message.startswith("Latency spike")}
    for key, s in sorted(stats.items()):
        base = baselines.get(key)
        if key in spiking or not degraded(s.mean_ms, s.count, base, ewma.is_normal(s, base, th), cfg):
            continue
        explained.add(key)
        found.append(Anomaly(
            key[0], key[1], AnomalyType.DEGRADATION, s.mean_ms, base.slow_ms, s.count,
            f"Degradation: {s.mean_ms:.0f}ms, {s.mean_ms / base.slow_ms:.1f}x its long-term "
            f"{base.slow_ms:.0f}ms (recent baseline: {base.latency_ms:.0f}ms)",
        ))
    if found:
        by_key = {a.key: a for a in found}
        for span in window:
            a = by_key.get((span.service, span.endpoint))
            if a is not None and span.kind != KIND_CLIENT and span.duration_ms >= cfg.factor * a.baseline:
                a.shown_by.append(span)
        for a in found:
            a.shown_by.sort(key=lambda sp: -sp.start_time)
    kept = [a for a in already if not (a.key in explained and a.type == AnomalyType.LATENCY
                                       and a.message.startswith(SHIFT_MESSAGES))]
    return kept + found


def learn(base: ewma.BaselineValue, mean_ms: float, count: int, cfg: Config, mode: str,
          anomalous: bool) -> ewma.BaselineValue:
    """Fold one window into the slow baseline: seeded by the first window (and after a silence),
    then only from windows that are neither anomalous nor well above it (it must remember)."""
    if count <= 0:
        return base
    if mode == "reseed" or base.slow_ms is None:
        return replace(base, slow_ms=mean_ms, slow_windows=1)
    if mode == "relearn":
        return replace(base, slow_ms=0.5 * (mean_ms + base.slow_ms), slow_windows=base.slow_windows + 1)
    if anomalous or mean_ms >= cfg.learn_limit * base.slow_ms:
        return base  # frozen while the endpoint is abnormal or creeping away from it
    slow = cfg.slow_alpha * mean_ms + (1 - cfg.slow_alpha) * base.slow_ms
    return replace(base, slow_ms=slow, slow_windows=base.slow_windows + 1)
