"""Calls between services as signals of their own. Pure logic.

Why: a network fault at a service is invisible inside its own spans. Its
callers' CLIENT spans grow by the delay while its SERVER spans stay normal, so
the *gap* between them (network plus queueing) is where it shows. Every
caller -> callee edge therefore gets three series, each with its own
:class:`~aiops.detection.robust.LogBaseline`:

- ``call``: the caller's CLIENT span duration (the only one when the callee
  never reports: it hung, or it is not instrumented but named by ``peer``);
- ``server``: the callee's SERVER span duration under that call;
- ``gap``: the first minus the second.

An edge is keyed by (signal, caller service, callee service), not by
endpoint: the network between two services is shared by all their calls, and
pooling them gives quiet edges enough values to judge.

A young edge (called a few times a minute, or first seen after the learning)
has too few gaps to know its own normal: one early outlier sets its spread, or
a fault's first calls teach it. Its gaps are judged against the *network's*,
shrunk toward its own as they add up (:func:`judged_by`): the gaps of one
network are alike, so +300 ms on an edge seen twice is as plain as on a busy one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from statistics import median

from aiops.detection.robust import LogBaseline, Rules, Shift, judge_all
from aiops.detection.rules import is_timeout
from aiops.detection.selftime import SpanIndex, finished
from telemetry.columns import KIND_CLIENT, KIND_SERVER

EdgeKey = tuple[str, str, str]  # (signal, caller service, callee service)

MIN_FAMILY = 3  # mature gap series the network's prior needs (fewer: young edges wait, as before)


@dataclass(frozen=True)
class Call:
    """One call across the network, as both sides saw it."""

    span: object  # the caller's CLIENT span
    callee_span: object | None  # the callee's SERVER span, when it reported
    caller: str
    callee: str

    @property
    def endpoint(self) -> str:
        """The callee's operation: its SERVER span's name, else the client's."""
        return self.callee_span.endpoint if self.callee_span is not None else self.span.endpoint

    def values(self) -> dict[str, float]:
        client = self.span.duration_ms
        if self.callee_span is None:
            return {"call": client}
        server = self.callee_span.duration_ms
        return {"call": client, "server": server, "gap": max(0.0, client - server)}


def calls(index: SpanIndex, now: float | None = None, ignore_services: Iterable[str] = ()) -> list[Call]:
    """Every finished CLIENT span of the window whose callee is known (it reported, or ``peer``)."""
    ignored = set(ignore_services)
    found: list[Call] = []
    for span in index.spans:
        if span.kind != KIND_CLIENT or span.service in ignored or not finished(span, now):
            continue
        kids = [c for c in index.children.get((span.trace_id, span.span_id), ()) if c.kind == KIND_SERVER]
        if kids:
            found.append(Call(span, kids[0], span.service, kids[0].service))
        elif span.peer and span.peer != span.service:
            found.append(Call(span, None, span.service, span.peer))
    return found


def shifts(
    found: Iterable[Call], baselines: Mapping[EdgeKey, LogBaseline], rules: Rules
) -> tuple[dict[EdgeKey, Shift], dict[EdgeKey, list[float]]]:
    """Judge every call against its edge's baselines: (verdicts per edge series, values per series).

    A failed call is not judged (it is an error, seen by the error rules), but
    a timed-out one is: a hang is the extreme of slow.
    """
    items = (
        ((signal, call.caller, call.callee), (signal, call.caller, call.callee),
         call.callee_span if signal == "server" else call.span, value)
        for call in found
        if not call.span.error or is_timeout(call.span)
        for signal, value in call.values().items()
    )
    return judge_all(items, baselines, rules)


def callee_endpoints(found: Iterable[Call]) -> dict[tuple[str, str], str]:
    """The callee operation of each call, by its CLIENT span: names what a shifted edge slowed."""
    return {(call.span.trace_id, call.span.span_id): call.endpoint for call in found}


@dataclass(frozen=True)
class Prior:
    """The gaps of a network's mature edges: where a young edge's typical gap may sit (``center``,
    give or take ``between``: edges differ) and how its values vary around it (``within``)."""

    center: float
    within: float
    between: float


def network_prior(baselines: Mapping[tuple, LogBaseline], rules: Rules) -> Prior | None:
    """The median of the mature gap series' typical values and variances, and how far apart their
    typical values lie (never closer than ``min_spread``: one test network's identical edges say
    little of the next edge). None while fewer than ``MIN_FAMILY`` edges are mature."""
    mature = [b for k, b in baselines.items() if k[0] == "gap" and b.samples >= rules.mature_samples]
    if len(mature) < MIN_FAMILY:
        return None
    centers = [b.center for b in mature]
    center = median(centers)
    between = max((1.4826 * median([abs(c - center) for c in centers])) ** 2, rules.min_spread ** 2)
    within = median([max(b.var, rules.min_spread ** 2) for b in mature])
    return Prior(center, within, between)


def shrink(own: LogBaseline, prior: Prior, rules: Rules) -> LogBaseline:
    """A young series' baseline: its level and spread the family's, moved toward its own as its
    values add up.

    Its typical value is the family's and its own weighed as a normal prior and a sample mean are
    (``within / between`` samples' worth of prior); its variance, which takes many more values to
    know (one early outlier sets a two-sample spread), weighs its own against ``mature_samples``,
    plus what is unsure of its level, plus the distance between its own level and the family's
    as a mixture's variance would (an edge slower by nature is not judged slow for long). Its tail
    rates stay its own (:meth:`LogBaseline.rarity` floors a young series'): how often one edge's
    calls straggle is its own. A series with ``mature_samples`` is itself."""
    n, k = own.samples, rules.mature_samples
    if n >= k:
        return own
    w, v = n / (n + prior.within / prior.between), n / (n + k)
    delta = own.center - prior.center
    var = (1 - v) * prior.within + v * own.var + (1 - w) * prior.between + w * (1 - w) * delta * delta
    return replace(own, center=prior.center + w * delta, var=var, samples=max(n, rules.min_samples))


def judged_by(baselines: Mapping[tuple, LogBaseline], found: Iterable[Call],
              rules: Rules) -> Mapping[tuple, LogBaseline]:
    """The baselines a window is judged against: the gap series of its calls that are young, but
    seen at least once, as :func:`shrink` makes them (the store keeps each series' own, which is
    what learns). An edge never seen is not judged, as before: it may be slower by nature, and
    nothing tells that from a fault until it has a normal of its own."""
    young = {k: b for k in {("gap", c.caller, c.callee) for c in found if c.callee_span is not None}
             if (b := baselines.get(k)) is not None and b.samples < rules.mature_samples}
    prior = network_prior(baselines, rules) if young else None
    if prior is None:
        return baselines
    return {**baselines, **{k: shrink(b, prior, rules) for k, b in young.items()}}
