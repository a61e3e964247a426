"""Code paths that stopped being logged: the log side of a code fault. Pure logic.

Each request an endpoint serves logs a few templates, and which ones depends
on the path its code takes. A method that throws, or returns a wrong value,
sends the requests that still arrive down another path: a template that most
of the endpoint's requests logged is suddenly logged by none of them, and often
no ERROR line says so. Counting per *request* (the SERVER span a line ran
under), not per window, makes this blind to traffic: fewer requests log fewer
lines, but the same share of them. A whole endpoint that stops logging counts
(the exception came before its first line), but only while its service logs
something else in the window: a service gone silent is a broken log pipeline
as often as a fault, and is left to the traces.

Per endpoint we keep EWMAs over normal windows of the requests that logged and
of how many of them logged each template. A template has *vanished* when a
share ``p`` of requests usually logs it and only ``x`` of the window's ``k``
did, at most a quarter of the usual share: the chance of so few, the binomial
tail with ``p`` taken at the low end of what the baseline's requests allow,
must be below ``max_p``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

Key = tuple[str, str]  # (service, endpoint)
Requests = dict[Key, dict[str, set[int]]]  # endpoint -> request (entry span id) -> template ids it logged
MAX_EXAMPLES = 3  # lines kept per endpoint: the requests that took the other path
FORGOTTEN = 1e-3  # a template's share of requests below which the baseline drops it
MAX_ENDPOINTS = 5000  # endpoints followed (span names are the sender's: forged ones must not grow this)
MAX_REQUESTS = 500  # requests of one endpoint counted by the test (bounds its cost)
MAX_SCORE = 20.0  # -log10 of the chance, capped: one path is one piece of evidence
EFFECTIVE_WINDOWS = 9  # windows an EWMA of weight 0.2 remembers, (2 - alpha) / alpha


@dataclass(frozen=True)
class PathRules:
    min_windows: int = 3  # normal windows of the endpoint before its paths are judged
    min_requests: int = 5  # requests that logged, in the window
    min_base_requests: float = 20.0  # requests behind the baseline's shares
    max_p: float = 1e-6  # chance of so few requests logging a template that usually appears
    max_drop: float = 0.25  # ... and the share logging it fell at least this far (x 1/4)
    alpha: float = 0.2
    warmup_windows: int = 10


@dataclass
class PathBaselines:
    windows: dict[Key, int] = field(default_factory=dict)
    requests: dict[Key, float] = field(default_factory=dict)  # requests that logged, per window
    present: dict[Key, dict[int, float]] = field(default_factory=dict)  # ... and logged each template


@dataclass(frozen=True)
class Vanished:
    endpoint: Key
    template_id: int
    requests: int  # the endpoint's requests in the window
    logged: int  # ... that logged the template
    usual_share: float
    score: float  # -log10 of the chance, capped


def requests_of(records: Iterable, template_of: Callable, entry_of: Callable,
                served: Mapping[Key, Iterable[str]]) -> tuple[Requests, dict]:
    """Group the window's lines by the request (entry span of the same service) they ran under,
    next to the requests ``served`` (SERVER span ids per endpoint) that logged nothing, for the
    services that logged; also a few lines per endpoint, to show."""
    records = list(records)
    logging = {r.service for r in records}
    found: Requests = {endpoint: {span_id: set() for span_id in spans}
                       for endpoint, spans in served.items() if spans and endpoint[0] in logging}
    examples: dict[Key, list] = defaultdict(list)
    for r in records:
        where, template = entry_of(r), template_of(r)
        if where is None or template is None or where[0][0] != r.service:
            continue
        endpoint, request = where
        seen = found.get(endpoint)
        if seen is None:
            seen = found[endpoint] = {}
        templates = seen.get(request)
        if templates is None:
            templates = seen[request] = set()
        templates.add(template)
        if len(examples[endpoint]) < MAX_EXAMPLES:
            examples[endpoint].append(r)
    return found, dict(examples)


def log10_tail(x: int, k: int, p: float) -> float:
    """log10 of P(X <= x) for X ~ Binomial(k, p)."""
    terms = [math.lgamma(k + 1) - math.lgamma(i + 1) - math.lgamma(k - i + 1)
             + i * math.log(p) + (k - i) * math.log1p(-p) for i in range(x + 1)]
    top = max(terms)
    return (top + math.log(sum(math.exp(t - top) for t in terms))) / math.log(10)


def vanished(requests: Mapping[Key, Mapping[str, set[int]]], base: PathBaselines,
             rules: PathRules = PathRules()) -> list[Vanished]:
    """Templates that most of an endpoint's requests usually log and (almost) none of this window's
    did: the share fell to ``max_drop`` of the usual or less, too far to be chance."""
    found = []
    for endpoint, seen in requests.items():
        k = min(len(seen), MAX_REQUESTS)
        usual = base.requests.get(endpoint, 0.0)
        n_windows = base.windows.get(endpoint, 0)
        if k < rules.min_requests or n_windows < rules.min_windows or usual <= 0:
            continue
        n_base = usual * min(n_windows, EFFECTIVE_WINDOWS)
        if n_base < rules.min_base_requests:
            continue
        counts: dict[int, int] = defaultdict(int)
        for templates in seen.values():
            for t in templates:
                counts[t] += 1
        for template, present in base.present.get(endpoint, {}).items():
            p = min(present / usual, 1.0)
            x = counts.get(template, 0)
            if x > rules.max_drop * p * len(seen):
                continue
            low = min(p - 2.0 * math.sqrt(p * (1 - p) / n_base), 0.999)
            if low <= 0:
                continue
            log_p = log10_tail(min(x, k), k, low)
            if log_p <= math.log10(rules.max_p):
                found.append(Vanished(endpoint, template, len(seen), x, p, min(-log_p, MAX_SCORE)))
    return found


def learn(base: PathBaselines, requests: Mapping[Key, Mapping[str, set[int]]], skip: Iterable[str] = (),
          rules: PathRules = PathRules(), weight: float | None = None) -> None:
    """Fold the window's requests into the baselines of their endpoints, except those of the
    services in ``skip``. An endpoint with no request that logged learns nothing (no shares)."""
    skipped = set(skip)
    for endpoint, seen in requests.items():
        if endpoint[0] in skipped or not seen:
            continue
        if endpoint not in base.windows and len(base.windows) >= MAX_ENDPOINTS:
            continue
        n = base.windows.get(endpoint, 0)
        a = 1.0 / (n + 1) if n < rules.warmup_windows else rules.alpha
        a = max(a, weight) if weight is not None else a
        counts: dict[int, int] = defaultdict(int)
        for templates in seen.values():
            for t in templates:
                counts[t] += 1
        present = base.present.setdefault(endpoint, {})
        for t in set(present) | set(counts):
            present[t] = (1 - a) * present.get(t, 0.0) + a * counts.get(t, 0)
            if present[t] < FORGOTTEN:
                del present[t]
        base.requests[endpoint] = (1 - a) * base.requests.get(endpoint, 0.0) + a * len(seen)
        base.windows[endpoint] = n + 1
