"""Root-cause analysis over traces. Pure logic: anomalies and spans in, groups out.

For each anomaly we take the spans that show it (the slow, failed or timed-out
ones) and walk down their traces to the spans to blame (:mod:`aiops.rca.walk`).
Blame is counted over many traces, which ranks the candidates; anomalies whose
traces blame the same endpoint become one group: one incident per root cause.
An anomaly found in an endpoint's own work (self time) or in the calls into a
service (network) brings its evidence and blames that directly.

The walk alone blames depth; :func:`analyse` therefore blends it with the
evidence ranking of :mod:`aiops.detection.evidence` (who added time itself), and each
group gets a propagation path: the root's evidence, then its symptoms.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from aiops.detection.evidence import Suspect
from aiops.detection.ewma import BaselineValue
from aiops.detection.robust import LogBaseline
from aiops.detection.rules import WHOLE_SERVICE, Anomaly, Key, Thresholds
from aiops.logs import clues as logrca
from aiops.logs.signals import LogWindow
from aiops.metrics import clues as metricrca
from aiops.metrics.baseline import MetricSuspect
from aiops.rca import pods
from aiops.rca.walk import Blamer, TraceTree, evidence_spans
from telemetry.columns import KIND_CLIENT
from telemetry.rows import span_key

MAX_TRACES_PER_ANOMALY = 20
# How much an anomaly of each type trusts the evidence ranking over the trace walk.
EVIDENCE_TRUST = {"latency": 0.8, "error": 0.3, "timeout": 0.3}
POD_CANDIDATES = 3  # candidates (best first) whose pod is looked for


@dataclass
class Group:
    root: Key
    anomalies: list[Anomaly]
    candidates: list[tuple[Key, float]]
    example_trace: str | None = None
    path: list[dict] = field(default_factory=list)
    pods: dict[str, str] = field(default_factory=dict)  # candidate service -> the pod its evidence names

    @property
    def affected(self) -> list[str]:
        names = [self.root[1]] if self.root[1] else []
        for a in self.anomalies:
            if a.endpoint and a.endpoint not in names:
                names.append(a.endpoint)
        return names


def _evidence_leads(anomalies: list[Anomaly], by_service: Mapping[str, Suspect]) -> dict[Key, Key]:
    """Anomalies that bring their evidence blame a key directly: network ones the endpoint they
    name; self-time ones their own entry, or the whole service when it slowed everywhere (a
    starved process slows all of its endpoints at once: one root, not one per endpoint)."""
    leads = {}
    for a in anomalies:
        if a.evidence:
            suspect = by_service.get(a.service)
            wide = suspect is not None and suspect.wide and not a.message.startswith("Network")
            leads[a.key] = suspect.key if wide else a.key
    return leads


def _evidence(related: set[str], by_service: Mapping[str, Suspect], blame: Mapping[Key, float],
              anomalous: Key):
    """The suspects' scores, for the services an anomaly's traces reach: each on the endpoint of
    that service the traces blame (:meth:`Suspect.root_for`), else on the suspect's own key."""
    found: dict[Key, float] = defaultdict(float)
    for s in related:
        suspect = by_service.get(s)
        if suspect is not None:
            named = max((k for k in blame if k[0] == s), key=lambda k: (blame[k], k), default=None)
            found[suspect.root_for(named, anomalous) if named else suspect.key] += suspect.score
    return dict(found)


def _normalised(weights: Mapping[Key, float]) -> dict[Key, float]:
    total = sum(weights.values())
    return {k: w / total for k, w in weights.items()} if total > 0 else {}


def _below(span, tree: TraceTree) -> set[str]:
    """Services of ``span`` and everything it called: where its trouble can come from."""
    found, todo = set(), [span]
    while todo and len(found) < 1000:
        current = todo.pop()
        found.add(current.service)
        if current.kind == KIND_CLIENT and current.peer:
            found.add(current.peer)
        todo.extend(tree.children.get(current.span_id, ()))
    return found


def analyse(
    anomalies: list[Anomaly],
    window: list,
    load_traces: Callable[[Iterable[str]], Mapping[str, list]],
    baselines: Mapping[Key, BaselineValue],
    th: Thresholds,
    suspects: Iterable[Suspect] = (),
    logs: LogWindow | None = None,
    metrics: Callable[[set[str]], Mapping[str, MetricSuspect]] | None = None,
    signals: Mapping[tuple, LogBaseline] | None = None,
) -> list[Group]:
    """Group ``anomalies`` by the root cause that explains them.

    Each anomaly weighs two opinions: the trace walk's (who is at the bottom of
    its abnormal spans) and the evidence ranking's (:mod:`aiops.detection.evidence`:
    which service below it added time itself). Slowness trusts the evidence
    most, since the walk tends to blame depth; errors and timeouts trust the
    walk, since an error is raised where it starts. ``logs`` (the window's judged
    log lines, :mod:`aiops.logs.clues`) add a third opinion; ``metrics`` (the resource series of
    the services the traces reach, :mod:`aiops.metrics.clues`), a fourth; without them nothing changes.
    ``signals`` (the robust series' baselines) let the walk follow where the time grew.
    """
    blamer = Blamer(baselines, th, signals)
    per_anomaly, wanted = _traces_of(anomalies, window, blamer)
    trees = {tid: TraceTree(spans) for tid, spans in load_traces(wanted).items()}
    by_service = {s.service: s for s in suspects}
    lead = _evidence_leads(anomalies, by_service)
    log_keys = logrca.suspect_keys(logs, window) if logs is not None else {}
    roots: dict[Key, Group] = {}
    weights: dict[Key, dict[Key, float]] = defaultdict(lambda: defaultdict(float))
    examples: dict[Key, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    shown: dict[Key, list] = defaultdict(list)
    walked = [(anomaly, spans, *_blame(anomaly, spans, trees, blamer, lead, by_service, logs))
              for anomaly, spans in per_anomaly]
    reached = set().union(*(related for *_, related in walked))
    from_metrics = metrics(reached) if metrics is not None and reached else None
    for anomaly, spans, blame, trace_blame, related in walked:
        opinion = _opinion(anomaly, blame, related, by_service, logs, log_keys, from_metrics)
        root = max(opinion.items(), key=lambda kv: (kv[1], kv[0] == anomaly.key))[0]
        group = roots.setdefault(root, Group(root=root, anomalies=[], candidates=[]))
        group.anomalies.append(anomaly)
        shown[root].extend(spans)
        for key, w in opinion.items():
            weights[root][key] += w
        for tid, per_key in trace_blame.items():
            size = len(trees[tid].spans) if tid in trees else 0
            examples[root][tid] += per_key.get(root, 0.0) + 0.001 * size  # prefer fuller traces
    for root, group in roots.items():
        _finish(group, weights[root], examples[root], by_service.get(root[0]), trees, logs)
        if from_metrics and root[0] in from_metrics:
            first = 1 if group.path and group.path[0]["service"] == root[0] else 0
            group.path.insert(first, metricrca.hop(from_metrics[root[0]], root[1]))
    if roots and pods.any_pod(window):
        children = pods.children_of([*window, *(sp for tree in trees.values() for sp in tree.spans)])
        for root, group in roots.items():
            group.pods = _pods(group, shown[root], by_service, window, children)
    return sorted(roots.values(), key=lambda g: g.root)


def _pods(group: Group, shown: list, by_service: Mapping[str, Suspect], window: list,
          children: Mapping[tuple, list]) -> dict[str, str]:
    """The pods the evidence of the group's top candidates points at (:mod:`aiops.rca.pods`): the
    spans that showed its anomalies and the strongly slow spans of the candidates' signals."""
    services = [key[0] for key, _ in group.candidates[:POD_CANDIDATES]]
    spans = list(shown)
    for service in services:
        suspect = by_service.get(service)
        for sig in suspect.signals if suspect is not None else ():
            spans.extend(sig.shift.spans())
    return pods.name_pods(services, spans, window, children)


def _traces_of(anomalies: list[Anomaly], window: list, blamer: Blamer) -> tuple[list, set[str]]:
    """Each anomaly with the spans that show it, one per trace and at most ``MAX_TRACES_PER_ANOMALY``
    (its ``trace_ids``, and its onset when it had none, are set from them); and every trace wanted."""
    per_anomaly: list[tuple[Anomaly, list]] = []
    wanted: set[str] = set()
    by_key: dict[Key, list] = defaultdict(list)
    for span in window if anomalies else ():
        by_key[span_key(span)].append(span)
    for anomaly in anomalies:
        spans = anomaly.evidence or anomaly.shown_by or evidence_spans(anomaly, by_key[anomaly.key], blamer)
        chosen, seen = [], set()
        for s in spans:
            if s.trace_id not in seen:
                seen.add(s.trace_id)
                chosen.append(s)
            if len(chosen) >= MAX_TRACES_PER_ANOMALY:
                break
        anomaly.trace_ids = [s.trace_id for s in chosen]
        if anomaly.onset is None and chosen:
            anomaly.onset = min(s.start_time for s in chosen)
        wanted.update(anomaly.trace_ids)
        per_anomaly.append((anomaly, chosen))
    return per_anomaly, wanted


def _blame(anomaly: Anomaly, spans: list, trees: Mapping[str, TraceTree], blamer: Blamer,
           lead: Mapping[Key, Key], by_service: Mapping[str, Suspect], logs: LogWindow | None):
    """The trace walk's opinion of one anomaly: (blame per key over all its traces, blame per key in
    each trace, the services its traces reach). An anomaly that brings its evidence blames its lead."""
    blame: dict[Key, float] = defaultdict(float)
    trace_blame: dict[str, dict[Key, float]] = defaultdict(lambda: defaultdict(float))
    related = {anomaly.service}
    for span in spans:
        tree = trees.get(span.trace_id) or TraceTree([span])
        related |= _below(span, tree)
        if anomaly.evidence:  # it says where the time went: log lines elsewhere in the trace do not move it
            keys = {lead[anomaly.key]: 1.0}
        else:
            keys = blamer.culprits(span, tree)
            keys = logrca.walk(keys, span, tree, logs) if logs is not None else keys
        for key, w in keys.items():
            key = by_service[key[0]].root_for(key, anomaly.key) if key[0] in by_service else key
            blame[key] += w
            trace_blame[span.trace_id][key] += w
    _fold_unnamed(blame, trace_blame, blamer.baselines)
    if not blame:
        blame[anomaly.key] = 1.0
    return blame, trace_blame, related


def _fold_unnamed(blame: dict[Key, float], trace_blame: Mapping[str, dict[Key, float]],
                  named: Mapping[Key, object]) -> None:
    """Blame on a callee named only by its caller's CLIENT span (its own span not stored yet in that
    trace: an operation name none of its endpoints has) joins the endpoint of that service the other
    traces blame: one callee, not two candidates that split its share (and lose to the caller)."""
    for key in [k for k in blame if k not in named and k[1] != WHOLE_SERVICE]:
        known = [k for k in blame if k[0] == key[0] and k in named]
        if known:
            into = max(known, key=lambda k: (blame[k], k))
            blame[into] += blame.pop(key)
            for per in trace_blame.values():
                if key in per:
                    per[into] += per.pop(key)


def _opinion(anomaly: Anomaly, blame: Mapping[Key, float], related: set[str],
             by_service: Mapping[str, Suspect], logs: LogWindow | None, log_keys,
             metrics: Mapping[str, MetricSuspect] | None = None) -> dict[Key, float]:
    """The walk's blame blended with the evidence ranking's (trusted by anomaly type), then with the
    logs' and the metrics' (when they say anything): weights per key."""
    evidence = _evidence(related, by_service, blame, anomaly.key)
    trust = EVIDENCE_TRUST.get(anomaly.type, 0.5) if evidence else 0.0
    traces: dict[Key, float] = defaultdict(float)
    for key, w in _normalised(evidence).items():
        traces[key] += trust * w
    for key, w in _normalised(blame).items():
        traces[key] += (1 - trust) * w
    from_logs = logrca.evidence(related, logs, log_keys, traces)
    opinion = logrca.blend(traces, from_logs, logs_only=anomaly.message.startswith(logrca.LOG_MESSAGE))
    resources = metricrca.evidence(related, metrics, opinion)
    if not resources:
        return opinion  # the arithmetic without metrics, exactly
    metric_trust = metricrca.trust(metrics, resources)
    blended: dict[Key, float] = defaultdict(float)
    for key, w in opinion.items():
        blended[key] += (1 - metric_trust) * w
    for key, w in _normalised(resources).items():
        blended[key] += metric_trust * w
    return blended


def _finish(group: Group, weights: Mapping[Key, float], examples: Mapping[str, float],
            suspect: Suspect | None, trees: Mapping[str, TraceTree], logs: LogWindow | None) -> None:
    """A group's ranked candidates, its anomalies in order, its example trace and its propagation
    path (with the log lines that support each hop)."""
    root = group.root
    group.candidates = sorted(
        ((k, round(w, 4)) for k, w in _normalised(weights).items()),
        key=lambda kv: (-kv[1], kv[0] != root, kv[0]),
    )
    # The root's own anomalies first: they describe the cause.
    group.anomalies.sort(key=lambda a: (a.key != root, a.endpoint, a.type))
    if examples:
        group.example_trace = max(examples.items(), key=lambda kv: kv[1])[0]
    group.path = propagation_path(group, suspect, trees.get(group.example_trace or ""))
    if logs is not None:
        _with_log_lines(group, logs)


def _hop(service: str, endpoint: str, signal: str, observed: float, baseline: float | None,
         onset: float | None, detail: str) -> dict:
    deviation = observed / baseline if baseline else None
    return {"service": service, "endpoint": endpoint or None, "signal": signal,
            "observed_ms": round(observed, 2),
            "baseline_ms": None if baseline is None else round(baseline, 2),
            "deviation": None if deviation is None else round(deviation, 2),
            "onset": onset, "detail": detail}


def _depths(tree: TraceTree | None) -> dict[Key, int]:
    """How deep each endpoint first sits in the example trace (its root span is 0)."""
    if tree is None:
        return {}
    depths: dict[Key, int] = {}
    todo = [(s, 0) for s in tree.children.get(None, [])] or [(s, 0) for s in tree.spans[:1]]
    while todo:
        span, depth = todo.pop(0)
        depths.setdefault((span.service, span.endpoint), depth)
        if span.kind == KIND_CLIENT and span.peer:
            depths.setdefault(span_key(span), depth + 1)
        todo.extend((c, depth + 1) for c in tree.children.get(span.span_id, ()) if depth < 64)
    return depths


def propagation_path(group: Group, suspect: Suspect | None, tree: TraceTree | None) -> list[dict]:
    """The hops from the root cause to its symptoms, each with its deviation and onset, in time order.

    The root's own evidence comes first (its self time, the calls into it);
    then each symptom, ordered by when it began and, within the same second,
    from the deepest call (nearest the root) to the entry point.
    """
    hops: list[dict] = []
    if suspect is not None:
        for sig in sorted(suspect.signals, key=lambda s: -s.score):
            sh = sig.shift
            signal = {"self": "self-time", "network-in": "network", "network-out": "network-out"}[sig.kind]
            hops.append(_hop(sig.service, sig.endpoint, signal, sh.observed_ms, sh.baseline_ms,
                             sh.onset, sig.describe()))
    seen = {(h["service"], h["endpoint"]) for h in hops}
    depths = _depths(tree)
    symptoms = []
    for a in group.anomalies:
        if (a.service, a.endpoint) in seen and a.key != group.root:
            continue
        if a.key == group.root and hops:
            continue  # the root's evidence already says it
        seen.add(a.key)
        timed = a.type in ("latency", "degradation")  # observed and baseline are durations
        symptoms.append(_hop(a.service, a.endpoint, a.type, a.observed if timed else 0.0,
                             a.baseline if timed else None, a.onset, a.message))
    root = group.root
    # The root's own anomaly leads (it is the root's evidence when no suspect says more); then the
    # symptoms by onset second and, within one, deepest first.
    symptoms.sort(key=lambda h: ((h["service"], h["endpoint"]) != root, int(h["onset"] or 0),
                                 -depths.get((h["service"], h["endpoint"]), 0)))
    return hops + symptoms


def _with_log_lines(group: Group, logs: LogWindow) -> None:
    """Each hop carries the log lines that support it (bounded), the root's hop the templates that
    appeared or surged there. A root whose logs changed and whose path does not start at it gets a
    hop saying so first."""
    service = group.root[0]
    suspect = logs.suspects.get(service)
    if suspect is not None and (not group.path or group.path[0]["service"] != service):
        lead = suspect.lead
        group.path.insert(0, _hop(service, group.root[1], "logs", 0.0, None, suspect.onset, lead.describe()))
    for hop in group.path:
        hop["log_lines"] = logrca.hop_lines(hop["service"], group.example_trace, logs)
        hop["templates"] = logrca.templates(hop["service"], logs) if hop["service"] == service else []
