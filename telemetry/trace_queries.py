"""TraceQL search over the span table: candidate traces in SQL, the query itself in Python.

A search reads the traces that have a span starting in ``[start, end]``, newest first, at most
:data:`MAX_INSPECTED` of them, and narrows them in SQL by what every match needs (the ``&&`` terms
of the first spanset that map to a column: service, name, status, kind, duration, HTTP method and
status code, :func:`telemetry.traceql.required`). It then loads those traces whole, a hundred at a
time, and runs the query over each (:func:`telemetry.traceql.matching_spans`) until ``limit``
traces matched. So its cost is bounded by the time range, the candidates and the limit, never by
the whole table.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, not_, select

from telemetry import traceql
from telemetry.db import db
from telemetry.models import Span
from telemetry.store import SpanRow, trace_spans
from telemetry.traceql.evaluate import KIND_NAMES, TraceFacts
from telemetry.traceql.nodes import Comparison, Duration, Kind, Status

MAX_INSPECTED = 2_000  # candidate traces a search looks at, at most
_CHUNK = 100  # traces loaded at a time


@dataclass(frozen=True)
class Found:
    """One trace that matched: its facts, all its spans, and those the query selected."""

    facts: TraceFacts
    spans: list[SpanRow]
    matched: list[SpanRow]


@dataclass(frozen=True)
class SearchResult:
    found: list[Found]
    inspected_traces: int
    inspected_spans: int


def _compare(column, op: str, value):
    return {"=": column == value, "!=": column != value, ">": column > value, ">=": column >= value,
            "<": column < value, "<=": column <= value}[op]


def _small_int(value) -> bool:
    """An int the 32-bit column can be compared with in SQL (the driver casts the parameter to the
    column's type: a float would be rounded, a larger int refused)."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31


def _column_filter(term: Comparison):
    """The SQL condition a span satisfying ``term`` satisfies too, or None (not a column, or a regex)."""
    field, op, value = term.field, term.op, term.value
    if op in ("=~", "!~") or value is None:
        return None
    if isinstance(value, Status):
        failed = value.value == "error"
        return Span.error if failed == (op == "=") else not_(Span.error)
    if isinstance(value, Kind):
        return _compare(Span.kind, op, KIND_NAMES.index(value.value))
    if isinstance(value, Duration):
        return _compare(Span.duration_ms, op, value.ms) if field.name == "duration" else None
    equality = op in ("=", "!=") and isinstance(value, str)
    if field.intrinsic:
        return _compare(Span.endpoint, op, value) if field.name == "name" and equality else None
    if field.scope in ("resource", "") and field.name == "service.name" and equality:
        return _compare(Span.service, op, value)
    if field.scope not in ("span", ""):
        return None
    if field.name in ("http.status_code", "http.response.status_code") and _small_int(value):
        return _compare(Span.status_code, op, value)
    if field.name in ("http.method", "http.request.method") and equality:
        return _compare(Span.method, op, value)
    return None


def candidate_traces(query, start: float, end: float, most: int = MAX_INSPECTED) -> list[str]:
    """Trace ids with a span in ``[start, end]`` that could match ``query``, newest span first."""
    newest = func.max(Span.start_time)
    stmt = (select(Span.trace_id, newest).where(Span.start_time >= start, Span.start_time <= end)
            .group_by(Span.trace_id).order_by(newest.desc(), Span.trace_id).limit(most))
    for term in traceql.required(query):
        condition = _column_filter(term)
        if condition is not None:
            stmt = stmt.where(condition)
    return [row[0] for row in db.session.execute(stmt)]


def search(query, start: float, end: float, limit: int) -> SearchResult:
    """Up to ``limit`` traces matching ``query`` with a span in ``[start, end]``, newest first."""
    ids = candidate_traces(query, start, end)
    found: list[Found] = []
    inspected = spans_read = 0
    for at in range(0, len(ids), _CHUNK):
        chunk = ids[at: at + _CHUNK]
        loaded = trace_spans(chunk)
        for trace_id in chunk:
            spans = sorted(loaded[trace_id], key=lambda s: (s.start_time, s.span_id))
            inspected += 1
            spans_read += len(spans)
            if not spans:
                continue  # pruned since the candidates were read
            facts = traceql.trace_facts(spans)
            matched = traceql.matching_spans(query, spans, facts)
            if matched:
                found.append(Found(facts, spans, matched))
                if len(found) >= limit:
                    return SearchResult(found, inspected, spans_read)
    return SearchResult(found, inspected, spans_read)


def trace(trace_id: str) -> list[SpanRow]:
    """Every stored span of one trace, earliest first (empty when none is stored)."""
    return sorted(trace_spans([trace_id])[trace_id], key=lambda s: (s.start_time, s.span_id))
