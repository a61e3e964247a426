"""Ranking services by the evidence around them, not by how deep they sit. Pure logic.

A fault adds time (or errors) in one place and every caller upstream shows it
as symptoms. Symptoms are not evidence: a caller's longer duration is
explained by what it waited for. Evidence is what a service added *itself*:

- **self**: its spans spent longer in their own work (CPU hog, slow code);
- **network in**: calls *into* it spent longer outside its own spans (the gap
  between a caller's CLIENT span and its SERVER span, or the whole call when
  it never answered): its pod's network, or its queue;
- **network out**: its calls *to others* spent longer outside their spans.

A shifted edge A -> B is explained either by B (its answers are delayed) or
by A (all of A's traffic is delayed, or A is too starved to read its
answers). Its score is split between them in proportion to how consistently
each side shifted: the share of B's incoming edges that shifted, against
``OUT_PRIOR`` times the share of A's outgoing edges that did (the callee is
the likelier culprit: a delay on answers is the common fault). So B's delayed answers, seen by all
its callers, rank B first even when A calls only B; and a starved or delayed
A, whose calls to several callees all shifted while those callees' other
callers saw nothing, ranks A first.

Each signal's strength is its :attr:`Shift.score` (how many calls
were how many spreads slower), so a quiet service with a few enormous shifts
competes with a busy one with many moderate shifts: rank by how much, not by
whether.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from aiops.detection import edges
from aiops.detection import selftime as st
from aiops.detection.edges import EdgeKey
from aiops.detection.robust import LogBaseline, Rules, Shift
from aiops.detection.rules import WHOLE_SERVICE, Key
from telemetry.columns import KIND_CLIENT, KIND_SERVER
from telemetry.rows import span_key

# A caller's claim on a shifted edge, against the callee's: below 1, as the callee is the
# likelier culprit, but above 1/2, so one caller whose calls to two callees shifted outranks
# each of them (one cause for two shifts beats two causes for one each).
OUT_PRIOR = 0.6
QUIET_SERIES = 20  # values a series may have judged (over its windows) to have its evidence carried
# An entry judged on this many spans whose own work did not move is proof that its service's
# process is not starved: the service's shifted entries are faults of their own, not one slowdown.
BUSY_ENTRY = 10
# An entry judged on fewer spans (at least this many) is that proof too when its values did not
# move and fewer than ``Rules.min_strong`` were strongly slow: a starved process leaves no entry
# untouched. Callers of a slow endpoint are seen less often (they wait), so they are the entries a
# starved verdict must not outvote.
UNTOUCHED_ENTRY = 5


@dataclass
class Signal:
    kind: str  # self | network-in | network-out
    service: str  # whom it speaks for
    endpoint: str  # the operation it names
    peer: str | None  # the other side of an edge
    shift: Shift
    weight: float

    @property
    def score(self) -> float:
        return self.shift.score * self.weight

    @property
    def onset(self) -> float | None:
        return self.shift.onset

    def describe(self) -> str:
        s = self.shift
        if self.kind == "self":
            what = f"own work in {self.endpoint}"
        elif self.kind == "network-in":
            what = f"calls from {self.peer} outside {self.service}'s own spans"
        else:
            what = f"calls to {self.peer} outside {self.peer}'s own spans"
        return (f"{len(s.strong)} of {s.judged} {what} took {s.observed_ms:.0f}ms "
                f"(baseline {s.baseline_ms:.0f}ms)")


class Evidence(Protocol):
    """One thing that speaks against a service: a trace :class:`Signal` or a log signal
    (:class:`aiops.logs.signals.LogSignal`)."""

    @property
    def score(self) -> float: ...

    @property
    def onset(self) -> float | None: ...


E = TypeVar("E", bound=Evidence)


@dataclass
class Accused(Generic[E]):
    """A service and the evidence against it, whatever its source (traces or logs): the evidence's
    scores add up, the strongest leads, and the earliest says when it began."""

    service: str
    signals: list[E] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(s.score for s in self.signals)

    @property
    def lead(self) -> E:
        return max(self.signals, key=lambda s: s.score)

    @property
    def onset(self) -> float | None:
        return min((s.onset for s in self.signals if s.onset is not None), default=None)


@dataclass
class Suspect(Accused[Signal]):
    """A service its traces accuse (:func:`rank`)."""

    # Every busy entry of the service (two or more) moved in its own work: the process is starved
    # (a CPU hog, a GC storm), so the root is the service, not one of its endpoints.
    wide: bool = False

    @property
    def key(self) -> Key:
        """The endpoint to name as root: the one its strongest signal is about; the whole service
        when it slowed everywhere."""
        return (self.service, WHOLE_SERVICE if self.wide else self.lead.endpoint)

    def root_for(self, key: Key, anomalous: Key | None = None) -> Key:
        """What to blame when a trace's blame lands on ``key``, an entry of this service: the entry
        itself when its own work slowed or it is the ``anomalous`` endpoint itself (its own spans
        explain its anomaly): two faulty endpoints of one service stay two roots. Else :attr:`key`:
        the service's internal operations form one root, not one per method."""
        if self.wide:
            return self.key
        if key == anomalous or any(s.kind == "self" and s.endpoint == key[1] for s in self.signals):
            return key
        return self.key


def _most_common(names: Iterable[str]) -> str:
    counts = Counter(names)
    return min(counts, key=lambda n: (-counts[n], n)) if counts else "?"


def _edge_shifts(edge_shifts: Mapping[EdgeKey, Shift]) -> dict[tuple[str, str], Shift]:
    """Per (caller, callee), the series that speaks for the network: the gap, else the whole call."""
    chosen: dict[tuple[str, str], Shift] = {}
    for (signal, caller, callee), shift in edge_shifts.items():
        if signal == "gap" or (signal == "call" and (caller, callee) not in chosen):
            chosen[(caller, callee)] = shift
    return chosen


def rank(
    self_shifts: Mapping[Key, Shift],
    edge_shifts: Mapping[EdgeKey, Shift],
    significant: set,
    endpoints: Mapping[tuple[str, str], str],
    entry: Callable[[object], Key],
    rules: Rules,
    both_ways: Callable[[Shift], bool] = lambda shift: False,
) -> list[Suspect]:
    """Suspects best first. ``*_shifts`` hold every judged series; ``significant`` names the keys
    (entry keys and edge keys) that passed the evidence gate; ``endpoints`` names the callee
    operation of each CLIENT span and ``entry`` the caller's endpoint it ran under; ``both_ways``
    tells a shifted edge whose caller's own inbound calls grew as much (the caller's to blame)."""
    suspects: dict[str, Suspect] = {}

    def add(service: str, signal: Signal) -> None:
        if signal.weight > 0:
            suspects.setdefault(service, Suspect(service)).signals.append(signal)

    starved = _slowed_everywhere(self_shifts, rules.min_strong)
    for key, shift in self_shifts.items():
        # A starved service's entries are evidence together even where each alone is below the gate.
        if key in significant or (key[0] in starved and shift.strong):
            add(key[0], Signal("self", key[0], key[1], None, shift, 1.0))
    for service in starved & set(suspects):
        suspects[service].wide = True

    edges = _edge_shifts(edge_shifts)
    shifted = {pair for pair, shift in edges.items() if shift.key in significant}
    ins: dict[str, list] = defaultdict(list)
    outs: dict[str, list] = defaultdict(list)
    for caller, callee in edges:
        ins[callee].append((caller, callee))
        outs[caller].append((caller, callee))

    def share(pairs: list) -> float:
        return sum(1 for p in pairs if p in shifted) / len(pairs) if pairs else 0.0

    for caller, callee in sorted(shifted):
        shift = edges[(caller, callee)]
        by_callee, by_caller = share(ins[callee]), OUT_PRIOR * share(outs[caller])
        if both_ways(shift):
            by_callee, by_caller = 0.0, 1.0
        endpoint = _most_common(endpoints.get((s.trace_id, s.span_id), "?") for s in shift.spans())
        total = by_callee + by_caller
        add(callee, Signal("network-in", callee, endpoint, caller, shift, by_callee / total))
        own = _most_common(entry(s)[1] for s in shift.spans())
        add(caller, Signal("network-out", caller, own, callee, shift, by_caller / total))
    return _explain_away(sorted(suspects.values(), key=lambda s: (-s.score, s.service)))


def _slowed_everywhere(self_shifts: Mapping[Key, Shift], min_strong: int) -> set[str]:
    """Services with two or more busy entries whose own work *every one* moved (most values above
    typical, a sign test) with ``min_strong`` strongly slow values or more: a starved process
    slows all of its endpoints, most of them too little to pass the evidence gate alone, while a
    fault in one endpoint leaves the others' own work as it was. Slightly slower everywhere is
    not starved: threads held by a slow call make the others' own work a little slower, with no
    value strongly slow. An entry seen too few times for the sign test vetoes when it shows
    fewer than ``min_strong`` slow values."""
    busy: dict[str, list[Shift]] = defaultdict(list)
    untouched: set[str] = set()
    for key, shift in self_shifts.items():
        if shift.judged >= BUSY_ENTRY:
            busy[key[0]].append(shift)
        elif shift.judged >= UNTOUCHED_ENTRY and len(shift.strong) < min_strong and not shift.moved:
            untouched.add(key[0])
    return {service for service, shifts in busy.items()
            if service not in untouched and len(shifts) >= 2
            and all(shift.moved and len(shift.strong) >= min_strong for shift in shifts)}


def _explain_away(ranked: list[Suspect]) -> list[Suspect]:
    """A suspect whose only evidence is its edges with a stronger suspect is explained by it.

    One shifted edge is one fact, not two causes: when A also has evidence of
    its own (its other edges, its self time) and outranks B, B's claim on
    their shared edge is explained by A, and B drops out (and the reverse).
    """
    kept: list[Suspect] = []
    for suspect in ranked:
        peers = {sig.peer for sig in suspect.signals}
        if not any(None not in peers and peers == {k.service} for k in kept):
            kept.append(suspect)
    return kept


def _awaited(edge: Mapping[EdgeKey, Shift], significant: set, index: st.SpanIndex,
             earlier: Mapping[tuple, Shift], baselines: Mapping[tuple, LogBaseline]) -> set:
    """Shifted edges held for one window, carried to the next: a callee's calls from one caller
    grew in their gaps, but the calls into that caller are not stored yet for most of them. A
    caller's span ends after its callee's and often lands a batch or a cycle later, and whether
    the calls into the caller grew too (its pod slow on the network both ways, not the callee's)
    is what tells the two apart. Never held twice, and never when calls from several callers grew."""
    callers: dict[str, set[str]] = defaultdict(set)
    for key in significant:
        if len(key) == 3:
            callers[key[2]].add(key[1])
    called = {key[2] for key in baselines if len(key) == 3 and key[0] == "gap"}
    held = set()
    for key in significant:
        if len(key) != 3 or key[0] == "server" or key in earlier or len(callers[key[2]]) > 1:
            continue
        spans = edge[key].spans()
        unknown = sum(1 for s in spans if not _inbound_known(s, index, called))
        if 2 * unknown > len(spans):
            held.add(key)
    return held


def _both_ways(shift: Shift, index: st.SpanIndex, baselines: Mapping[tuple, LogBaseline],
               rules: Rules) -> bool:
    """Whether most of a shifted gap's calls came from work whose own inbound call grew in its gap
    by half as much or more: the caller's pod is slow on the network both ways, and its calls
    out are slow for that, not for their callee (as :mod:`aiops.rca.walk` judges on the way down)."""
    if shift.key[0] != "gap":
        return False
    grown = 0
    for call, value, typical, _ in shift.strong:
        into = _gap_into(index.entry_span(call), index, baselines, rules)
        grown += into is not None and into >= 0.5 * (value - typical)
    return 2 * grown > len(shift.strong)


def _gap_into(span, index: st.SpanIndex, baselines: Mapping[tuple, LogBaseline],
              rules: Rules) -> float | None:
    """How much the gap of the call into SERVER ``span`` grew beyond its edge's typical gap (None:
    not known)."""
    call = index.by_id.get((span.trace_id, span.parent_span_id or ""))
    if span.kind != KIND_SERVER or call is None or call.kind != KIND_CLIENT:
        return None
    base = baselines.get(("gap", call.service, span.service))
    if base is None or not base.ready(rules):
        return None
    return call.duration_ms - span.duration_ms - base.typical_ms


def _inbound_known(call, index: st.SpanIndex, called: set[str]) -> bool:
    """Whether the span above the caller's work of CLIENT span ``call`` (the call into its SERVER
    span; the caller's own span, when that has not landed either) is stored, or none will be: a
    service no edge was ever seen into (``called``: the callees of the learned edges) is called
    from outside the traces (an uninstrumented client that passed its trace context on)."""
    entry = index.entry_span(call)
    if not entry.parent_span_id or (entry.trace_id, entry.parent_span_id) in index.by_id:
        return True
    return entry.kind == KIND_SERVER and entry.service not in called


@dataclass
class Assessment:
    """Everything the robust series say about one window."""

    own: dict[Key, Shift]  # self time, per entry
    whole: dict[Key, Shift]  # whole SERVER durations, per endpoint
    suspects: list[Suspect]
    values: dict[tuple, list[float]]  # per series, to learn from
    skip: set[tuple]  # series that must not learn from this window
    pending: dict[tuple, Shift]  # quiet verdicts with some evidence but not enough yet: for the next window
    names: dict[tuple[str, str], str]  # callee operation of each judged CLIENT span
    horizon: float = 0.0  # seconds the evidence of quiet series (and paths) adds up over


def assess(window: list, baselines: Mapping[tuple, LogBaseline], rules: Rules,
           now: float | None = None, ignored: Iterable[str] = (), context: Iterable = (),
           earlier: Mapping[tuple, Shift] | None = None,
           earlier_names: Mapping[tuple[str, str], str] | None = None) -> Assessment:
    """Judge every series of the window (self time, durations, edges) and rank the suspects.

    ``context``: earlier spans of the window's traces, linked but not judged
    again. ``earlier``: the evidence of verdicts that were not significant in
    the last windows (``pending``), added to this window's before the gate;
    ``earlier_names``: the callee operations of their CLIENT spans.
    """
    index = st.SpanIndex(window, context)
    own, own_values = st.shifts(index, baselines, rules, now, ignored)
    whole, whole_values = st.durations(index, baselines, rules, now, ignored)
    calls = edges.calls(index, now, ignored)
    baselines = edges.judged_by(baselines, calls, rules)
    edge, edge_values = edges.shifts(calls, baselines, rules)
    for key, shift in (earlier or {}).items():
        verdicts = edge if len(key) == 3 else own
        verdicts[key] = verdicts[key].merge(shift) if key in verdicts else shift
    for verdicts in (own, edge, whole):
        for shift in verdicts.values():
            shift.settle(rules)
    significant = {k for verdicts in (own, edge) for k, v in verdicts.items() if v.significant(rules)}
    awaited = _awaited(edge, significant, index, earlier or {}, baselines)
    significant -= awaited
    names = {**(earlier_names or {}), **edges.callee_endpoints(calls)}
    suspects = rank(own, edge, significant, names, index.entry, rules,
                    lambda shift: _both_ways(shift, index, baselines, rules))
    # A series whose values were strongly slow in a significant verdict must not learn them.
    skip = {("self", *span_key(sp)) for k in significant if k in own for sp in own[k].spans()}
    skip |= {k for k in significant if k in edge}
    skip |= {("duration", *k) for k, v in whole.items() if v.significant(rules)}
    # A quiet series' few slow values may be the start of a fault: carried, and not learned meanwhile.
    pending = {k: v for verdicts in (own, edge) for k, v in verdicts.items()
               if v.strong and k not in significant and (v.judged <= QUIET_SERIES or k in awaited)}
    skip |= {k for k in pending if k in edge}
    skip |= {("self", *span_key(sp)) for k in pending if k in own for sp in own[k].spans()}
    return Assessment(own, whole, suspects, {**own_values, **whole_values, **edge_values}, skip, pending,
                      names)
