"""The trace walk: which endpoints to blame for an abnormal span. Pure logic.

From an abnormal span we follow its abnormal children; where no child is
abnormal, the span itself is to blame (its own behaviour explains the trace).
A CLIENT span slow outside its callee's span blames the callee (the network
into it), and one whose callee never reported (it hung, or is not
instrumented) blames the callee it names. A span that failed right after a
healthy call returned blames that answer first (a wrong response) and itself
next. A slow span with no abnormal child still passes the blame to a child
that took most of its time, so a missing baseline does not stop the walk.

Blame lands on the culprit span's *entry* (its service's SERVER span above
it), so the internal operations of one faulty service form one root, not one
per method.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

from aiops.detection.ewma import BaselineValue
from aiops.detection.rules import Anomaly, Key, Thresholds, is_timeout
from aiops.detection.selftime import SpanIndex
from telemetry.columns import KIND_CLIENT, KIND_SERVER
from telemetry.rows import span_key

ANSWER_SHARE = 0.6  # blame on the callee whose answer a span failed right after (see Blamer)


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
    def __init__(self, baselines: Mapping[Key, BaselineValue], th: Thresholds):
        self.baselines = baselines
        self.th = th

    def abnormal(self, span) -> bool:
        return bool(span.error) or is_timeout(span) or self.slow(span)

    def slow(self, span) -> bool:
        return self.th.is_slow(span.duration_ms, self.baselines.get(span_key(span)))

    def culprits(self, span, tree: TraceTree, depth: int = 0) -> dict[Key, float]:
        """Endpoints to blame for ``span`` being abnormal (deepest abnormal spans), with weights
        that add up to 1."""
        children = tree.children.get(span.span_id, [])
        if depth > 64 or not children:
            return {tree.blame_key(span): 1.0}
        bad = [c for c in children if self.abnormal(c)]
        if not bad and not span.error:
            # Slow with healthy children: blame a child only if the time went there.
            longest = max(children, key=lambda c: c.duration_ms)
            if longest.duration_ms > 0.5 * span.duration_ms:
                bad = [longest]
        elif len(bad) > 1 and not span.error:
            # Slow with several slower-than-usual children (a busy host slows them all):
            # when one of them took most of the time, it alone explains the slowness.
            heavy = [c for c in bad if c.duration_ms > 0.5 * span.duration_ms]
            if heavy:
                bad = heavy
        if not bad:
            return self._failed_after_answer(span, children, tree) or {tree.blame_key(span): 1.0}
        keys: dict[Key, float] = defaultdict(float)
        for child in bad:
            for key, w in self.culprits(child, tree, depth + 1).items():
                keys[key] += w / len(bad)
        return dict(keys)

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
