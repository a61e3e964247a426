"""Traffic drop / missing data: an endpoint that normally has traffic gets none, or a whole service
stops reporting while others still report. Pure logic: window statistics, the window's calls and
baselines in, anomalies and learned values out.

What an endpoint *should* get is measured against the rest of the system, not the clock: each
endpoint learns ``traffic_ratio``, its requests per request of every other endpoint in the same
window (an EWMA). A quiet night lowers everyone together and changes nothing; a window where
nothing at all arrived (the collector or the demo stopped) expects nothing, so it raises nothing.
An endpoint is silent when it had no requests while ``ratio x the others' requests`` is at least
``min_expected`` (Poisson: seeing none when 10 were expected happens 5 times in 100 000).

A silence is only a traffic drop if nothing else explains it. Its callers' calls to it that got no
answer *other than a timeout* (refused, reset, or answered while it reported nothing) say it
is the silent one; with no such calls, the silence counts only if no other endpoint failed in the
window (a callee starves when its caller fails before calling it: that is the caller's incident).
When every known endpoint of a service is silent, the service is the root (one anomaly, not one
per endpoint).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from aiops.detection import ewma
from aiops.detection.rules import REFUSED, WHOLE_SERVICE, Anomaly, is_timeout
from aiops.kinds import AnomalyType
from telemetry.columns import KIND_CLIENT
from telemetry.rows import span_key

FAILING = (AnomalyType.ERROR, AnomalyType.TIMEOUT)


@dataclass(frozen=True)
class Config:
    """The rule's settings (defaults and meaning: :class:`aiops.settings.Settings`)."""

    min_expected: float
    alpha: float
    min_windows: int

    @classmethod
    def from_settings(cls, settings) -> Config:
        return cls(settings.traffic_min_expected, settings.ewma_alpha, settings.slow_min_windows)


def calls_to(window: Iterable, ignore_services: Iterable[str] = ()) -> dict:
    """The window's CLIENT spans that did not time out, by the endpoint they call."""
    ignored = set(ignore_services)
    found: dict = defaultdict(list)
    for span in window:
        if span.kind == KIND_CLIENT and span.peer and span.service not in ignored and not is_timeout(span):
            found[span_key(span)].append(span)
    return dict(found)


def expected(base: ewma.BaselineValue | None, others: int, cfg: Config) -> float:
    """Requests the endpoint should have had, given ``others`` requests to every other endpoint
    (0 until its ratio has ``min_windows`` windows)."""
    if base is None or base.traffic_ratio is None or base.traffic_windows < cfg.min_windows:
        return 0.0
    return base.traffic_ratio * others


def detect(stats: Mapping, baselines: Mapping, calls: Mapping, cfg: Config,
           already: Iterable[Anomaly] = ()) -> list[Anomaly]:
    """Traffic-drop anomalies for the endpoints (or whole services) silent in this window."""
    total = sum(s.count for s in stats.values())
    if total == 0:
        return []  # everything is silent: the telemetry stopped, not one endpoint
    failing = any(a.type in FAILING for a in already)
    silent: dict[str, list] = defaultdict(list)
    for key, base in sorted(baselines.items()):
        s = stats.get(key)
        if s is not None and s.count > 0:
            continue
        want = expected(base, total, cfg)
        if want >= cfg.min_expected and (calls.get(key) or not failing):
            silent[key[0]].append((key, want))
    reporting = {key[0] for key, s in stats.items() if s.count > 0}
    found = []
    for service, keys in sorted(silent.items()):
        known = [k for k in baselines if k[0] == service and expected(baselines[k], total, cfg) > 0]
        if service not in reporting and len(keys) == len(known) and len(keys) > 1:
            want = sum(w for _, w in keys)
            spans = [sp for key, _ in keys for sp in calls.get(key, [])]
            found.append(_anomaly((service, WHOLE_SERVICE), want, spans, f"{service} stopped reporting"))
            continue
        for key, want in keys:
            found.append(_anomaly(key, want, calls.get(key, []), f"{key[1]} got no requests"))
    return found


def explained(anomalies: list[Anomaly]) -> list[Anomaly]:
    """Without the unanswered-calls anomalies (:func:`aiops.detection.rules.refused_calls`) of a
    service that went silent this window: a stopped endpoint's callers get refused, and its traffic
    drop tells that story (its calls that got no answer included), not a dependency failure."""
    silent = {a.service for a in anomalies if a.type == AnomalyType.TRAFFIC_DROP}
    return [a for a in anomalies
            if not (a.service in silent and a.type == AnomalyType.ERROR and a.message.startswith(REFUSED))]


def _anomaly(key, want: float, spans: list, what: str) -> Anomaly:
    refused = f"; {len(spans)} calls to it got no answer" if spans else ""
    return Anomaly(key[0], key[1], AnomalyType.TRAFFIC_DROP, 0.0, round(want, 1), 0,
                   f"Traffic drop: {what} (about {want:.0f} expected from the rest of the traffic{refused})",
                   evidence=sorted(spans, key=lambda sp: -sp.start_time),
                   onset=min((sp.start_time for sp in spans), default=None))


def learn(base: ewma.BaselineValue, count: int, others: int, cfg: Config, mode: str,
          silent: bool) -> ewma.BaselineValue:
    """Fold one window into the endpoint's traffic ratio: every window where the rest of the system
    had traffic (its own silences too, so a bursty endpoint learns a low ratio), but not while it
    is flagged silent (frozen: a drop must not become the new normal)."""
    if others <= 0 or (silent and mode == "normal"):
        return base
    observed = count / others
    if mode == "reseed" or base.traffic_ratio is None:
        return replace(base, traffic_ratio=observed, traffic_windows=1)
    weight = 0.5 if mode == "relearn" else cfg.alpha
    ratio = weight * observed + (1 - weight) * base.traffic_ratio
    return replace(base, traffic_ratio=ratio, traffic_windows=base.traffic_windows + 1)
