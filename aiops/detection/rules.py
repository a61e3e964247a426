"""Anomaly rules over one window of spans. Pure logic: spans and baselines in, anomalies out.

Rules (thresholds in :class:`Thresholds`, all configurable):

- latency: window mean > ``latency_factor`` x baseline and more than
  ``latency_min_delta_ms`` above it (a 1 ms endpoint taking 3 ms is jitter,
  not an incident), once the baseline has ``min_baseline_samples``;
- error: 5xx/error share > ``error_rate`` with at least ``min_window_requests``; or, on a path
  too quiet for that, the same share over the last few windows (``recent``) when so many
  failures are unlikely at the endpoint's own usual rate (a binomial test, corrected for the
  endpoints tested: :func:`quiet_errors`);
- timeout: at least ``min_slow_requests`` calls that time out (504s,
  ``*Timeout*`` exceptions), counted both
  on the endpoint that gave up and on the endpoint that stopped answering;
- self time (see :mod:`aiops.detection.selftime`): an entry whose spans spend far more
  time in their own work than usual, judged span by span, so it also fires for
  endpoints too quiet for a window mean;
- latency shift: an endpoint whose durations moved against its robust log
  baseline (:mod:`aiops.detection.robust`), for shifts the mean rule misses;
- network (see :mod:`aiops.detection.edges`): calls into a service spending longer
  outside its own spans.

Latency also needs ``min_slow_requests`` requests in the window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from aiops.detection import patterns
from aiops.detection.ewma import BaselineValue
from aiops.detection.robust import Rules, Shift, binomial_tail, poisson_tail, surprise
from aiops.kinds import AnomalyType
from aiops.settings import Settings
from telemetry.columns import KIND_CLIENT
from telemetry.rows import span_key

Key = tuple[str, str]  # (service, endpoint)


def top_endpoints(blamed) -> dict[str, Key]:
    """Each service's endpoint that ``blamed`` (key -> weight) weighs most, among positive weights:
    where another signal's evidence for that service lands, so it adds to the traces' answer."""
    named: dict[str, Key] = {}
    for key, w in sorted(blamed.items(), key=lambda kv: (-kv[1], kv[0])):
        if w > 0:
            named.setdefault(key[0], key)
    return named


# The strength of evidence no rule puts a probability on (a mean over 3x its baseline, a creep, a
# silence, log lines): as strong as the evidence gate's ``Rules.max_p`` (1e-6).
DEFAULT_STRENGTH = surprise(Rules.max_p)
# Events a count is assumed to expect at least (a never-seen log line is rare, not impossible).
MIN_EXPECTED = 0.5
# Requests of history an endpoint's usual error rate is trusted for: a long quiet history does not
# make one failure impossible.
ERROR_HISTORY = 1000
# The endpoint of a key that names a whole service: evidence (log lines with no span to tie them to)
# that says which service but not which of its endpoints. Shown as the service, never as a name.
WHOLE_SERVICE = ""


@dataclass(frozen=True)
class Thresholds:
    """The detection rules' settings (their defaults and meaning: :class:`aiops.settings.Settings`)."""

    latency_factor: float
    latency_min_delta_ms: float
    error_rate: float
    min_window_requests: int
    min_baseline_samples: int
    min_slow_requests: int  # slow or timed-out requests needed for a latency/timeout verdict

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(
            latency_factor=settings.latency_factor,
            latency_min_delta_ms=settings.latency_min_delta_ms,
            error_rate=settings.error_rate_threshold,
            min_window_requests=settings.min_window_requests,
            min_baseline_samples=settings.min_baseline_samples,
            min_slow_requests=settings.min_slow_requests,
        )

    def judges(self, baseline: BaselineValue | None) -> bool:
        """Whether ``baseline`` has the history for a latency verdict (until then, its endpoint learns)."""
        return baseline is not None and baseline.ready(self.min_baseline_samples)

    def is_slow(self, duration_ms: float, baseline: BaselineValue | None) -> bool:
        """One span (or a window mean) is slow against a ready baseline."""
        if not self.judges(baseline):
            return False
        return duration_ms > self.slow_above(baseline.latency_ms)

    def slow_above(self, baseline_ms: float) -> float:
        """The latency above which a span or window mean is slow against ``baseline_ms``: both
        ``latency_factor`` times it and ``latency_min_delta_ms`` over it (the charts draw this line)."""
        return max(self.latency_factor * baseline_ms, baseline_ms + self.latency_min_delta_ms)


@dataclass
class WindowStats:
    count: int = 0
    errors: int = 0
    timeouts: int = 0
    total_ms: float = 0.0
    unanswered: int = 0  # calls to this endpoint that timed out on the caller's side
    exceptions: dict[str, int] = field(default_factory=dict)
    # Failed requests by the pattern their evidence names (aiops.detection.patterns).
    patterns: dict[str, int] = field(default_factory=dict)

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.count if self.count else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0

    def top_exception(self) -> str | None:
        if not self.exceptions:
            return None
        return max(self.exceptions.items(), key=lambda kv: kv[1])[0]

    def pattern(self) -> str | None:
        """The pattern at least half of the failed requests show (None: none does)."""
        return patterns.dominant(self.patterns, max(self.errors, self.timeouts))


@dataclass
class Anomaly:
    service: str
    endpoint: str
    type: AnomalyType
    observed: float
    baseline: float | None
    request_count: int
    message: str
    trace_ids: list[str] = field(default_factory=list)
    # Spans that show the fault in the endpoint's own work: RCA blames the endpoint itself.
    evidence: list = field(default_factory=list)
    # Spans that show it, for RCA to follow (when no baseline of the mean rules can pick them).
    shown_by: list = field(default_factory=list)
    onset: float | None = None  # start of the earliest span that showed it
    # What fails, when the evidence names it: dependency, exhaustion, invalid_response (or None).
    pattern: str | None = None
    # How unlikely the evidence is under the normal baseline, in decimal digits (robust.surprise):
    # what incidents and candidates are ranked by. 0: not known (DEFAULT_STRENGTH is assumed).
    strength: float = 0.0

    @property
    def evidence_strength(self) -> float:
        return self.strength or DEFAULT_STRENGTH

    @property
    def key(self) -> Key:
        return (self.service, self.endpoint)

    @property
    def label(self) -> str:
        return f"{self.endpoint or self.service}_{self.type}"


def is_timeout(span) -> bool:
    return span.status_code == 504 or "timeout" in (span.exception_type or "").lower()


def window_stats(spans: Iterable, ignore_services: Iterable[str] = ()) -> dict[Key, WindowStats]:
    """Aggregate a window per endpoint. CLIENT spans only count as calls to their peer."""
    ignored = set(ignore_services)
    stats: dict[Key, WindowStats] = defaultdict(WindowStats)
    spans = list(spans)
    calls = patterns.failed_calls(spans)
    for span in spans:
        if span.service in ignored:
            continue
        if span.kind == KIND_CLIENT:
            if span.peer and is_timeout(span):
                stats[span_key(span)].unanswered += 1
            continue
        s = stats[(span.service, span.endpoint)]
        s.count += 1
        s.total_ms += span.duration_ms
        if span.error:
            s.errors += 1
            if span.exception_type:
                label = f"{span.exception_type}: {span.exception_message or ''}".strip()[:200]
                s.exceptions[label] = s.exceptions.get(label, 0) + 1
            pattern = patterns.of_failure(span, calls)
            if pattern:
                s.patterns[pattern] = s.patterns.get(pattern, 0) + 1
        if is_timeout(span):
            s.timeouts += 1
    return dict(stats)


def usual_error_rate(base: BaselineValue | None) -> float:
    """The endpoint's own error rate, smoothed (one failure and one success added to at most
    ``ERROR_HISTORY`` requests of history): an endpoint with no history is assumed to fail half
    the time, so only its history can make its failures news."""
    seen = min(base.samples, ERROR_HISTORY) if base is not None else 0
    rate = base.error_rate if base is not None else 0.0
    return (rate * seen + 1) / (seen + 2)


def detect(
    stats: Mapping[Key, WindowStats],
    baselines: Mapping[Key, BaselineValue],
    th: Thresholds,
    recent: Mapping[Key, tuple[int, int]] | None = None,
    max_p: float = Rules.max_p,
) -> list[Anomaly]:
    """Apply the rules to every endpoint of the window. ``recent``: (requests, failures) of the
    last few windows, this one included, for the endpoints :func:`quiet_failing` names."""
    found: list[Anomaly] = []
    for (service, endpoint), s in sorted(stats.items()):
        base = baselines.get((service, endpoint))
        usual = usual_error_rate(base)
        timed_out = s.timeouts + s.unanswered
        if timed_out >= th.min_slow_requests:
            why = (
                f"{s.unanswered} calls to it timed out" if s.unanswered >= s.timeouts
                else f"{s.timeouts} of {s.count} requests timed out"
            )
            p = binomial_tail(timed_out, max(s.count, timed_out), usual)
            found.append(Anomaly(service, endpoint, AnomalyType.TIMEOUT, float(timed_out), None,
                                 s.count, f"Timeout: {why}", pattern=s.pattern(), strength=surprise(p)))
        if s.count >= th.min_window_requests and s.error_rate > th.error_rate:
            top = s.top_exception()
            found.append(Anomaly(
                service, endpoint, AnomalyType.ERROR, s.error_rate,
                base.error_rate if base else None, s.count,
                f"Error spike: {s.error_rate:.0%} of {s.count} requests failed"
                + (f" ({top})" if top else ""), pattern=s.pattern(),
                strength=surprise(binomial_tail(s.errors, s.count, usual)),
            ))
        elif (service, endpoint) in (recent or {}):
            corrected = max_p / max(1, len(stats))  # every endpoint of the window is tested
            quiet = quiet_errors((service, endpoint), s, recent[(service, endpoint)], base, th, corrected)
            if quiet is not None:
                found.append(quiet)
        if s.count >= th.min_slow_requests and th.is_slow(s.mean_ms, base):
            assert base is not None
            found.append(Anomaly(
                service, endpoint, AnomalyType.LATENCY, s.mean_ms, base.latency_ms, s.count,
                f"Latency spike: {s.mean_ms:.0f}ms (baseline: {base.latency_ms:.0f}ms)",
            ))
    return found


def quiet_failing(stats: Mapping[Key, WindowStats], th: Thresholds, limit: int = 100) -> list[Key]:
    """Endpoints that failed in this window but are too quiet for the window's error rule: those
    whose last few windows :func:`quiet_errors` judges (at most ``limit``, most failures first)."""
    keys = [k for k, s in stats.items()
            if s.errors and s.count < th.min_window_requests]
    return sorted(keys, key=lambda k: (-stats[k].errors, k))[:limit]


def quiet_errors(key: Key, s: WindowStats, recent: tuple[int, int], base: BaselineValue | None,
                 th: Thresholds, max_p: float) -> Anomaly | None:
    """The error rule for a quiet path: over the last few windows (``recent``: requests, failures)
    more than ``error_rate`` of the requests failed, at least ``min_slow_requests`` of them, and
    that many failures are unlikely (below ``max_p``, already corrected for the endpoints tested)
    at the endpoint's own usual rate. Five failures in six requests of an endpoint that never
    fails are an incident; one failure in two is not."""
    count, errors = max(recent[0], s.count), max(recent[1], s.errors)
    if errors < th.min_slow_requests or errors <= th.error_rate * count:
        return None
    usual = usual_error_rate(base)
    p = binomial_tail(errors, count, usual)
    if p > max_p:
        return None
    top = s.top_exception()
    return Anomaly(
        key[0], key[1], AnomalyType.ERROR, errors / count, base.error_rate if base else None, count,
        f"Error spike: {errors} of {count} requests failed over the last windows "
        f"(usually {usual:.1%})" + (f" ({top})" if top else ""), pattern=s.pattern(), strength=surprise(p))


def _onset(spans: Iterable) -> float | None:
    return min((s.start_time for s in spans), default=None)


def shifted(verdicts: Mapping[Key, Shift], rules: Rules, what: str,
            already: Iterable[Anomaly] = ()) -> list[Anomaly]:
    """Latency anomalies for series whose values shifted (one per key, none twice).

    ``what`` says which series: ``self`` (an entry's own work) or ``duration``
    (an endpoint's whole spans, to catch moderate shifts the mean rule misses).
    """
    taken = {(a.key, a.type) for a in already}
    found: list[Anomaly] = []
    for key, v in sorted(verdicts.items()):
        if not v.significant(rules) or (key, AnomalyType.LATENCY) in taken:
            continue
        if what == "self":
            message = (f"Self-time spike: {len(v.strong)} of {v.judged} spans spent {v.observed_ms:.0f}ms "
                       f"in {key[0]}'s own work (baseline: {v.baseline_ms:.0f}ms)")
        else:
            message = (f"Latency shift: {len(v.strong)} of {v.judged} requests took {v.observed_ms:.0f}ms "
                       f"(baseline: {v.baseline_ms:.0f}ms)")
        found.append(Anomaly(key[0], key[1], AnomalyType.LATENCY, v.observed_ms, v.baseline_ms, v.judged,
                             message, evidence=v.spans() if what == "self" else [],
                             shown_by=v.spans(),
                             onset=v.onset, strength=v.strength(rules)))
    return found


def network(suspects: Iterable, already: Iterable[Anomaly] = (), rules: Rules = Rules()) -> list[Anomaly]:
    """A latency anomaly per service whose incoming calls shifted outside its own spans.

    Such a service may show nothing in its own spans, so no other rule would
    name it: the evidence spans are its callers' CLIENT spans.
    """
    taken = {(a.key, a.type) for a in already}
    found: list[Anomaly] = []
    for suspect in suspects:
        ins = [s for s in suspect.signals if s.kind == "network-in"]
        if not ins:
            continue
        lead = max(ins, key=lambda s: s.score)
        key = (suspect.service, lead.endpoint)
        if (key, AnomalyType.LATENCY) in taken:
            continue
        shift = lead.shift
        callers = ", ".join(sorted({s.peer for s in ins}))
        found.append(Anomaly(
            key[0], key[1], AnomalyType.LATENCY, shift.observed_ms, shift.baseline_ms, shift.judged,
            f"Network: {len(shift.strong)} of {shift.judged} calls from {callers} took "
            f"{shift.observed_ms:.0f}ms outside {key[0]}'s own spans (baseline: {shift.baseline_ms:.0f}ms)",
            evidence=[sp for s in ins for sp in s.shift.spans()], onset=suspect.onset,
            strength=max(s.shift.strength(rules) for s in ins),
        ))
    return found


def with_strength(anomalies: Iterable[Anomaly], whole: Mapping[Key, Shift], rules: Rules) -> list[Anomaly]:
    """Give the mean rule's latency anomalies the strength of their endpoint's robust verdict
    (how unlikely its slow values are), at least ``DEFAULT_STRENGTH``: the mean rule has none."""
    anomalies = list(anomalies)
    for a in anomalies:
        if a.type == AnomalyType.LATENCY and not a.strength and a.key in whole:
            a.strength = max(DEFAULT_STRENGTH, whole[a.key].strength(rules))
    return anomalies


def count_strength(count: int, expected: float) -> float:
    """The strength of ``count`` events where ``expected`` were (log lines of one template, say): the
    Poisson tail as :func:`~aiops.detection.robust.surprise`, at least ``DEFAULT_STRENGTH`` (the
    count passed its own rule's gate)."""
    return max(DEFAULT_STRENGTH, surprise(poisson_tail(int(count), max(expected, MIN_EXPECTED))))
