"""Self time: what a span spent itself, not waiting on its children. Pure logic.

Why: a CPU hog or slow code in one service makes every caller slower too, so
durations blame the whole call path; the extra *self* time sits only in the
service doing the work. Self time is judged per span against a per-endpoint
baseline of log self time (typical value and spread), so an endpoint seen a
handful of times per window still gives a verdict, and per-span verdicts are
counted per *entry* (the service's SERVER span that the work ran under): the
internal operations and outgoing calls of one service add up to one signal.

A CLIENT span's self time is the gap around the call (sending, waiting for a
connection, reading the reply): it grows when the calling process is starved,
so it counts for the caller's entry.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from telemetry.models import KIND_SERVER
from telemetry.rows import span_key

Key = tuple[str, str]  # (service, endpoint)
SpanRef = tuple[str, str]  # (trace_id, span_id)

MAX_Z = 10.0  # one extreme span must not outvote many moderate ones




def _covered_ms(start: float, end: float, children: Iterable) -> float:
    """Milliseconds of [start, end] covered by the children (overlaps counted once)."""
    spans = sorted(
        (max(start, c.start_time), min(end, c.start_time + c.duration_ms / 1000.0)) for c in children
    )
    covered, cur_a, cur_b = 0.0, None, None
    for a, b in spans:
        if b <= a:
            continue
        if cur_b is None or a > cur_b:
            if cur_b is not None:
                covered += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_b is not None:
        covered += cur_b - cur_a
    return covered * 1000.0


class SpanIndex:
    """Parent/child links of a set of spans (any number of traces)."""

    def __init__(self, spans: Iterable):
        self.spans = list(spans)
        self.by_id: dict[SpanRef, object] = {}
        self.children: dict[SpanRef, list] = defaultdict(list)
        for s in self.spans:
            self.by_id[(s.trace_id, s.span_id)] = s
            if s.parent_span_id:
                self.children[(s.trace_id, s.parent_span_id)].append(s)

    def self_ms(self, span) -> float:
        start = span.start_time
        kids = self.children.get((span.trace_id, span.span_id), ())
        return max(0.0, span.duration_ms - _covered_ms(start, start + span.duration_ms / 1000.0, kids))

    def entry(self, span) -> Key:
        """The nearest SERVER span of the same service at or above ``span`` (else the topmost one)."""
        current = span
        for _ in range(64):
            if current.kind == KIND_SERVER:
                return (current.service, current.endpoint)
            parent = self.by_id.get((current.trace_id, current.parent_span_id or ""))
            if parent is None or parent.service != span.service:
                break
            current = parent
        return span_key(current)


@dataclass(frozen=True)
class SelfBaseline:
    """EWMA of one endpoint's log(1 + self ms): its typical value and spread."""

    mean_log: float
    var_log: float
    samples: int = 0
    windows: int = 0

    @property
    def typical_ms(self) -> float:
        return math.expm1(self.mean_log)


def learn(current: SelfBaseline | None, values_ms: list[float], alpha: float) -> SelfBaseline | None:
    """Fold one normal window's self times into the baseline (the first window seeds it)."""
    if not values_ms:
        return current
    logs = [math.log1p(v) for v in values_ms]
    mean = sum(logs) / len(logs)
    var = sum((x - mean) ** 2 for x in logs) / len(logs)
    if current is None or current.windows == 0:
        return SelfBaseline(mean, var, len(logs), 1)
    # Between-window drift counts as spread too, so a wandering endpoint gets a wide band.
    delta = mean - current.mean_log
    return SelfBaseline(
        mean_log=current.mean_log + alpha * delta,
        var_log=(1 - alpha) * (current.var_log + alpha * delta * delta) + alpha * var,
        samples=current.samples + len(logs),
        windows=current.windows + 1,
    )


def learnable(values_ms: list[float], current: SelfBaseline | None, rules: SelfRules) -> bool:
    """May this window teach the baseline? Not if it is slow as a whole, even when too few
    spans were strongly slow for a verdict: a fault must never become the new normal."""
    if not values_ms:
        return False
    if current is None or current.samples < rules.min_samples:
        return True
    mean = sum(math.log1p(v) for v in values_ms) / len(values_ms)
    return (mean - current.mean_log) / max(math.sqrt(current.var_log), rules.min_spread) < rules.z / 2


@dataclass(frozen=True)
class SelfRules:
    z: float = 3.0  # a span is strongly slow at this many spreads above typical
    min_spread: float = 0.35  # floor of the spread (log units): ~x1.4 is never "strongly" slow
    min_samples: int = 8  # baseline samples before its spans are judged
    min_share: float = 0.3  # share of an entry's judged spans that must be strongly slow
    min_spans: int = 3  # strongly slow spans an entry needs
    min_excess_ms: float = 20.0  # and their median excess over typical (jitter is not a fault)


@dataclass
class EntryShift:
    """One entry's self-time verdict for a window."""

    key: Key
    judged: int = 0
    strong: list = field(default_factory=list)  # (span, self_ms, typical_ms, z)
    score: float = 0.0  # sum of the strong spans' z (capped)

    @property
    def observed_ms(self) -> float:
        return _median([s for _, s, _, _ in self.strong])

    @property
    def baseline_ms(self) -> float:
        return _median([t for _, _, t, _ in self.strong])

    def significant(self, rules: SelfRules) -> bool:
        n = len(self.strong)
        return (
            n >= rules.min_spans
            and n >= rules.min_share * self.judged
            and _median([s - t for _, s, t, _ in self.strong]) >= rules.min_excess_ms
        )


def _median(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def shifts(
    index: SpanIndex,
    baselines: Mapping[Key, SelfBaseline],
    rules: SelfRules,
    now: float | None = None,
    ignore_services: Iterable[str] = (),
) -> tuple[dict[Key, EntryShift], dict[Key, list[float]]]:
    """Judge every finished span's self time: (verdicts per entry, self times per metric key).

    A span still running at ``now`` may have children not seen yet, so it is skipped.
    """
    ignored = set(ignore_services)
    verdicts: dict[Key, EntryShift] = {}
    values: dict[Key, list[float]] = defaultdict(list)
    for span in index.spans:
        if span.service in ignored or span.error:
            continue
        if now is not None and span.start_time + span.duration_ms / 1000.0 > now:
            continue
        own = index.self_ms(span)
        key = span_key(span)
        values[key].append(own)
        base = baselines.get(key)
        if base is None or base.samples < rules.min_samples:
            continue
        entry = index.entry(span)
        verdict = verdicts.setdefault(entry, EntryShift(entry))
        verdict.judged += 1
        z = (math.log1p(own) - base.mean_log) / max(math.sqrt(base.var_log), rules.min_spread)
        if z >= rules.z:
            capped = min(z, MAX_Z)
            verdict.strong.append((span, own, base.typical_ms, capped))
            verdict.score += capped
    return verdicts, dict(values)
