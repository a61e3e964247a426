"""Log records as the JSON API and the logs page both list them: filters and pages in SQL.

Newest first (``time``, then ``id``), with the keyset cursors of
:mod:`aiops.pagination`, so a page costs one indexed range scan however deep
it is. Every filter is checked before a query runs; a bad one is an
:class:`~aiops.incident_service.InvalidInput` (a 400, or the page's error).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from aiops.incident_service import InvalidInput, after, decode_cursor, page_limit, text_filter
from aiops.pagination import encode
from telemetry.db import db
from telemetry.models import LogRecord
from telemetry.otlp_logs import severity_number

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
MAX_SERVICE_CHARS, MAX_TEXT_CHARS = 255, 200
_LIST = ("logs",)
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")
_LEAP_SECOND = re.compile(r"(?<=T[0-9]{2}:[0-9]{2}):60")
SEVERITY_CHOICES = (*map(str, range(25)), "trace", "debug", "info", "warn", "warning", "error", "fatal",
                    "TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL")
TIME_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,6})?$"  # epoch seconds (the other form: an RFC 3339 date-time)


def parse_time(raw: str, name: str) -> float:
    """``from``/``to``: epoch seconds (``1737404800.5``) or ISO 8601 (``2026-01-20T10:30:00Z``;
    without an offset, UTC)."""
    raw = raw.strip()
    if _NUMBER.fullmatch(raw):
        value = float(raw)
    else:
        # RFC 3339 allows a lowercase t and z, and a leap second (taken as :59).
        text = _LEAP_SECOND.sub(":59", raw[:64].upper())
        try:
            when = datetime.fromisoformat(text)
            value = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
        except (ValueError, OverflowError):
            raise InvalidInput(f"'{name}' must be epoch seconds or an ISO 8601 time, "
                               f"not {raw[:40]!r}") from None
    if not math.isfinite(value) or len(raw) > 64:
        raise InvalidInput(f"'{name}' must be epoch seconds or an ISO 8601 time")
    return value


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

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> LogFilter:
        trace_id = args.get("trace_id")
        if trace_id is not None:
            trace_id = trace_id.strip().lower()
            if not _TRACE_ID.fullmatch(trace_id):
                raise InvalidInput("'trace_id' must be 32 hex digits")
        severity = args.get("severity")
        since, until = args.get("from"), args.get("to")
        return cls(
            service=text_filter(args, "service", MAX_SERVICE_CHARS) or None,
            severity=None if severity is None else parse_severity(severity),
            text=text_filter(args, "text", MAX_TEXT_CHARS) or None,
            trace_id=trace_id,
            since=None if since is None else parse_time(since, "from"),
            until=None if until is None else parse_time(until, "to"),
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
    limit = page_limit(args, DEFAULT_LIMIT, MAX_LIMIT)
    query = select(LogRecord).where(*filters.where())
    raw = args.get("cursor")
    if raw is not None:
        start = decode_cursor(raw, _LIST, int)["logs"]
        if start is None:
            return filters, [], None
        query = query.where(after(start, LogRecord.time, LogRecord.id))
    query = query.order_by(LogRecord.time.desc(), LogRecord.id.desc()).limit(limit + 1)
    found = list(db.session.scalars(query))
    last = found[limit - 1] if len(found) > limit else None
    cursor = encode({"logs": (last.time, last.id)}) if last else None
    return filters, found[:limit], cursor
