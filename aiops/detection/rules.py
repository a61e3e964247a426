"""Anomaly rules over one window of spans. Pure logic: spans and baselines in, anomalies out.

Rules (thresholds in :class:`Thresholds`, all configurable):

- latency: window mean > ``latency_factor`` x baseline and more than
  ``latency_min_delta_ms`` above it (a 1 ms endpoint taking 3 ms is jitter,
  not an incident), once the baseline has ``min_baseline_samples``, with at least
  ``min_slow_requests`` requests each over that line (one stalled request is not a slow
  endpoint, however far it pulls a quiet window's mean);
- error: 5xx/error share > ``error_rate`` with at least ``min_window_requests``; or, on a path
  too quiet for that, the same share over the last few windows (``recent``) when so many
  failures are unlikely at the endpoint's own usual rate (a binomial test, corrected for the
  endpoints tested: :func:`quiet_errors`);
- timeout: at least ``min_slow_requests`` calls that time out (504s, ``*Timeout*`` exceptions),
  counted both on the endpoint that gave up and on the endpoint that stopped answering;
- calls failing unanswered: calls into an endpoint that failed with no answer at all
  (:func:`refused_calls`), which a best-effort caller absorbs; on a quiet callee, these and its
  timeouts over the last few windows (:func:`quiet_calls`), as a quiet path's errors are;
- self time (see :mod:`aiops.detection.selftime`): an entry whose spans spend far more
  time in their own work than usual, judged span by span, so it also fires for
  endpoints too quiet for a window mean;
- latency shift: an endpoint whose durations moved against its robust log
  baseline (:mod:`aiops.detection.robust`), for shifts the mean rule misses;
- network (see :mod:`aiops.detection.edges`): calls into a service spending longer
  outside its own spans.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from aiops.detection import patterns
from aiops.detection.ewma import BaselineValue
from aiops.detection.robust import Rules, binomial_tail, poisson_tail, surprise
from aiops.kinds import AnomalyType
from aiops.settings import Settings
from telemetry.columns import KIND_CLIENT, KIND_SERVER
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
    durations: list[float] = field(default_factory=list)  # ms, of each request
    unanswered: int = 0  # calls to this endpoint that timed out on the caller's side
    exceptions: dict[str, int] = field(default_factory=dict)
    # Failed requests by the pattern their evidence names (aiops.detection.patterns).
    patterns: dict[str, int] = field(default_factory=dict)
    calls: int = 0  # CLIENT calls to this endpoint (its callers' side)
    # ... that failed with no SERVER span under them (reset, refused, lost: it never answered),
    # timeouts left to their own rule; with the exception (or pattern) their CLIENT spans name.
    refused: int = 0
    refusals: dict[str, int] = field(default_factory=dict)
    callers: set[str] = field(default_factory=set)  # services whose CLIENT spans called it

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.count if self.count else 0.0

    def slower_than(self, line_ms: float) -> int:
        return sum(1 for d in self.durations if d > line_ms)

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
    answered = {s.parent_span_id for s in spans if s.kind == KIND_SERVER and s.parent_span_id}
    called: dict[Key, WindowStats] = defaultdict(WindowStats)
    for span in spans:
        if span.service in ignored:
            continue
        if span.kind == KIND_CLIENT:
            if span.peer:
                _count_call(called[span_key(span)], span, answered)
            continue
        s = stats[(span.service, span.endpoint)]
        s.count += 1
        s.total_ms += span.duration_ms
        s.durations.append(span.duration_ms)
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
    for key, c in called.items():  # an endpoint is in the stats for its calls only when some failed
        if c.unanswered or c.refused:
            s = stats[key]
            s.unanswered, s.calls, s.refused, s.refusals, s.callers = (
                c.unanswered, c.calls, c.refused, c.refusals, c.callers)
    return dict(stats)


def _count_call(s: WindowStats, span, answered: set) -> None:
    """One CLIENT call into ``s``'s endpoint: timed out, refused (failed with no answer at all: no
    status code, no span of the callee under it), or answered. A 5xx did come from somewhere: the
    callee's own span says what, or arrives a cycle later."""
    s.calls += 1
    s.callers.add(span.service)
    if is_timeout(span):
        s.unanswered += 1
    elif span.error and not span.status_code and span.span_id not in answered:
        s.refused += 1
        label = (span.exception_type or patterns.of_span(span) or "no answer")[:200]
        s.refusals[label] = s.refusals.get(label, 0) + 1


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
    recent_calls: Mapping[Key, tuple[int, int, int]] | None = None,
) -> list[Anomaly]:
    """Apply the rules to every endpoint of the window. ``recent``: (requests, failures) of the
    last few windows, this one included, for the endpoints :func:`quiet_failing` names;
    ``recent_calls``: (calls, failed unanswered, timed out) of those windows, for
    :func:`quiet_calls`' callees."""
    found: list[Anomaly] = []
    corrected = max_p / max(1, len(stats))  # every endpoint of the window is tested
    for (service, endpoint), s in sorted(stats.items()):
        base = baselines.get((service, endpoint))
        usual = usual_error_rate(base)
        timed_out = s.timeouts + s.unanswered
        past = (recent_calls or {}).get((service, endpoint))
        callee = (base or _service_baseline(service, baselines)) if s.refused or s.unanswered else base
        if timed_out >= th.min_slow_requests:
            why = (
                f"{s.unanswered} calls to it timed out" if s.unanswered >= s.timeouts
                else f"{s.timeouts} of {s.count} requests timed out"
            )
            p = binomial_tail(timed_out, max(s.count, timed_out), usual)
            found.append(Anomaly(service, endpoint, AnomalyType.TIMEOUT, float(timed_out), None,
                                 s.count, f"Timeout: {why}", pattern=s.pattern(), strength=surprise(p)))
        elif s.unanswered and past:
            quiet = quiet_timeouts((service, endpoint), s, past, callee, th, corrected)
            if quiet is not None:
                found.append(quiet)
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
            quiet = quiet_errors((service, endpoint), s, recent[(service, endpoint)], base, th, corrected)
            if quiet is not None:
                found.append(quiet)
        if s.refused and not any(a.key == (service, endpoint) and a.type == AnomalyType.ERROR for a in found):
            refused = refused_calls((service, endpoint), s, callee, th, corrected, past[:2] if past else None)
            if refused is not None:
                found.append(refused)
        if th.is_slow(s.mean_ms, base) and \
                s.slower_than(th.slow_above(base.latency_ms)) >= th.min_slow_requests:
            found.append(Anomaly(
                service, endpoint, AnomalyType.LATENCY, s.mean_ms, base.latency_ms, s.count,
                f"Latency spike: {s.mean_ms:.0f}ms (baseline: {base.latency_ms:.0f}ms)",
            ))
    return found


def _service_baseline(service: str, baselines: Mapping[Key, BaselineValue]) -> BaselineValue | None:
    """The service's most-seen endpoint's baseline: a call names its operation as the caller sees it
    (``GET``), which may be none of the callee's own endpoints, yet the callee's usual rate holds."""
    return max((b for k, b in baselines.items() if k[0] == service and b is not None),
               key=lambda b: b.samples, default=None)


REFUSED = "Calls failing: "  # the message of refused_calls' anomalies


def _news(failed: int, total: int, base: BaselineValue | None, th: Thresholds, max_p: float) -> float | None:
    """The chance of ``failed`` of ``total`` at ``base``'s usual error rate, when they are news: more
    than ``error_rate`` of them, at least ``min_slow_requests``, and that chance below ``max_p``
    (already corrected for the endpoints tested). None when they are not."""
    if failed < th.min_slow_requests or failed <= th.error_rate * total:
        return None
    p = binomial_tail(failed, total, usual_error_rate(base))
    return p if p <= max_p else None


def refused_calls(key: Key, s: WindowStats, base: BaselineValue | None, th: Thresholds,
                  max_p: float, recent: tuple[int, int] | None = None) -> Anomaly | None:
    """The error rule for an endpoint its callers cannot reach: more than ``error_rate`` of the
    calls into it failed with no span of its own under them (reset, refused, lost), at least
    ``min_slow_requests`` of them, and that many are unlikely (below ``max_p``, corrected for the
    endpoints tested) at its own usual error rate (``base``: its endpoint's, else its service's).
    A best-effort caller absorbs such failures, so no SERVER span anywhere fails: only its CLIENT
    spans say the callee is unreachable. Such calls are the ``dependency`` pattern. A quiet path's
    calls are counted over the last few windows (``recent``: calls, failed unanswered), as its
    requests are by :func:`quiet_errors`."""
    calls, refused = s.calls, s.refused
    if recent:
        calls, refused = max(recent[0], calls), max(recent[1], refused)
    p = _news(refused, calls, base, th, max_p)
    if p is None:
        return None
    top = max(s.refusals.items(), key=lambda kv: (kv[1], kv[0]))[0] if s.refusals else None
    over = " over the last windows" if refused > s.refused else ""
    return Anomaly(
        key[0], key[1], AnomalyType.ERROR, refused / calls, base.error_rate if base else None, calls,
        f"{REFUSED}{refused} of {calls} calls to it failed before it answered{over}"
        + (f" ({top})" if top else ""), pattern=patterns.DEPENDENCY, strength=surprise(p))


def quiet_calls(stats: Mapping[Key, WindowStats], th: Thresholds, limit: int = 100) -> list[Key]:
    """Callees whose calls failed unanswered or timed out in this window, too few for the window's
    rules alone: those whose last few windows :func:`refused_calls` and :func:`quiet_timeouts`
    judge (at most ``limit``, most first)."""
    few = th.min_slow_requests
    keys = [k for k, s in stats.items()
            if 0 < s.refused < few or (s.unanswered and s.unanswered + s.timeouts < few)]
    return sorted(keys, key=lambda k: (-stats[k].refused - stats[k].unanswered, k))[:limit]


def quiet_timeouts(key: Key, s: WindowStats, recent: tuple[int, int, int], base: BaselineValue | None,
                   th: Thresholds, max_p: float) -> Anomaly | None:
    """The timeout rule for a quiet path, as :func:`quiet_errors` is the error rule's: the calls into
    the callee that timed out over the last few windows (``recent``: calls, failed unanswered, timed
    out), judged by :func:`_news` at its own usual rate (its endpoint's, else its service's)."""
    calls = max(recent[0], s.calls, s.count)
    timed_out = max(recent[2], s.unanswered) + s.timeouts
    p = _news(timed_out, calls, base, th, max_p)
    if p is None:
        return None
    return Anomaly(key[0], key[1], AnomalyType.TIMEOUT, float(timed_out), None, calls,
                   f"Timeout: {timed_out} of {calls} calls to it timed out over the last windows",
                   pattern=s.pattern(), strength=surprise(p))


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
    p = _news(errors, count, base, th, max_p)
    if p is None:
        return None
    top, usual = s.top_exception(), usual_error_rate(base)
    return Anomaly(
        key[0], key[1], AnomalyType.ERROR, errors / count, base.error_rate if base else None, count,
        f"Error spike: {errors} of {count} requests failed over the last windows "
        f"(usually {usual:.1%})" + (f" ({top})" if top else ""), pattern=s.pattern(), strength=surprise(p))


def count_strength(count: int, expected: float) -> float:
    """The strength of ``count`` events where ``expected`` were (log lines of one template, say): the
    Poisson tail as :func:`~aiops.detection.robust.surprise`, at least ``DEFAULT_STRENGTH`` (the
    count passed its own rule's gate)."""
    return max(DEFAULT_STRENGTH, surprise(poisson_tail(int(count), max(expected, MIN_EXPECTED))))
