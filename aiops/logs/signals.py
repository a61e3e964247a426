"""Log signals: which services' log patterns changed in a window. Pure logic.

Per service and per template we keep the mean count per window over the
windows judged normal (an EWMA after a warm-up, as :mod:`aiops.detection.ewma`
does for latency), and which templates were ever seen then. A window is judged
against them; the signals are:

- **surge**: more ERROR/WARN lines than the service's usual rate *for the
  traffic it served* (an excess in standard deviations of a negative binomial
  whose dispersion is the service's own, :mod:`aiops.logs.noise`: (observed -
  expected) / sqrt(expected + 1 + phi expected^2), expected scaled by the
  window's SERVER spans over the usual number: twice the requests log twice the
  warnings, and that is not news);
- **new**: lines of a template never seen in a normal window (only once the
  service has been watched for ``min_windows``: at first everything is new),
  beyond the few new templates a window of that service usually shows;
- **exception**: either of those on a template that reports an exception or a
  stack frame counts ``EXCEPTION_WEIGHT`` times;
- **trace-bound**: a template whose lines fall mostly in the window's slow or
  failed traces (the ones the detector flagged);
- **vanished**: a template most of an endpoint's requests log and (almost) none of the
  window's did (:mod:`aiops.logs.paths`: the code took another path).

A service's log score is the sum over its signals; a service with no logs has
no score, so a system that sends no logs ranks exactly as before. A service
whose logs swing in normal operation is *noisy* (:func:`aiops.logs.noise.noisy`):
its signals are shown, but have no say in root-cause analysis (:mod:`aiops.logs.clues`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from aiops.detection.evidence import Accused
from aiops.logs import noise
from aiops.logs import paths as logpaths
from aiops.logs.mining import MAX_SERVICES, TemplateKey, TemplateMiner, is_exception

WARN, ERROR = 13, 17  # OTLP severity numbers
# How much a new template weighs by its worst line's severity: an INFO line never seen before is
# mostly new traffic (another route through the code), an ERROR one is news.
SEVERITY_WEIGHT = ((ERROR, 3.0), (WARN, 2.0), (0, 0.5))
MAX_WILDCARDS = 0.5  # templates made mostly of wildcards say nothing about what happened
EXCEPTION_WEIGHT = 2.0
MAX_EXAMPLES = 3  # lines kept per signal, for the incident page
# Score of a service's alarming log signals (ERROR lines, exceptions, vanished paths) that raises an
# anomaly of its own, no trace anomaly needed (aiops.logs.clues), when the service is quiet.
RAISE_SCORE = 5.0


class LogRecord(NamedTuple):
    """One log line as the cycle judges it (a named tuple: a cycle makes ten thousand of them)."""

    time: float
    service: str
    severity_number: int
    body: str
    trace_id: str | None = None
    span_id: str | None = None
    row_id: int = 0  # the store's row id when read from it (its template id is written back)


@dataclass(frozen=True)
class LogRules:
    min_windows: int = 3  # normal windows before "new" and "surge" are judged
    min_lines: int = 3  # lines a signal needs
    min_surge: float = 3.0  # excess (in sqrt units) of ERROR/WARN lines
    trace_share: float = 0.8  # share of a template's lines in abnormal traces
    trace_lift: float = 2.0  # ... and that many times the share of all the window's lines there
    alpha: float = 0.2  # EWMA weight of a normal window, after the warm-up
    warmup_windows: int = 10
    paths: logpaths.PathRules = logpaths.PathRules()
    variability: noise.NoiseRules = noise.NoiseRules()


@dataclass
class LogBaselines:
    """What normal logging looks like: per service and per template, mean lines per window."""

    windows: dict[str, int] = field(default_factory=dict)
    warn_rate: dict[str, float] = field(default_factory=dict)
    traffic: dict[str, float] = field(default_factory=dict)  # SERVER spans per window
    template_rate: dict[TemplateKey, float] = field(default_factory=dict)
    seen_in_normal: set[TemplateKey] = field(default_factory=set)
    paths: logpaths.PathBaselines = field(default_factory=logpaths.PathBaselines)
    # Per (service, count) of aiops.logs.noise.COUNTS, over every window it was watched in: how
    # much its logs vary when nothing is wrong.
    count_mean: dict[tuple[str, str], float] = field(default_factory=dict)
    count_var: dict[tuple[str, str], float] = field(default_factory=dict)

    def noisy(self, service: str, rules: noise.NoiseRules = noise.NoiseRules()) -> bool:
        return noise.noisy(self.count_mean, self.count_var, service, rules)

    def quiet(self, service: str, rules: noise.NoiseRules = noise.NoiseRules()) -> bool:
        return noise.quiet(self.count_mean, self.count_var, self.windows.get(service, 0), service, rules)


@dataclass
class LogSignal:
    kind: str  # surge | new | trace-bound | vanished (count, expected: requests, not lines)
    service: str
    template: str
    count: int
    expected: float
    score: float
    onset: float
    examples: list[LogRecord]
    exception: bool = False
    endpoint: str | None = None  # where it was seen, when the signal is an endpoint's (vanished)
    template_id: int | None = None  # the template's id at its service (log_templates)

    @property
    def severe(self) -> bool:
        """Does it speak of trouble (ERROR/WARN lines, an exception), not only of other traffic?"""
        if self.kind == "vanished" or self.exception:
            return True
        return any(r.severity_number >= WARN for r in self.examples)

    @property
    def alarming(self) -> bool:
        """Does it report a failure (an ERROR line, an exception, a code path gone), not a WARN line? A
        warning is what a service says when it copes (a retry, a fallback): noisy services say it all
        day, so warnings alone never raise (they still rank and corroborate)."""
        if self.kind == "vanished" or self.exception:
            return True
        return any(r.severity_number >= ERROR for r in self.examples)

    def describe(self) -> str:
        if self.kind == "vanished":
            return (f"{self.count} requests logged a line usually logged by {self.expected:.1f} of them "
                    f"(a code path gone): {self.template[:200]}")
        what = {"surge": "ERROR/WARN lines", "new": "lines of a new template",
                "trace-bound": "lines in slow or failed traces"}[self.kind]
        return f"{self.count} {what} (usual {self.expected:.1f}): {self.template[:200]}"


@dataclass
class LogSuspect(Accused[LogSignal]):
    """A service its logs accuse (score, lead and onset as a trace suspect's)."""

    @property
    def severe_score(self) -> float:
        return sum(s.score for s in self.signals if s.severe)

    @property
    def alarm_score(self) -> float:
        """The score of its signals that report a failure: what may raise an anomaly alone."""
        return sum(s.score for s in self.signals if s.alarming)


@dataclass
class LogWindow:
    """A window's mined lines and what they say."""

    templates: dict[TemplateKey, list[LogRecord]]
    suspects: dict[str, LogSuspect]
    problems: dict[str, list[LogRecord]]  # per trace id: its ERROR/WARN lines
    paths: logpaths.Requests = field(default_factory=dict)  # per endpoint and request: templates logged
    noisy: set[str] = field(default_factory=set)  # services not known to be quiet: no say in RCA
    new: dict[str, int] = field(default_factory=dict)  # per service: templates never seen in a normal window
    swinging: set[str] = field(default_factory=set)  # suspects whose warnings burst: never raise alone

    def lines_of(self, trace_id: str | None, limit: int = 20) -> list[LogRecord]:
        return self.problems.get(trace_id or "", [])[:limit]


def _vague(template: str) -> bool:
    tokens = template.split()
    return not tokens or sum(1 for t in tokens if t == "<*>") > MAX_WILDCARDS * len(tokens)


def level(severity_number: int) -> str:
    """The severity band a line is mined under: a WARN line and an INFO line of the same shape are
    different events, and Drain would merge them if the level were only a word of the body."""
    return "ERROR" if severity_number >= ERROR else "WARN" if severity_number >= WARN else "INFO"


def mine(records: Iterable[LogRecord], miner: TemplateMiner) -> dict[TemplateKey, list[LogRecord]]:
    found: dict[TemplateKey, list[LogRecord]] = defaultdict(list)
    for r in records:
        mined = miner.add(r.service, f"{level(r.severity_number)} {r.body}")
        if mined is not None:
            found[mined.key].append(r)
    return dict(found)


def expected_warnings(base: LogBaselines, service: str, traffic: Mapping[str, int]) -> float:
    """The service's usual ERROR/WARN lines per window, scaled to the window's traffic when both
    the window and the baseline saw its SERVER spans (a service without traces: per window)."""
    usual, served = base.warn_rate.get(service, 0.0), base.traffic.get(service, 0.0)
    now = traffic.get(service, 0)
    return usual * now / served if now and served > 0 else usual


def judge(records: Iterable[LogRecord], miner: TemplateMiner, base: LogBaselines,
          rules: LogRules = LogRules(), abnormal_traces: Iterable[str] = (),
          traffic: Mapping[str, int] | None = None, entry_of: Callable | None = None,
          served: Mapping | None = None) -> LogWindow:
    """Mine the window's lines and find each service's log signals against ``base``; ``traffic``:
    the window's SERVER spans per service; for the vanished paths, ``entry_of``: a line's
    ``(endpoint, request)`` (the SERVER span it ran under) and ``served``: the window's SERVER span
    ids per endpoint."""
    records = sorted(records, key=lambda r: r.time)
    templates = mine(records, miner)
    abnormal = set(abnormal_traces)
    key_of = {id(r): key for key, lines in templates.items() for r in lines}
    problems, warns = _warnings(records)
    signals = _surges(warns, key_of, miner, base, rules, traffic or {})
    new_signals, novel = _template_signals(templates, records, abnormal, miner, base, rules)
    signals += new_signals
    paths: logpaths.Requests = {}
    if entry_of is not None:
        paths, vanished = _vanished(records, key_of, entry_of, served or {}, miner, base, rules)
        signals += vanished
    suspects: dict[str, LogSuspect] = {}
    for sig in signals:
        suspects.setdefault(sig.service, LogSuspect(sig.service)).signals.append(sig)
    noisy = {s for s in {r.service for r in records} | set(suspects) if not base.quiet(s, rules.variability)}
    swinging = {s for s in suspects if noise.swinging(base.count_mean, base.count_var, s, rules.variability)}
    return LogWindow(templates, suspects, dict(problems), paths, noisy, novel, swinging)


def _warnings(records: list[LogRecord]) -> tuple[dict[str, list[LogRecord]], dict[str, list[LogRecord]]]:
    """The window's ERROR/WARN lines, per trace id (those in a trace) and per service."""
    problems: dict[str, list[LogRecord]] = defaultdict(list)
    warns: dict[str, list[LogRecord]] = defaultdict(list)
    for r in records:
        if r.severity_number >= WARN:
            warns[r.service].append(r)
            if r.trace_id:
                problems[r.trace_id].append(r)
    return problems, warns


def _surges(warns: Mapping[str, list[LogRecord]], key_of: Mapping[int, TemplateKey], miner: TemplateMiner,
            base: LogBaselines, rules: LogRules, traffic: Mapping[str, int]) -> list[LogSignal]:
    """``surge``: services with more ERROR/WARN lines than usual for the traffic they served, each
    named after its commonest template."""
    found = []
    for service, lines in warns.items():
        if base.windows.get(service, 0) < rules.min_windows:
            continue
        expected = expected_warnings(base, service, traffic)
        phi = noise.dispersion(*noise.moments(base.count_mean, base.count_var, service, "warn"))
        excess = noise.tail_z(len(lines), expected, phi)
        if len(lines) >= rules.min_lines and excess >= rules.min_surge:
            top = Counter(key_of[id(r)] for r in lines if id(r) in key_of)
            lead = top.most_common(1)[0][0] if top else None
            text = (miner.template(lead) or "") if lead else ""
            exc = is_exception(text)
            score = (EXCEPTION_WEIGHT if exc else 1.0) * excess
            found.append(LogSignal("surge", service, text, len(lines), expected, score, lines[0].time,
                                   lines[:MAX_EXAMPLES], exc, template_id=lead[1] if lead else None))
    return found


def _template_signals(templates: Mapping[TemplateKey, list[LogRecord]], records: list[LogRecord],
                      abnormal: set[str], miner: TemplateMiner, base: LogBaselines,
                      rules: LogRules) -> tuple[list[LogSignal], dict[str, int]]:
    """Per template: ``new`` (never seen in a normal window; a service's usual churn of new templates
    is no signal) and ``trace-bound`` (its lines mostly in the window's abnormal traces, far more than
    the window's lines in all). Also how many new templates each service showed."""
    traced = [r for r in records if r.trace_id]
    overall = sum(1 for r in traced if r.trace_id in abnormal) / len(traced) if traced else 0.0
    found: list[LogSignal] = []
    fresh: dict[str, list[LogSignal]] = defaultdict(list)
    novel: Counter = Counter()
    for key, lines in templates.items():
        service = key[0]
        text = miner.template(key) or ""
        exc = is_exception(text)
        weight = EXCEPTION_WEIGHT if exc else 1.0
        watched = base.windows.get(service, 0) >= rules.min_windows
        if watched and key not in base.seen_in_normal and len(lines) >= rules.min_lines:
            novel[service] += 1  # a new template with as many lines as the signal needs: the churn's unit
        if watched and key not in base.seen_in_normal and len(lines) >= rules.min_lines and not _vague(text):
            worst = max(r.severity_number for r in lines)
            severe = next(w for level, w in SEVERITY_WEIGHT if worst >= level)
            fresh[service].append(LogSignal("new", service, text, len(lines), 0.0,
                                            weight * severe * math.sqrt(len(lines)), lines[0].time,
                                            lines[:MAX_EXAMPLES], exc, template_id=key[1]))
        if abnormal and len(lines) >= rules.min_lines:
            inside = [r for r in lines if r.trace_id in abnormal]
            usual = base.template_rate.get(key, 0.0)
            share = len(inside) / len(lines)
            if share >= rules.trace_share and share >= rules.trace_lift * overall and len(lines) > 2 * usual:
                found.append(LogSignal("trace-bound", service, text, len(inside), usual,
                                       weight * math.sqrt(len(inside)), inside[0].time, inside[:MAX_EXAMPLES],
                                       exc, template_id=key[1]))
    for service, sigs in fresh.items():
        usual = noise.churn(base.count_mean, base.count_var, service)
        beyond = max(0, novel[service] - usual)  # the strongest of the templates beyond the churn
        found += sorted(sigs, key=lambda sig: -sig.score)[:beyond]
    return found, dict(novel)


def _vanished(records: list[LogRecord], key_of: Mapping[int, TemplateKey], entry_of: Callable,
              served: Mapping, miner: TemplateMiner, base: LogBaselines,
              rules: LogRules) -> tuple[logpaths.Requests, list[LogSignal]]:
    """``vanished``: per endpoint, the strongest template most of its requests usually log and the
    window's did not (:mod:`aiops.logs.paths`); and the templates each request logged."""
    paths, shown = logpaths.requests_of(records, lambda r: key_of.get(id(r), (None, None))[1], entry_of,
                                        served)
    strongest: dict[logpaths.Key, list[logpaths.Vanished]] = defaultdict(list)
    for v in logpaths.vanished(paths, base.paths, rules.paths):
        strongest[v.endpoint].append(v)
    found = []
    for endpoint, candidates in strongest.items():
        lead = max(candidates, key=lambda v: v.score)
        lines = shown.get(endpoint, [])
        found.append(LogSignal("vanished", endpoint[0], miner.template((endpoint[0], lead.template_id)) or "",
                               lead.logged, lead.usual_share * lead.requests, lead.score,
                               lines[0].time if lines else 0.0, lines, endpoint=endpoint[1],
                               template_id=lead.template_id))
    return paths, found


def learn(base: LogBaselines, window: LogWindow, services: Iterable[str], rules: LogRules = LogRules(),
          skip: Iterable[str] = (), weight: float | None = None,
          traffic: Mapping[str, int] | None = None) -> None:
    """Fold a window into the baselines of ``services`` (those that were watched in it: a service
    that wrote nothing counted zero), except the services in ``skip`` (their window was abnormal).
    ``weight``: the window's weight instead of the EWMA's (relearning after a silence)."""
    skipped = set(skip)
    counts: dict[TemplateKey, int] = {k: len(v) for k, v in window.templates.items()}
    warn_counts = Counter(r.service for lines in window.templates.values() for r in lines
                          if r.severity_number >= WARN)
    # A new ERROR/WARN template is learned as normal once a normal window has as many of its lines as
    # the "new" signal needs: its first line or two, at a fault's onset, must not make it normal.
    severe = {k for k, lines in window.templates.items() if lines[0].severity_number >= WARN}
    by_service: dict[str, list[TemplateKey]] = defaultdict(list)
    for key in set(counts) | {k for k in base.template_rate}:
        by_service[key[0]].append(key)
    for service in services:
        if service not in base.windows and len(base.windows) >= MAX_SERVICES:
            continue  # service names are the sender's: forged ones must not grow the baselines
        n = base.windows.get(service, 0)
        a = 1.0 / (n + 1) if n < rules.warmup_windows else rules.alpha
        a = max(a, weight) if weight is not None else a
        if weight is None:  # not while relearning: a new recording's jump is not the service's spread
            per = noise.per_usual_traffic(base.traffic.get(service, 0.0), (traffic or {}).get(service, 0))
            judged = n >= rules.min_windows
            suspect = window.suspects.get(service)
            _spread(base, service, a, service in skipped,
                    {"warn": per * warn_counts.get(service, 0),
                     "new": window.new.get(service, 0) if judged else None,
                     "raised": float(suspect is not None and suspect.alarm_score >= RAISE_SCORE) if judged
                     else None})
        if service in skipped:
            continue
        base.warn_rate[service] = (1 - a) * base.warn_rate.get(service, 0.0) + a * warn_counts.get(service, 0)
        base.traffic[service] = (1 - a) * base.traffic.get(service, 0.0) + a * (traffic or {}).get(service, 0)
        for key in by_service.get(service, ()):
            base.template_rate[key] = (1 - a) * base.template_rate.get(key, 0.0) + a * counts.get(key, 0)
            if counts.get(key, 0) >= (rules.min_lines if key in severe else 1):
                base.seen_in_normal.add(key)
        base.windows[service] = n + 1
    logpaths.learn(base.paths, window.paths, skipped, rules.paths, weight)


def _spread(base: LogBaselines, service: str, a: float, suspected: bool, counts: Mapping) -> None:
    """The service's normal variability, learned from every window it was watched in
    (:mod:`aiops.logs.noise`): a suspect window's deviation is capped, and it teaches the churn of
    new templates a quarter as much (a fault's first new template must not become a quiet service's
    churn; a service that shows new ones window after window still learns so in a few)."""
    for name, x in counts.items():
        if x is not None:
            w = a / 4 if suspected and name == "new" else a
            noise.observe(base.count_mean, base.count_var, (service, name), x, w,
                          capped=suspected and name != "raised")


def scores(suspects: Mapping[str, LogSuspect]) -> dict[str, float]:
    return {s: sus.score for s, sus in suspects.items() if sus.score > 0}
