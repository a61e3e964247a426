"""Which pod of a service the evidence points at. Pure logic.

Why: a service often runs several pods, and a fault is often in one of them
(a noisy neighbour on its node, a bad rollout, a pod's network). The service
stays the ranked unit (its pods share its baselines); a candidate is given a
pod only when the spans that show the fault come, far more than its traffic
does, from one pod, as Nezha's fine-grained root causes name the instance.

A span's pod is its resource's ``k8s.pod.name``, else ``service.instance.id``,
else ``host.name``: read from the span's ``pod`` when the row has one, else
from its ``attributes`` (a mapping or its JSON text). Spans without either
name no pod, and then nothing is named.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

from telemetry.attributes import decode
from telemetry.columns import KIND_CLIENT, KIND_SERVER

POD_ATTRIBUTES = ("k8s.pod.name", "service.instance.id", "host.name")
MAX_POD = 200  # characters of a pod name kept (it comes from outside)
MIN_SPANS = 3  # evidence spans with a pod needed to name one
MIN_SHARE = 0.8  # the pod's share of them
# ... and this much above its share of the traffic (a pod serving nearly all of it proves nothing)
MIN_LIFT = 0.25
MAX_TRAFFIC = 5000  # spans of a service read for its traffic's pods


def pod_of(span) -> str | None:
    """The pod (or instance, or host) that ran ``span``, when its row says."""
    pod = getattr(span, "pod", None)
    if not pod:
        attrs = getattr(span, "attributes", None)
        if isinstance(attrs, str):
            attrs = decode(attrs)  # the column's text
        if not isinstance(attrs, Mapping):
            return None
        pod = next((attrs[k] for k in POD_ATTRIBUTES if isinstance(attrs.get(k), str) and attrs[k]), None)
    return pod[:MAX_POD] if isinstance(pod, str) and pod else None


def _callee_spans(span, children: Mapping[tuple, list]) -> list:
    """The SERVER spans that answered a CLIENT span (where the callee's pod is written)."""
    return [c for c in children.get((span.trace_id, span.span_id), ()) if c.kind == KIND_SERVER]


def evidence_pods(service: str, spans: Iterable, children: Mapping[tuple, list]) -> Counter:
    """Pods of ``service`` among the spans that show a fault: its own spans, and the callee spans
    under calls into it (a network fault shows on the caller's CLIENT span)."""
    found: Counter = Counter()
    seen: set[tuple] = set()
    for span in spans:
        ran = [span] if span.service == service else []
        if span.kind == KIND_CLIENT and span.service != service:
            ran = [c for c in _callee_spans(span, children) if c.service == service]
        for s in ran:
            if (s.trace_id, s.span_id) not in seen:
                seen.add((s.trace_id, s.span_id))
                pod = pod_of(s)
                if pod:
                    found[pod] += 1
    return found


def traffic_pods(service: str, window: Iterable) -> Counter:
    """Pods of ``service``'s SERVER spans in the window (at most ``MAX_TRAFFIC`` read)."""
    found: Counter = Counter()
    read = 0
    for span in window:
        if span.service == service and span.kind == KIND_SERVER:
            read += 1
            pod = pod_of(span)
            if pod:
                found[pod] += 1
            if read >= MAX_TRAFFIC:
                break
    return found


def blamed_pod(evidence: Counter, traffic: Counter) -> str | None:
    """The pod the evidence points at: several pods serve, and one holds most of the evidence, well
    above its share of the traffic."""
    total, served = sum(evidence.values()), sum(traffic.values())
    if len(traffic) < 2 or total < MIN_SPANS or not served:
        return None
    pod, count = min(evidence.items(), key=lambda kv: (-kv[1], kv[0]))
    share = count / total
    return pod if share >= MIN_SHARE and share >= traffic[pod] / served + MIN_LIFT else None


def any_pod(window: list, sample: int = 1000) -> bool:
    """Whether the window's spans name pods at all (a sample of them): else there is nothing to look
    for, and nothing is computed."""
    step = max(1, len(window) // sample)
    return any(pod_of(window[i]) for i in range(0, len(window), step))


def children_of(spans: Iterable) -> dict[tuple, list]:
    """Spans by (trace id, parent span id)."""
    found: dict[tuple, list] = defaultdict(list)
    for s in {(s.trace_id, s.span_id): s for s in spans}.values():
        if s.parent_span_id:
            found[(s.trace_id, s.parent_span_id)].append(s)
    return found


def name_pods(
    services: Iterable[str], shown: Iterable, window: list, children: Mapping[tuple, list]
) -> dict[str, str]:
    """Per service among ``services``, the pod its evidence (``shown``: the spans that show the
    group's fault; ``children``: their traces' spans by parent) points at, where it points at one."""
    shown = list(shown)
    named = {}
    for service in dict.fromkeys(services):
        evidence = evidence_pods(service, shown, children)
        if evidence:
            pod = blamed_pod(evidence, traffic_pods(service, window))
            if pod:
                named[service] = pod
    return named
