"""Root-cause analysis over traces. Pure logic: anomalies and spans in, groups out.

For each anomaly we take the spans that show it (the slow, failed or timed-out
ones) and walk down their traces: from an abnormal span we follow its abnormal
children; where no child is abnormal, the span itself is to blame (its own
behaviour explains the trace). A CLIENT span whose callee never reported (it
hung, or is not instrumented) blames the callee it names. A slow span with no
abnormal child still passes the blame to a child that took most of its time,
so a missing baseline does not stop the walk. Blame is counted over many
traces, which ranks the candidates; anomalies whose traces blame the same
endpoint become one group: one incident per root cause.

Blame lands on the culprit span's *entry* (its service's SERVER span above
it), so the internal operations of one faulty service form one root, not one
per method. An anomaly found in an endpoint's own work (self time) brings its
evidence and blames the endpoint itself. Entries whose self time shifted in
the window (``shift_scores``) are added to every group's candidates, so the
ranking still names them when the traces' blame points elsewhere.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from aiops.baseline import BaselineValue
from aiops.detect import Anomaly, Key, Thresholds, is_timeout
from aiops.selftime import SpanIndex
from telemetry.models import KIND_CLIENT
from telemetry.rows import span_key

MAX_TRACES_PER_ANOMALY = 20


@dataclass
class Group:
    root: Key
    anomalies: list[Anomaly]
    candidates: list[tuple[Key, float]]
    example_trace: str | None = None

    @property
    def affected(self) -> list[str]:
        names = [self.root[1]]
        for a in self.anomalies:
            if a.endpoint not in names:
                names.append(a.endpoint)
        return names


class TraceTree:
    """Parent/child index of one trace's spans."""

    def __init__(self, spans: Iterable):
        self.spans = list(spans)
        self.children: dict[str | None, list] = defaultdict(list)
        for span in self.spans:
            self.children[span.parent_span_id].append(span)
        self.index = SpanIndex(self.spans)

    def blame_key(self, span) -> Key:
        """The endpoint to blame for ``span``: a CLIENT span's named callee, else its entry."""
        if span.kind == KIND_CLIENT and span.peer:
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

    def culprits(self, span, tree: TraceTree, depth: int = 0) -> list[Key]:
        """Endpoints to blame for ``span`` being abnormal (deepest abnormal spans)."""
        children = tree.children.get(span.span_id, [])
        if depth > 64 or not children:
            return [tree.blame_key(span)]
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
            return [tree.blame_key(span)]
        keys: list[Key] = []
        for child in bad:
            for key in self.culprits(child, tree, depth + 1):
                if key not in keys:
                    keys.append(key)
        return keys


def evidence_spans(anomaly: Anomaly, window: Iterable, blamer: Blamer) -> list:
    """The window's spans that show ``anomaly``, newest first."""
    test: Callable
    if anomaly.type == "error":
        test = lambda s: s.error  # noqa: E731
    elif anomaly.type == "timeout":
        test = is_timeout
    else:
        test = blamer.slow
    found = [s for s in window if span_key(s) == anomaly.key and test(s)]
    found.sort(key=lambda s: s.start_time, reverse=True)
    return found


def _self_time_leads(anomalies: list[Anomaly]) -> dict[Key, Key]:
    """Self-time anomalies of one service blame its most affected entry: one root per service,
    since a starved process slows all of its endpoints at once."""
    best: dict[str, Anomaly] = {}
    for a in anomalies:
        if a.evidence and (a.service not in best or len(a.evidence) > len(best[a.service].evidence)):
            best[a.service] = a
    return {a.key: best[a.service].key for a in anomalies if a.evidence}


def analyse(
    anomalies: list[Anomaly],
    window: list,
    load_traces: Callable[[Iterable[str]], Mapping[str, list]],
    baselines: Mapping[Key, BaselineValue],
    th: Thresholds,
    shift_scores: Mapping[Key, float] | None = None,
) -> list[Group]:
    """Group ``anomalies`` by the root cause their traces point to."""
    blamer = Blamer(baselines, th)
    per_anomaly: list[tuple[Anomaly, list]] = []
    wanted: set[str] = set()
    for anomaly in anomalies:
        spans = anomaly.evidence or evidence_spans(anomaly, window, blamer)
        chosen, seen = [], set()
        for s in spans:
            if s.trace_id not in seen:
                seen.add(s.trace_id)
                chosen.append(s)
            if len(chosen) >= MAX_TRACES_PER_ANOMALY:
                break
        anomaly.trace_ids = [s.trace_id for s in chosen]
        wanted.update(anomaly.trace_ids)
        per_anomaly.append((anomaly, chosen))

    trees = {tid: TraceTree(spans) for tid, spans in load_traces(wanted).items()}
    lead = _self_time_leads(anomalies)
    roots: dict[Key, Group] = {}
    weights: dict[Key, dict[Key, float]] = defaultdict(lambda: defaultdict(float))
    examples: dict[Key, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for anomaly, spans in per_anomaly:
        blame: dict[Key, float] = defaultdict(float)
        trace_blame: dict[str, dict[Key, float]] = defaultdict(lambda: defaultdict(float))
        for span in spans:
            tree = trees.get(span.trace_id) or TraceTree([span])
            keys = [lead[anomaly.key]] if anomaly.evidence else blamer.culprits(span, tree)
            for key in keys:
                blame[key] += 1.0 / len(keys)
                trace_blame[span.trace_id][key] += 1.0 / len(keys)
        if not blame:
            blame[anomaly.key] = 1.0
        root = max(blame.items(), key=lambda kv: (kv[1], kv[0] == anomaly.key))[0]
        group = roots.setdefault(root, Group(root=root, anomalies=[], candidates=[]))
        group.anomalies.append(anomaly)
        for key, w in blame.items():
            weights[root][key] += w
        for tid, per_key in trace_blame.items():
            size = len(trees[tid].spans) if tid in trees else 0
            examples[root][tid] += per_key.get(root, 0.0) + 0.001 * size  # prefer fuller traces

    shifted = dict(shift_scores or {})
    shift_total = sum(shifted.values()) or 1.0
    groups = []
    for root, group in roots.items():
        total = sum(weights[root].values()) or 1.0
        blended: dict[Key, float] = defaultdict(float)
        for k, w in weights[root].items():
            blended[k] += (w / total) * (0.5 if shifted else 1.0)
        for k, w in shifted.items():
            blended[k] += 0.5 * w / shift_total
        group.candidates = sorted(
            ((k, round(w, 4)) for k, w in blended.items()),
            key=lambda kv: (-kv[1], kv[0] != root, kv[0]),
        )
        # The root's own anomalies first: they describe the cause.
        group.anomalies.sort(key=lambda a: (a.key != root, a.endpoint, a.type))
        if examples[root]:
            group.example_trace = max(examples[root].items(), key=lambda kv: kv[1])[0]
        groups.append(group)
    groups.sort(key=lambda g: g.root)
    return groups
