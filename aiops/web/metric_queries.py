"""Metric points as ``GET /aiops/metrics/points`` lists them: filters and pages in SQL.

Newest first (``time``, then ``id``), with the logs' keyset cursors, so a page is one indexed range
scan however deep it is. Every filter is checked before a query runs; a bad one is an
:class:`~aiops.web.incident_queries.InvalidInput` (a 400).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select

from aiops.web.incident_queries import text_filter
from aiops.web.log_queries import _page, iso_ms, parse_time
from telemetry.models import MetricPoint

DEFAULT_LIMIT, MAX_LIMIT = 100, 5000
MAX_CHARS = 255  # the columns' width
FILTERS = ("service", "pod", "host", "name")


@dataclass(frozen=True)
class MetricFilter:
    """Which points a list shows (None: any). ``name`` is exact, or a prefix ending in ``*``."""

    service: str | None = None
    pod: str | None = None
    host: str | None = None
    name: str | None = None
    since: float | None = None
    until: float | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> MetricFilter:
        since, until = args.get("from"), args.get("to")
        found = {f: text_filter(args, f, MAX_CHARS) or None for f in FILTERS}
        # 'from' after 'to' is an empty list, as /aiops/logs answers it
        return cls(
            **found,
            since=None if since is None else parse_time(since, "from"),
            until=None if until is None else parse_time(until, "to"),
        )

    def where(self) -> list:
        t = MetricPoint
        conditions = [getattr(t, f) == getattr(self, f) for f in FILTERS[:3] if getattr(self, f) is not None]
        if self.name is not None:
            if self.name.endswith("*"):
                conditions.append(t.name.startswith(self.name[:-1], autoescape=True))
            else:
                conditions.append(t.name == self.name)
        if self.since is not None:
            conditions.append(t.time >= self.since)
        if self.until is not None:
            conditions.append(t.time <= self.until)
        return conditions


def to_json(point: MetricPoint) -> dict:
    try:
        attributes = json.loads(point.attributes) if point.attributes else {}
    except ValueError:
        attributes = {}
    return {
        "id": point.id,
        "time": iso_ms(point.time),
        "timestamp": point.time,
        "service": point.service,
        "pod": point.pod,
        "host": point.host,
        "name": point.name,
        "attributes": attributes,
        "value": point.value,
    }


def list_points(args: Mapping[str, str]) -> tuple[list[MetricPoint], str | None]:
    """One page of points, newest first, and the next page's cursor (None: the last page)."""
    query = select(MetricPoint).where(*MetricFilter.from_args(args).where())
    return _page(query, args, "points", MetricPoint.time, MetricPoint.id, DEFAULT_LIMIT, MAX_LIMIT)
