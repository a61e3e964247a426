"""The service map: which service calls which, how often, how often it fails and how slowly. Pure
logic: spans in (with weights, :mod:`telemetry.span_sample`), nodes and edges out.

- A **node** is a service, its requests the spans that *enter* it: SERVER and CONSUMER spans, and
  any other span but a CLIENT or PRODUCER one whose parent is not in its service (a root span, a
  cron job). A system with a single service (the demo) gets its *endpoints* as nodes instead, so
  its map still says something.
- An **edge** caller -> callee is a call (:func:`aiops.detection.edges.calls`: a CLIENT span and
  the SERVER span under it, paired once for detection and the map), or a SERVER (or CONSUMER) span
  whose parent, not a CLIENT span, lies in another node. Its p95 is the callers' view (the CLIENT
  spans' durations) when there is one. Calls inside one node are not edges.
- A CLIENT span that no instrumented callee answered, naming its peer (the ``peer`` column:
  ``peer.service``, else a database's ``db.system:db.name@host``, else ``server.address``, else
  ``net.peer.name``: :mod:`telemetry.otlp.spans`),
  calls an **external** node of that name, unless other calls of the same caller to the same peer
  reached an instrumented service: then its callee span is just not in the sample (it hung, or
  was cut off at a slice's edge) and the call counts for that service.
- A node's **status** (:func:`mark`): ``incident`` (the root cause of an active incident),
  ``degraded`` (error share above the error threshold, or on an active incident's path),
  ``idle`` (no requests in the range), else ``ok``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from aiops.detection.edges import calls
from aiops.detection.selftime import SpanIndex
from telemetry.columns import KIND_CLIENT, KIND_CONSUMER, KIND_PRODUCER, KIND_SERVER

STATUSES = ("incident", "degraded", "ok", "idle")
MAX_NODE_ENDPOINTS = 20  # a service node lists its busiest endpoints, at most
EXTERNAL_SUFFIX = " (external)"  # an external peer named like an instrumented node


@dataclass
class Tally:
    """Weighted calls, errors and durations of one node, edge or endpoint."""

    weight: float = 0.0
    errors: float = 0.0
    durations: list[tuple[float, float]] = field(default_factory=list)  # (ms, weight)

    def add(self, duration_ms: float, error: bool, weight: float) -> None:
        self.weight += weight
        self.errors += weight if error else 0.0
        self.durations.append((duration_ms, weight))

    def stats(self, seconds: float) -> dict:
        return {
            "calls": round(self.weight),
            "calls_per_s": round(self.weight / seconds, 3) if seconds > 0 else 0.0,
            "error_rate": round(self.errors / self.weight, 4) if self.weight else 0.0,
            "p95_ms": None if not self.durations else round(quantile(self.durations, 0.95), 1),
        }


def quantile(values: Iterable[tuple[float, float]], q: float) -> float:
    """The weighted nearest-rank quantile of (value, weight) pairs (all weights 1: the usual one)."""
    ordered = sorted(values)
    target = q * sum(w for _, w in ordered)
    seen = 0.0
    for value, w in ordered:
        seen += w
        if seen >= target - 1e-9:
            return value
    return ordered[-1][0]


@dataclass(frozen=True)
class IncidentMark:
    """What the map needs of an active incident: its root and the (service, endpoint)s on its path."""

    id: str
    root_service: str
    root_endpoint: str  # "" for a whole-service root
    touched: frozenset[tuple[str, str]]


def _is_entry(span, parent) -> bool:
    if span.kind in (KIND_SERVER, KIND_CONSUMER):
        return True
    own_parent = parent is not None and parent.service == span.service
    return span.kind not in (KIND_CLIENT, KIND_PRODUCER) and not own_parent


class _Builder:
    def __init__(self, spans: Sequence, weights: Sequence[float] | None, by_endpoint: bool):
        self.index = SpanIndex(spans)
        # By object identity: the spans outlive the builder, and no key is built per lookup.
        self.weights = {id(s): w for s, w in zip(spans, weights or [1.0] * len(spans), strict=True)}
        self.by_endpoint = by_endpoint
        self.nodes: dict[str, dict] = {}  # id -> {"service", "endpoint", "external"}
        self.tallies: dict[str, Tally] = defaultdict(Tally)
        self.endpoints: dict[str, dict[str, Tally]] = defaultdict(lambda: defaultdict(Tally))
        self.edges: dict[tuple[str, str], Tally] = defaultdict(Tally)

    def weight(self, span) -> float:
        return self.weights[id(span)]

    def node(self, service: str, endpoint: str) -> str:
        ident = endpoint if self.by_endpoint else service
        if ident not in self.nodes:
            self.nodes[ident] = {"service": service, "endpoint": endpoint if self.by_endpoint else None,
                                 "external": False}
        return ident

    def caller(self, span) -> str:
        """The node a span's call leaves from: its service, or the endpoint it ran under."""
        return self.node(*self.index.entry(span)) if self.by_endpoint else self.node(span.service, "")

    def requests(self) -> None:
        for span in self.index.spans:
            parent = self.index.by_id.get((span.trace_id, span.parent_span_id or ""))
            if _is_entry(span, parent):
                ident = self.node(span.service, span.endpoint)
                for tally in (self.tallies[ident], self.endpoints[ident][span.endpoint]):
                    tally.add(span.duration_ms, bool(span.error), self.weight(span))
            remote_parent = parent is not None and parent.kind != KIND_CLIENT
            if span.kind in (KIND_SERVER, KIND_CONSUMER) and remote_parent:
                self.edge(self.caller(parent), self.node(span.service, span.endpoint), span, span.error)

    def edge(self, caller: str, callee: str, span, error: bool) -> None:
        if caller != callee:
            self.edges[(caller, callee)].add(span.duration_ms, bool(error), self.weight(span))

    def calls(self) -> None:
        found = calls(self.index)
        reached: dict[tuple, Counter] = defaultdict(Counter)  # (caller service, peer, op) -> callee nodes
        unanswered = []
        for call in found:
            if call.callee_span is None:
                unanswered.append(call)
                continue
            callee = self.node(call.callee, call.callee_span.endpoint)
            if call.span.peer:
                reached[self._peer_key(call.span)][callee] += 1
            self.edge(self.caller(call.span), callee, call.span, call.span.error or call.callee_span.error)
        for call in unanswered:
            known = reached.get(self._peer_key(call.span))
            callee = known.most_common(1)[0][0] if known else self.external(call.callee)
            self.edge(self.caller(call.span), callee, call.span, call.span.error)

    def _peer_key(self, span) -> tuple:
        return (span.service, span.peer, span.endpoint if self.by_endpoint else "")

    def external(self, peer: str) -> str:
        ident = peer
        if ident in self.nodes and not self.nodes[ident]["external"]:
            ident = peer + EXTERNAL_SUFFIX
        self.nodes.setdefault(ident, {"service": peer, "endpoint": None, "external": True})
        return ident

    def result(self, seconds: float) -> tuple[list[dict], list[dict]]:
        incoming: dict[str, Tally] = defaultdict(Tally)
        for (_, callee), tally in self.edges.items():
            if self.nodes[callee]["external"]:  # an external peer's requests: the calls into it
                incoming[callee].weight += tally.weight
                incoming[callee].errors += tally.errors
                incoming[callee].durations += tally.durations
        nodes = []
        for ident, info in sorted(self.nodes.items()):
            tally = incoming[ident] if info["external"] else self.tallies[ident]
            node = {"id": ident, **info, **tally.stats(seconds)}
            if not self.by_endpoint and not info["external"]:
                busiest = sorted(self.endpoints[ident].items(), key=lambda kv: (-kv[1].weight, kv[0]))
                node["endpoints"] = [{"endpoint": name, **t.stats(seconds)}
                                     for name, t in busiest[:MAX_NODE_ENDPOINTS]]
            nodes.append(node)
        edges = [{"caller": caller, "callee": callee,
                  "caller_service": self.nodes[caller]["service"],
                  "callee_service": self.nodes[callee]["service"], **tally.stats(seconds),
                  "traces": self.traces(caller, callee)}
                 for (caller, callee), tally in sorted(self.edges.items())]
        return nodes, edges

    def traces(self, caller: str, callee: str) -> dict:
        """The trace search (``/aiops/traces`` filters) that finds an edge's calls: the callee's spans,
        or the caller's when the callee is external (it has none)."""
        node = self.nodes[caller if self.nodes[callee]["external"] else callee]
        return {"service": node["service"], "endpoint": node["endpoint"]}


def build(spans: Sequence, seconds: float, weights: Sequence[float] | None = None,
          ignore_services: Iterable[str] = ()) -> dict:
    """The map of ``spans`` (covering ``seconds``; ``weights``: what each span stands for, default 1):
    ``{"by": "service"|"endpoint", "nodes": [...], "edges": [...]}``, nodes by id, edges by
    (caller, callee). Statuses are not set here (:func:`mark` does, from the incidents)."""
    ignored = set(ignore_services)
    if ignored:
        kept = [i for i, s in enumerate(spans) if s.service not in ignored]
        spans = [spans[i] for i in kept]
        weights = None if weights is None else [weights[i] for i in kept]
    by_endpoint = len({s.service for s in spans}) == 1
    builder = _Builder(spans, weights, by_endpoint)
    builder.requests()
    builder.calls()
    nodes, edges = builder.result(seconds)
    return {"by": "endpoint" if by_endpoint else "service", "nodes": nodes, "edges": edges}


def _roots_and_path(node: dict, incidents: list[IncidentMark], by_endpoint: bool) -> tuple[list, list]:
    """The active incidents a node is the root of, and those whose path it is on (the others)."""
    service, endpoint = node["service"], node["endpoint"] or ""
    exact = by_endpoint and not node["external"]  # an external peer is blamed as a whole
    roots = [i.id for i in incidents
             if i.root_service == service and (not exact or i.root_endpoint in ("", endpoint))]
    path = [i.id for i in incidents if i.id not in roots
            and any(s == service and (not exact or e == endpoint) for s, e in i.touched)]
    return roots, path


def mark(graph: dict, incidents: Iterable[IncidentMark], error_threshold: float) -> dict:
    """Set every node's ``status``, ``root`` (the root cause of an active incident) and ``incidents``
    (the ids of the active incidents it is the root of or on the path of), root causes first."""
    incidents = list(incidents)
    for node in graph["nodes"]:
        roots, path = _roots_and_path(node, incidents, graph["by"] == "endpoint")
        node["root"] = bool(roots)
        node["incidents"] = roots + path
        if roots:
            node["status"] = "incident"
        elif path or node["error_rate"] > error_threshold:
            node["status"] = "degraded"
        elif not node["calls"]:
            node["status"] = "idle"
        else:
            node["status"] = "ok"
    return graph


def _nodes_of(graph: dict, service: str, endpoint: str) -> list[str]:
    """The node ids a (service, endpoint) of an incident is drawn as: its endpoint's node (all the
    service's endpoints for a whole-service one), its service's node, or the external peer of that name."""
    exact = graph["by"] == "endpoint" and endpoint
    own = [n["id"] for n in graph["nodes"] if not n["external"] and n["service"] == service
           and (not exact or n["endpoint"] == endpoint)]
    return own or [n["id"] for n in graph["nodes"] if n["external"] and n["service"] == service]


def path(graph: dict, incident_id: str, root: tuple[str, str], hops: Iterable,
         affected: Iterable[tuple[str, str]] = ()) -> dict:
    """An incident's propagation path on the map: ``root`` (the root cause's node, or None when the
    range does not show it), ``nodes`` (root first, then each hop's, in the path's order, then the
    ``affected`` (service, endpoint)s no hop named) and the ``edges`` between two of them, as
    ``[caller, callee]``: the calls the trouble travelled along."""
    roots = _nodes_of(graph, *root)
    on_path = dict.fromkeys(roots)
    named = [(hop["service"], hop.get("endpoint") or "") for hop in hops or ()
             if isinstance(hop, dict) and isinstance(hop.get("service"), str)]
    for service, endpoint in [*named, *affected]:
        on_path.update(dict.fromkeys(_nodes_of(graph, service, endpoint)))
    edges = [[e["caller"], e["callee"]] for e in graph["edges"]
             if e["caller"] in on_path and e["callee"] in on_path]
    return {"incident": incident_id, "root": roots[0] if roots else None, "nodes": list(on_path),
            "edges": edges}
