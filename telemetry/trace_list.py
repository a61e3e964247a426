"""Finding traces by plain filters (``GET /aiops/traces`` and the ``/traces`` page).

A trace matches when one of its spans, starting in ``[since, until]``, matches every filter. The
matching spans are found by the start-time index and grouped by trace; the list is newest first by
the trace's newest matching span, with keyset positions ``(that time, trace id)``, so each page is
one range scan however deep. A page's summaries (root, start, duration, span count, error) then
come from the trace-id index, a few statements for the whole page.

For TraceQL there is :mod:`telemetry.trace_queries`; this is the form a person fills in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import and_, case, func, or_, select, text

from telemetry import span_attrs
from telemetry.db import db
from telemetry.models import Span

MAX_ORPHAN_ROWS = 5_000  # spans read to find the earliest of traces whose root never arrived

Position = tuple[float, str]  # (newest matching span's start, trace id) of the last trace shown


@dataclass(frozen=True)
class TraceFilter:
    since: float
    until: float
    service: str | None = None
    endpoint: str | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    errors: bool = False
    trace_id: str | None = None  # that trace, whatever the time range
    attr: tuple[str, str] | None = None  # (key, value): the span's stored attribute has that value

    def conditions(self) -> list:
        """What one span must satisfy (the filters apply to the same span)."""
        if self.trace_id is not None:
            found = [Span.trace_id == self.trace_id]
        else:
            found = [Span.start_time >= self.since, Span.start_time <= self.until]
        for column, value in ((Span.service, self.service), (Span.endpoint, self.endpoint)):
            if value:
                found.append(column == value)
        if self.min_ms is not None:
            found.append(Span.duration_ms >= self.min_ms)
        if self.max_ms is not None:
            found.append(Span.duration_ms <= self.max_ms)
        if self.errors:
            found.append(Span.error)
        if self.attr is not None:
            dialect = db.engine.dialect.name
            key, value = span_attrs.attribute_params(dialect, *self.attr)
            found.append(text(span_attrs.attribute_filter(dialect, ":attr_key", ":attr_value"))
                         .bindparams(attr_key=key, attr_value=value))
        return found


@dataclass(frozen=True)
class TraceSummary:
    trace_id: str
    root_service: str
    root_endpoint: str
    start: float  # the trace's earliest span start (epoch seconds)
    duration_ms: float  # from its earliest start to its latest end
    spans: int
    error: bool
    newest: float  # its newest matching span's start (the list's order)


def _page(filters: TraceFilter, limit: int, after: Position | None) -> list[tuple[str, float]]:
    newest = func.max(Span.start_time)
    stmt = (select(Span.trace_id, newest).where(*filters.conditions()).group_by(Span.trace_id)
            .order_by(newest.desc(), Span.trace_id).limit(limit + 1))
    if after is not None:
        when, trace_id = after
        stmt = stmt.having(or_(newest < when, and_(newest == when, Span.trace_id > trace_id)))
    return [(row[0], row[1]) for row in db.session.execute(stmt)]


def _roots(ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """trace id -> (service, endpoint) of its root: the earliest span without a parent, else (the
    root never arrived) its earliest span."""
    roots: dict[str, tuple[float, str, str]] = {}
    rows = db.session.execute(select(Span.trace_id, Span.start_time, Span.service, Span.endpoint)
                              .where(Span.trace_id.in_(ids), Span.parent_span_id.is_(None)))
    for trace_id, start, service, endpoint in rows:
        if trace_id not in roots or start < roots[trace_id][0]:
            roots[trace_id] = (start, service, endpoint)
    orphans = [t for t in ids if t not in roots]
    if orphans:
        rows = db.session.execute(select(Span.trace_id, Span.start_time, Span.service, Span.endpoint)
                                  .where(Span.trace_id.in_(orphans)).order_by(Span.start_time)
                                  .limit(MAX_ORPHAN_ROWS))
        for trace_id, start, service, endpoint in rows:
            roots.setdefault(trace_id, (start, service, endpoint))
    return {t: (service, endpoint) for t, (_, service, endpoint) in roots.items()}


def summaries(ids: Sequence[str]) -> dict[str, TraceSummary]:
    """The summary of each stored trace among ``ids`` (a trace pruned meanwhile is left out)."""
    if not ids:
        return {}
    end = func.max(Span.start_time + Span.duration_ms / 1000.0)
    rows = db.session.execute(
        select(Span.trace_id, func.count(), func.min(Span.start_time), end,
               func.max(case((Span.error, 1), else_=0)))
        .where(Span.trace_id.in_(ids)).group_by(Span.trace_id))
    roots = _roots(ids)
    return {trace_id: TraceSummary(trace_id, *roots.get(trace_id, ("", "")), start,
                                   max(0.0, (finish - start) * 1000.0), count, bool(error), 0.0)
            for trace_id, count, start, finish, error in rows}


def list_traces(filters: TraceFilter, limit: int,
                after: Position | None = None) -> tuple[list[TraceSummary], Position | None]:
    """Up to ``limit`` matching traces, newest first, after ``after``; and the position to pass
    back for the next page (None: this was the last)."""
    page = _page(filters, limit, after)
    more = len(page) > limit
    page = page[:limit]
    found = summaries([trace_id for trace_id, _ in page])
    listed = [replace(found[trace_id], newest=newest) for trace_id, newest in page if trace_id in found]
    return listed, (page[-1][1], page[-1][0]) if more else None
