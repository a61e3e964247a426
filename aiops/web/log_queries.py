"""Log records as the JSON API and the logs page both list them: filters and pages in SQL.

Newest first (``time``, then ``id``), with the keyset cursors of
:mod:`aiops.web.pagination`, so a page costs one indexed range scan however deep
it is. Every filter is checked before a query runs; a bad one is an
:class:`~aiops.web.incident_queries.InvalidInput` (a 400, or the page's error).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from aiops.store.models import LogTemplate
from aiops.web.incident_queries import InvalidInput, after, decode_cursor, page_limit, text_filter
from aiops.web.pagination import encode
from telemetry import times
from telemetry.db import db
from telemetry.models import LogRecord
from telemetry.otlp_logs import severity_name, severity_number

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
MAX_SERVICE_CHARS, MAX_TEXT_CHARS = 255, 200
MAX_TEMPLATE_ID = 2**31 - 1  # the column is a 32-bit integer; drain3 numbers clusters from 1
MAX_TRACE_LINES = 200  # log lines of one trace an incident page shows
MAX_SHOWN_BODY = 500  # characters of a body a page shows in a list (the logs page shows it whole)
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
SEVERITY_CHOICES = (*map(str, range(25)), "trace", "debug", "info", "warn", "warning", "error", "fatal",
                    "TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL")
TIME_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,6})?$"  # epoch seconds (the other form: an RFC 3339 date-time)


def parse_time(raw: str, name: str) -> float:
    """``from``/``to``: epoch seconds (``1737404800.5``) or ISO 8601 (``2026-01-20T10:30:00Z``;
    without an offset, UTC)."""
    try:
        return times.instant(raw)
    except ValueError as exc:
        raise InvalidInput(f"'{name}' must be {exc}") from None


def parse_template_id(raw: str) -> int:
    """``template_id``: a template's id (unique within its service: pair it with ``service``)."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and 1 <= int(raw) <= MAX_TEMPLATE_ID):
        raise InvalidInput(f"'template_id' must be an integer between 1 and {MAX_TEMPLATE_ID}, "
                           f"not {raw[:40]!r}")
    return int(raw)


def parse_severity(raw: str) -> int:
    """``severity``: the lowest SeverityNumber shown (``17``), or a level name (``error``, ``warn``)."""
    if raw.isascii() and raw.isdigit() and len(raw) <= 2 and int(raw) <= 24:
        return int(raw)
    number = severity_number(raw[:16])
    if number is None:
        raise InvalidInput("'severity' must be a number 0..24 or one of trace, debug, info, warn, error, "
                           "fatal")
    return number


@dataclass(frozen=True)
class LogFilter:
    """Which records a list shows (None: any)."""

    service: str | None = None
    severity: int | None = None
    text: str | None = None
    trace_id: str | None = None
    since: float | None = None
    until: float | None = None
    template_id: int | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> LogFilter:
        trace_id = args.get("trace_id")
        if trace_id is not None:
            trace_id = trace_id.strip().lower()
            if not _TRACE_ID.fullmatch(trace_id):
                raise InvalidInput("'trace_id' must be 32 hex digits")
        severity = args.get("severity")
        since, until = args.get("from"), args.get("to")
        template_id = args.get("template_id")
        return cls(
            service=text_filter(args, "service", MAX_SERVICE_CHARS) or None,
            severity=None if severity is None else parse_severity(severity),
            text=text_filter(args, "text", MAX_TEXT_CHARS) or None,
            trace_id=trace_id,
            since=None if since is None else parse_time(since, "from"),
            until=None if until is None else parse_time(until, "to"),
            template_id=None if template_id is None else parse_template_id(template_id),
        )

    def where(self) -> list:
        t = LogRecord
        conditions = []
        if self.service is not None:
            conditions.append(t.service == self.service)
        if self.severity is not None:
            conditions.append(t.severity_number >= self.severity)
        if self.text is not None:
            conditions.append(t.body.icontains(self.text, autoescape=True))
        if self.trace_id is not None:
            conditions.append(t.trace_id == self.trace_id)
        if self.since is not None:
            conditions.append(t.time >= self.since)
        if self.until is not None:
            conditions.append(t.time <= self.until)
        if self.template_id is not None:
            conditions.append(t.template_id == self.template_id)
        return conditions


def iso_ms(ts: float) -> str:
    """``2026-01-20T10:30:15.123Z``: log lines need the milliseconds that incident times leave out."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_json(record: LogRecord) -> dict:
    try:
        attributes = json.loads(record.attributes) if record.attributes else {}
    except ValueError:
        attributes = {}
    return {
        "id": record.id,
        "time": iso_ms(record.time),
        "timestamp": record.time,
        "service": record.service,
        "severity_number": record.severity_number,
        "severity_text": record.severity_text,
        "body": record.body,
        "trace_id": record.trace_id,
        "span_id": record.span_id,
        "attributes": attributes,
        "template_id": record.template_id,
    }


def list_logs(args: Mapping[str, str]) -> tuple[LogFilter, list[LogRecord], str | None]:
    """``GET /aiops/logs``: (the filters, one page newest first, the next page's cursor or None)."""
    filters = LogFilter.from_args(args)
    query = select(LogRecord).where(*filters.where())
    rows, cursor = _page(query, args, "logs", LogRecord.time, LogRecord.id, DEFAULT_LIMIT, MAX_LIMIT)
    return filters, rows, cursor


def _page(query, args: Mapping[str, str], name: str, at, key, default: int, maximum: int):
    """One keyset page of ``query``, newest ``at`` first: (rows, the next page's cursor or None)."""
    limit = page_limit(args, default, maximum)
    raw = args.get("cursor")
    if raw is not None:
        start = decode_cursor(raw, (name,), int)[name]
        if start is None:
            return [], None
        query = query.where(after(start, at, key))
    found = list(db.session.scalars(query.order_by(at.desc(), key.desc()).limit(limit + 1)))
    last = found[limit - 1] if len(found) > limit else None
    return found[:limit], encode({name: (getattr(last, at.key), getattr(last, key.key))}) if last else None


def trace_lines(trace_id: str, limit: int = MAX_TRACE_LINES) -> tuple[list[LogRecord], bool]:
    """A trace's log lines in time order, at most ``limit``: (lines, whether there are more)."""
    found = list(db.session.scalars(select(LogRecord).where(LogRecord.trace_id == trace_id)
                                    .order_by(LogRecord.time, LogRecord.id).limit(limit + 1)))
    return found[:limit], len(found) > limit


def line_view(record: LogRecord) -> dict:
    """A log line as a page lists it: the body bounded, the severity as a word."""
    body = record.body or ""
    number = record.severity_number or 0
    return {
        "time": iso_ms(record.time),
        "service": record.service,
        "severity_number": number,
        "severity": record.severity_text or severity_name(number) or str(number),
        "level": max(number - 1, 0) // 4,  # 0 TRACE .. 5 FATAL, for the page's colours
        "body": body[:MAX_SHOWN_BODY] + ("…" if len(body) > MAX_SHOWN_BODY else ""),
        "span_id": record.span_id,
        "template_id": record.template_id,
    }


@dataclass(frozen=True)
class TemplateFilter:
    """Which mined templates a list shows (None: any)."""

    service: str | None = None
    text: str | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> TemplateFilter:
        return cls(service=text_filter(args, "service", MAX_SERVICE_CHARS) or None,
                   text=text_filter(args, "text", MAX_TEXT_CHARS) or None)

    def where(self) -> list:
        conditions = []
        if self.service is not None:
            conditions.append(LogTemplate.service == self.service)
        if self.text is not None:
            conditions.append(LogTemplate.template.icontains(self.text, autoescape=True))
        return conditions


def template_json(t: LogTemplate) -> dict:
    return {
        "service": t.service,
        "template_id": t.template_id,
        "template": t.template,
        "first_seen": iso_ms(t.first_seen),
        "last_seen": iso_ms(t.last_seen),
        "count": t.count,
        "exception": t.exception,
    }


def list_templates(args: Mapping[str, str]) -> tuple[list[LogTemplate], str | None]:
    """``GET /aiops/logs/templates``: one page, newest template (first seen) first, and the next cursor."""
    query = select(LogTemplate).where(*TemplateFilter.from_args(args).where())
    return _page(query, args, "templates", LogTemplate.first_seen, LogTemplate.id, DEFAULT_LIMIT, MAX_LIMIT)
