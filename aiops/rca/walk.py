"""The trace walk: which endpoints to blame for an abnormal span. Pure logic.

From an abnormal span we follow its abnormal children; where no child is
abnormal, the span itself is to blame (its own behaviour explains the trace).
A CLIENT span slow outside its callee's span blames the callee (the network
into it), and one whose callee never reported (it hung, or is not
instrumented) blames the callee it names. A span that failed right after a
healthy call returned blames that answer first (a wrong response) and itself
next.

A slow span with no abnormal child follows the *growth*: where its time grew
against the typical values of the robust series (its own work, each call, each
call's network gap), not where it is large. A caller that grew only by its
children's time is not the root, however much work of its own it does: the
walk goes down to the child that grew most, and on through a call to the
callee when its span grew more than twice as much as the gap, else it stops
at the call (a grown gap: the network into the callee). A service whose
incoming call and outgoing calls grew alike in their gaps is the one to blame
(all of its pod's traffic delayed), not its callee. Where those series are
not learned yet, a child that took most of the span's time takes the blame,
so a missing baseline does not stop the walk.

Blame lands on the culprit span's *entry* (its service's SERVER span above
it), so the internal operations of one faulty service form one root, not one
per method.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

from aiops.detection.ewma import BaselineValue
from aiops.detection.robust import LogBaseline, Rules
from aiops.detection.rules import Anomaly, Key, Thresholds, is_timeout
from aiops.detection.selftime import SpanIndex
from telemetry.columns import KIND_CLIENT, KIND_SERVER
from telemetry.rows import span_key

ANSWER_SHARE = 0.6  # blame on the callee whose answer a span failed right after (see Blamer)
# A call whose gap grew by half as much as its callee's span (a third of its growth) blames the network
# into the callee, not the callee's work: a pod whose traffic is delayed both ways grows its callers'
# gaps and, through its own delayed calls, its span.
GAP_WEIGHT = 2.0


class TraceTree:
    """Parent/child index of one trace's spans."""

    def __init__(self, spans: Iterable):
        self.spans = list(spans)
        self.children: dict[str | None, list] = defaultdict(list)
        for span in self.spans:
            self.children[span.parent_span_id].append(span)
        self.index = SpanIndex(self.spans)

    def blame_key(self, span) -> Key:
        """The endpoint to blame for ``span``: a CLIENT span's callee (the SERVER span that answered
        it, else the service it names), else its entry. A call slow outside its callee's span is
        slow on the way into the callee: a network fault shows on the edges into a service."""
        if span.kind == KIND_CLIENT:
            answered = [c for c in self.children.get(span.span_id, ()) if c.kind == KIND_SERVER]
            if answered:
                return self.index.entry(answered[0])
            if span.peer:
                return span_key(span)
        return self.index.entry(span)


class Blamer:
    """``baselines``: the mean rules' (what is abnormal); ``signals``: the robust series' (typical
    self time, call and gap per edge, duration per endpoint: where the time grew)."""

    def __init__(self, baselines: Mapping[Key, BaselineValue], th: Thresholds,
                 signals: Mapping[tuple, LogBaseline] | None = None):
        self.baselines = baselines
        self.th = th
        self.signals = signals or {}
        self.rules = Rules()

    def abnormal(self, span) -> bool:
        return bool(span.error) or is_timeout(span) or self.slow(span)

    def slow(self, span) -> bool:
        return self.th.is_slow(span.duration_ms, self.baselines.get(span_key(span)))

    def culprits(self, span, tree: TraceTree, depth: int = 0, gap_in: float = 0.0) -> dict[Key, float]:
        """Endpoints to blame for ``span`` being abnormal (deepest abnormal spans), with weights
        that add up to 1. ``gap_in``: how much the gap of the call into ``span`` grew."""
        children = tree.children.get(span.span_id, [])
        if depth > 64 or not children:
            return {tree.blame_key(span): 1.0}
        if depth == 0 and span.kind == KIND_SERVER:
            gap_in = self._gap_into(span, tree)
        bad = [c for c in children if self.abnormal(c)]
        if not bad and not span.error:
            # Slow with healthy children: blame the children only if the time grew there.
            bad = self._grown(span, children, tree, gap_in)
        elif len(bad) > 1 and not span.error:
            # Slow with several slower-than-usual children (a busy host slows them all):
            # when one of them took most of the time, it alone explains the slowness.
            heavy = [c for c in bad if c.duration_ms > 0.5 * span.duration_ms]
            if heavy:
                bad = heavy
        if not bad:
            return self._failed_after_answer(span, children, tree) or {tree.blame_key(span): 1.0}
        gap = (self._growth(span, tree, own=True) or 0.0) if span.kind == KIND_CLIENT else 0.0
        keys: dict[Key, float] = defaultdict(float)
        for child in bad:
            into = gap if child.kind == KIND_SERVER else 0.0
            for key, w in self.culprits(child, tree, depth + 1, into).items():
                keys[key] += w / len(bad)
        return dict(keys)

    def _grown(self, span, children: list, tree: TraceTree, gap_in: float = 0.0) -> list:
        """The children whose growth explains ``span``'s: those of the callee (or operation) that grew
        most, when it grew more than the span's own part (its own work; a call's network gap, twice).
        None when those are calls grown in their gaps while the call into ``span`` grew in its gap as
        much: the span's pod is slow on the network both ways (all its traffic delayed), not its callee.
        Without the typical values, the longest child when it took most of the span's time."""
        own = self._growth(span, tree, own=True)
        grown: dict[Key, float] = defaultdict(float)
        members: dict[Key, list] = defaultdict(list)
        for child in children:
            growth = self._growth(child, tree)
            if growth is not None:
                target = tree.blame_key(child)
                grown[target] += growth
                members[target].append(child)
        if own is None or not grown:
            longest = max(children, key=lambda c: c.duration_ms)
            return [longest] if longest.duration_ms > 0.5 * span.duration_ms else []
        target = max(grown, key=lambda k: (grown[k], k))
        weight = GAP_WEIGHT if span.kind == KIND_CLIENT else 1.0
        if grown[target] <= weight * max(own, 0.0):
            return []
        if gap_in > 0 and all(c.kind == KIND_CLIENT for c in members[target]):
            gaps = [self._growth(c, tree, own=True) or 0.0 for c in members[target]]
            if sum(gaps) >= 0.5 * grown[target] and gap_in >= 0.5 * sum(gaps) / len(gaps):
                return []
        return members[target]

    def _gap_into(self, span, tree: TraceTree) -> float:
        """How much the gap of the call into SERVER ``span`` grew (0 when unknown): a walk that starts
        at a callee (the anomaly a cycle raised on its endpoint) sees the network into it as one that
        came down through the call does."""
        call = tree.index.by_id.get((span.trace_id, span.parent_span_id))
        if call is None or call.kind != KIND_CLIENT:
            return 0.0
        return max(self._growth(call, tree, own=True) or 0.0, 0.0)

    def _typical(self, series: tuple) -> float | None:
        base = self.signals.get(series)
        return base.typical_ms if base is not None and base.ready(self.rules) else None

    def _growth(self, span, tree: TraceTree, own: bool = False) -> float | None:
        """Milliseconds ``span`` (``own``: its own part) took beyond its typical value; None when not
        known. A call's own part is its gap outside the callee's span; the whole call, that gap's
        growth plus its callee span's (typical per endpoint: a caller's calls to a callee's slow
        endpoint are not growth), or, unanswered, the call against the edge's typical call."""
        if span.kind == KIND_CLIENT:
            answered = [c for c in tree.children.get(span.span_id, ()) if c.kind == KIND_SERVER]
            if not answered:
                typical = self._typical(("call", span.service, span.peer)) if span.peer and not own else None
                return None if typical is None else span.duration_ms - typical
            callee = answered[0]
            typical = self._typical(("gap", span.service, callee.service))
            gap = None if typical is None else span.duration_ms - callee.duration_ms - typical
            if own or gap is None:
                return gap
            inside = self._growth(callee, tree)
            return None if inside is None else gap + inside
        if own:
            typical = self._typical(("self", *span_key(span)))
            return None if typical is None else tree.index.self_ms(span) - typical
        server = span.kind == KIND_SERVER
        typical = self._typical(("duration", span.service, span.endpoint)) if server else None
        if typical is None:
            base = self.baselines.get(span_key(span))
            typical = base.latency_ms if base is not None and self.th.judges(base) else None
        return None if typical is None else span.duration_ms - typical

    def _failed_after_answer(self, span, children: list, tree: TraceTree) -> dict[Key, float] | None:
        """A span that failed right after a healthy call returned, its last act: the answer it
        just got is the likelier trigger (a wrong response), its own code the other."""
        if not span.error:
            return None
        end = span.start_time + span.duration_ms / 1000.0
        last = max(children, key=lambda c: c.start_time + c.duration_ms / 1000.0)
        slack = max(0.005, 0.1 * span.duration_ms / 1000.0)
        if last.kind != KIND_CLIENT or end - (last.start_time + last.duration_ms / 1000.0) > slack:
            return None
        answered = [c for c in tree.children.get(last.span_id, ()) if c.service != span.service]
        callee = tree.blame_key(answered[0]) if answered else (span_key(last) if last.peer else None)
        if callee is None or callee == tree.blame_key(span):
            return None
        return {callee: ANSWER_SHARE, tree.blame_key(span): 1.0 - ANSWER_SHARE}


def evidence_spans(anomaly: Anomaly, spans: Iterable, blamer: Blamer) -> list:
    """The spans (the window's, of the anomaly's endpoint) that show ``anomaly``, newest first."""
    test: Callable
    if anomaly.type == "error":
        test = lambda s: s.error  # noqa: E731
    elif anomaly.type == "timeout":
        test = is_timeout
    else:
        test = blamer.slow
    found = [s for s in spans if span_key(s) == anomaly.key and test(s)]
    found.sort(key=lambda s: s.start_time, reverse=True)
    return found
