"""Self time: what a span spent itself, not waiting on its children. Pure logic.

Why: a CPU hog or slow code in one service makes every caller slower too, so
durations blame the whole call path; the extra *self* time sits only in the
service doing the work. Self time is judged per span against a per-endpoint
baseline of log self time (typical value and spread), so an endpoint seen a
handful of times per window still gives a verdict, and per-span verdicts are
counted per *entry* (the service's SERVER span that the work ran under): the
internal operations and outgoing calls of one service add up to one signal.

A CLIENT span whose callee reported, or that names its callee (``peer``),
is an *edge* (:mod:`aiops.detection.edges`): the time outside the callee's own span is
the network's, not the caller's. Only calls to unnamed, uninstrumented
dependencies count as the caller's own work here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from functools import cached_property

from aiops.detection.robust import LogBaseline, Rules, Shift, judge_all
from telemetry.columns import KIND_CLIENT, KIND_SERVER
from telemetry.rows import span_key

Key = tuple[str, str]  # (service, endpoint)
SpanRef = tuple[str, str]  # (trace_id, span_id)


def _covered_ms(start: float, end: float, children: Iterable) -> float:
    """Milliseconds of [start, end] covered by the children (overlaps counted once)."""
    spans = sorted(
        (max(start, c.start_time), min(end, c.start_time + c.duration_ms / 1000.0)) for c in children
    )
    covered, cur_a, cur_b = 0.0, None, None
    for a, b in spans:
        if b <= a:
            continue
        if cur_b is None or a > cur_b:
            if cur_b is not None:
                covered += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_b is not None:
        covered += cur_b - cur_a
    return covered * 1000.0


class SpanIndex:
    """Parent/child links of a set of spans (any number of traces).

    ``context`` spans (stored by earlier cycles) are linked but not judged: a
    callee's SERVER span often arrives a batch before its caller's CLIENT span.
    """

    def __init__(self, spans: Iterable, context: Iterable = ()):
        self.spans = list(spans)
        self.by_id: dict[SpanRef, object] = {}
        self.children: dict[SpanRef, list] = defaultdict(list)
        for s in (*context, *self.spans):
            if (s.trace_id, s.span_id) in self.by_id:
                continue
            self.by_id[(s.trace_id, s.span_id)] = s
            if s.parent_span_id:
                self.children[(s.trace_id, s.parent_span_id)].append(s)

    @cached_property
    def answered(self) -> set[Key]:
        """CLIENT operations (service, name) seen reaching an instrumented callee (for
        :func:`is_edge`; computed once, and only by the index that judges self time)."""
        return {
            span_key(self.by_id[ref]) for ref, kids in self.children.items()
            if ref in self.by_id and self.by_id[ref].kind == KIND_CLIENT
            and any(k.kind == KIND_SERVER for k in kids)
        }


    def self_ms(self, span) -> float:
        start = span.start_time
        kids = self.children.get((span.trace_id, span.span_id))
        if not kids:  # a leaf: all its time is its own
            return max(0.0, span.duration_ms)
        return max(0.0, span.duration_ms - _covered_ms(start, start + span.duration_ms / 1000.0, kids))

    def entry_span(self, span):
        """The nearest SERVER span of the same service at or above ``span`` (else the topmost one)."""
        current = span
        for _ in range(64):
            if current.kind == KIND_SERVER:
                return current
            parent = self.by_id.get((current.trace_id, current.parent_span_id or ""))
            if parent is None or parent.service != span.service:
                break
            current = parent
        return current

    def entry(self, span) -> Key:
        """The endpoint of :meth:`entry_span`: what the work ran under."""
        return span_key(self.entry_span(span))


def needs_context(spans: Iterable, since: float) -> list[str]:
    """Trace ids whose earlier-stored spans the window needs, linked as context: those of CLIENT
    spans with no SERVER child among ``spans`` (the callee's span may have landed first), and
    those of spans that began before ``since``, the last cycle: their children may have ended,
    and been stored, before it. Without them a long span's self time would count the children
    it waited for (a checkout that waited 150 ms on inventory, then 1.5 s on payment). The calls'
    traces come first: a cycle bounds how many it looks up."""
    spans = list(spans)
    called = {(s.trace_id, s.parent_span_id) for s in spans if s.kind == KIND_SERVER}
    calls = {s.trace_id for s in spans if s.kind == KIND_CLIENT and (s.trace_id, s.span_id) not in called}
    early = {s.trace_id for s in spans if s.start_time < since} - calls
    return sorted(calls) + sorted(early)


def is_edge(index: SpanIndex, span) -> bool:
    """A CLIENT span whose callee reported or is named: judged as an edge, not as own work.

    Also one whose callee has not reported *yet* while other calls of the same operation reached
    an instrumented callee: each service exports its spans in its own batches, so a callee's span
    often lands a cycle after its caller's. Counted as the caller's own work, a slow callee's
    whole call would make the caller look slow itself."""
    if span.kind != KIND_CLIENT:
        return False
    reported = index.children.get((span.trace_id, span.span_id))
    return bool(span.peer or reported) or span_key(span) in index.answered


def finished(span, now: float | None) -> bool:
    """A span still running at ``now`` may have children not seen yet: not judged."""
    return now is None or span.start_time + span.duration_ms / 1000.0 <= now


def shifts(
    index: SpanIndex,
    baselines: Mapping[tuple, LogBaseline],
    rules: Rules,
    now: float | None = None,
    ignore_services: Iterable[str] = (),
) -> tuple[dict[Key, Shift], dict[tuple, list[float]]]:
    """Judge every finished span's self time: (verdicts per entry, self times per series).

    Series are keyed ``("self", service, endpoint)``; verdicts by the entry the span ran under.
    """
    ignored = set(ignore_services)
    items = (
        (("self", *span_key(span)), index.entry(span), span, index.self_ms(span))
        for span in index.spans
        if span.service not in ignored and not span.error and finished(span, now)
        and not is_edge(index, span)
    )
    return judge_all(items, baselines, rules)


def durations(
    index: SpanIndex,
    baselines: Mapping[tuple, LogBaseline],
    rules: Rules,
    now: float | None = None,
    ignore_services: Iterable[str] = (),
) -> tuple[dict[Key, Shift], dict[tuple, list[float]]]:
    """Judge every finished SERVER span's whole duration, per endpoint (series ``("duration", ...)``)."""
    ignored = set(ignore_services)
    items = (
        (("duration", span.service, span.endpoint), (span.service, span.endpoint), span, span.duration_ms)
        for span in index.spans
        if span.kind == KIND_SERVER and span.service not in ignored and not span.error
        and finished(span, now)
    )
    return judge_all(items, baselines, rules)
