"""Running a parsed query over the span rows of one trace. Pure: rows in, rows out.

A span row (:data:`telemetry.store.SpanRow`, or anything with the same attributes) keeps the
columns the product needs, not every OTLP attribute, so the fields a query can read are these:

- intrinsics: ``name`` (the endpoint column), ``status``, ``duration``, ``kind``, ``span:id``,
  ``span:parentID``, ``trace:id``, ``trace:duration``, ``trace:rootName``, ``trace:rootService``;
- ``resource.service.name`` (the service);
- span attributes kept by ingest: ``http.request.method`` / ``http.method``,
  ``http.response.status_code`` / ``http.status_code``, ``http.route`` (of SERVER spans: from the
  endpoint, which ingest builds from it), ``peer.service`` (of CLIENT spans: the callee the store
  kept);
- ``event.exception.type`` and ``event.exception.message`` (the last exception of a failed span).

Any other attribute is missing (``nil``): ``= nil`` holds, every other comparison fails. The store
keeps whether a span failed, not OK apart from UNSET, so ``status = ok`` and ``status = unset``
both hold for every span that did not fail.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from telemetry.columns import KIND_SERVER
from telemetry.traceql import nodes
from telemetry.traceql.nodes import Comparison, Duration, Field, Kind, Status

KIND_NAMES = ("unspecified", "internal", "server", "client", "producer", "consumer")
_METHOD_ROUTE = re.compile(r"[A-Z]+ (/.*)")


@dataclass(frozen=True)
class TraceFacts:
    """What the ``trace:`` intrinsics read: the same for every span of the trace."""

    trace_id: str
    root: object | None  # the span without a parent (None until it arrived)
    start_time: float  # seconds, the earliest span's start
    duration_ms: float  # max(end) - min(start)


def trace_facts(spans: Sequence) -> TraceFacts:
    """The facts of one trace's spans (at least one)."""
    roots = [s for s in spans if not s.parent_span_id]
    start = min(s.start_time for s in spans)
    end = max(s.start_time + s.duration_ms / 1000.0 for s in spans)
    root = min(roots, key=lambda s: s.start_time) if roots else None
    return TraceFacts(spans[0].trace_id, root, start, max(0.0, (end - start) * 1000.0))


def route_of(span) -> str | None:
    """``http.route`` of a SERVER span: ingest named it ``"<METHOD> <route>"`` or ``<route>``, and the
    recorders store the route without its leading ``/`` (``/checkout`` -> ``checkout``)."""
    if span.kind != KIND_SERVER:
        return None
    endpoint = span.endpoint
    found = _METHOD_ROUTE.fullmatch(endpoint)
    if found:
        return found.group(1)
    if endpoint.startswith("/"):
        return endpoint
    return "/" + endpoint if span.method and " " not in endpoint else None


def kind_name(span) -> str:
    """The span's kind as TraceQL names it (``unspecified`` for a value OTLP does not define)."""
    return KIND_NAMES[span.kind] if 0 <= span.kind < len(KIND_NAMES) else "unspecified"


_Reader = Callable[[object], object]
SPAN_ATTRIBUTES: dict[str, _Reader] = {
    "http.request.method": lambda s: s.method,
    "http.method": lambda s: s.method,
    "http.response.status_code": lambda s: s.status_code,
    "http.status_code": lambda s: s.status_code,
    "http.route": route_of,
    "peer.service": lambda s: s.peer,
}
RESOURCE_ATTRIBUTES: dict[str, _Reader] = {"service.name": lambda s: s.service}
EVENT_ATTRIBUTES: dict[str, _Reader] = {
    "exception.type": lambda s: s.exception_type if s.error else None,
    "exception.message": lambda s: s.exception_message if s.error else None,
}
_INTRINSICS: dict[str, Callable[[object, TraceFacts], object]] = {
    "name": lambda s, t: s.endpoint,
    "status": lambda s, t: "error" if s.error else "unset",
    "duration": lambda s, t: s.duration_ms,
    "kind": lambda s, t: kind_name(s),
    "span:id": lambda s, t: s.span_id,
    "span:parentID": lambda s, t: s.parent_span_id,
    "trace:id": lambda s, t: t.trace_id,
    "trace:duration": lambda s, t: t.duration_ms,
    "trace:rootName": lambda s, t: t.root.endpoint if t.root is not None else None,
    "trace:rootService": lambda s, t: t.root.service if t.root is not None else None,
}


def field_value(field: Field, span, facts: TraceFacts):
    """The value of ``field`` on ``span`` (None when the span does not have it)."""
    if field.intrinsic:
        return _INTRINSICS[field.name](span, facts)
    if field.scope == "event":
        reader = EVENT_ATTRIBUTES.get(field.name)
        return reader(span) if reader else None
    if field.scope in ("span", ""):
        reader = SPAN_ATTRIBUTES.get(field.name)
        value = reader(span) if reader else None
        if value is not None or field.scope == "span":
            return value
    reader = RESOURCE_ATTRIBUTES.get(field.name)
    return reader(span) if reader else None


def _ordered(op: str, actual, expected) -> bool:
    if op == "=":
        return actual == expected
    if op == "!=":
        return actual != expected
    if op == ">":
        return actual > expected
    if op == ">=":
        return actual >= expected
    if op == "<":
        return actual < expected
    return actual <= expected  # "<="


def compare(op: str, actual, expected) -> bool:
    """Whether ``actual <op> expected`` holds, TraceQL's way: ``nil`` tests presence, a missing value
    or one of another type never compares, a regex must match the whole value."""
    if expected is nodes.NIL:
        return (actual is None) == (op == "=")
    if actual is None:
        return False
    if isinstance(expected, Status):
        failed = actual == "error"
        wanted = failed if expected.value == "error" else not failed
        return wanted if op == "=" else not wanted
    if isinstance(expected, Kind):
        return (actual == expected.value) == (op == "=")
    if isinstance(expected, re.Pattern):
        if not isinstance(actual, str):
            return False
        return (expected.fullmatch(actual) is not None) == (op == "=~")
    if isinstance(expected, Duration):
        return _ordered(op, actual, expected.ms)
    if isinstance(expected, bool) or isinstance(actual, bool):
        same_type = isinstance(expected, bool) and isinstance(actual, bool)
        return same_type and op in ("=", "!=") and _ordered(op, actual, expected)
    if isinstance(expected, str) != isinstance(actual, str):
        return False
    return _ordered(op, actual, expected)


def holds(condition: nodes.Condition, span, facts: TraceFacts) -> bool:
    """Whether a ``{ }`` filter's condition holds for one span."""
    if isinstance(condition, Comparison):
        return compare(condition.op, field_value(condition.field, span, facts), condition.value)
    if isinstance(condition, nodes.And):
        return holds(condition.left, span, facts) and holds(condition.right, span, facts)
    if isinstance(condition, nodes.Or):
        return holds(condition.left, span, facts) or holds(condition.right, span, facts)
    return True  # Always


def _union(left: list, right: list) -> list:
    seen = {id(s) for s in left}
    return left + [s for s in right if id(s) not in seen]


def _matched(query: nodes.Query, spans: Sequence, facts: TraceFacts) -> list:
    if isinstance(query, nodes.Spanset):
        return [s for s in spans if holds(query.condition, s, facts)]
    left = _matched(query.left, spans, facts)
    if isinstance(query, nodes.Both) and not left:
        return []
    right = _matched(query.right, spans, facts)
    if isinstance(query, nodes.Both) and not right:
        return []
    return _union(left, right)


def matching_spans(query: nodes.Query, spans: Sequence, facts: TraceFacts | None = None) -> list:
    """The spans of one trace the query selects, in the order given; empty when the trace does not
    match."""
    if not spans:
        return []
    return _matched(query, spans, facts or trace_facts(spans))


def fields_of(query: nodes.Query) -> list[Field]:
    """The fields the query compares, in order, each once (what a search result shows per span)."""
    found: list[Field] = []

    def walk(node) -> None:
        if isinstance(node, Comparison):
            if node.field not in found:
                found.append(node.field)
        elif isinstance(node, nodes.Spanset):
            walk(node.condition)
        elif not isinstance(node, nodes.Always):
            walk(node.left)
            walk(node.right)

    walk(query)
    return found


def required(query: nodes.Query) -> list[Comparison]:
    """Comparisons some span of every matching trace satisfies: the ``&&`` terms at the top of the
    first spanset. A store may use them to narrow its candidates before it runs the query exactly."""
    while isinstance(query, nodes.Both):
        query = query.left
    if not isinstance(query, nodes.Spanset):
        return []
    terms, stack = [], [query.condition]
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.And):
            stack += [node.right, node.left]
        elif isinstance(node, Comparison):
            terms.append(node)
    return terms
