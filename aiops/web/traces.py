"""Traces on the Flask edge: ``GET /aiops/traces`` (JSON, paginated), the ``/traces`` search page,
and ``/traces/<trace_id>``, one trace's waterfall with its log lines.

The query string is checked here (a wrong value is an :class:`InvalidInput`, a 400 that names
what was expected); the search itself is :mod:`telemetry.trace_list`.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping

from flask import Blueprint, jsonify, redirect, render_template, request, url_for

from aiops.web import errors, incident_queries, waterfall
from aiops.web import log_queries as log_service
from aiops.web.incident_queries import InvalidInput, attr_filter, decode_cursor, page_limit, text_filter
from aiops.web.pagination import encode
from telemetry import store, times
from telemetry.trace_list import TraceFilter, TraceSummary, list_traces

api = Blueprint("traces_api", __name__)
pages = errors.html_pages(Blueprint("traces", __name__))  # their errors are HTML pages too
DEFAULT_SINCE = "1h"
DEFAULT_LIMIT, MAX_LIMIT, PAGE_LIMIT = 50, 500, 50
MAX_SERVICE_CHARS, MAX_ENDPOINT_CHARS = 255, 512  # the span columns' widths
MAX_MS = 86_400_000.0  # a day
_CURSOR = ("traces",)
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
TRUE, FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def _ms(args: Mapping[str, str], name: str) -> float | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= MAX_MS):
        raise InvalidInput(f"'{name}' must be a number of milliseconds from 0 to {MAX_MS:.0f}, "
                           f"not {raw[:40]!r}")
    return value


def trace_id_arg(raw: str | None) -> str | None:
    if not raw or not raw.strip():
        return None
    value = raw.strip().lower()
    if not _TRACE_ID.fullmatch(value):
        raise InvalidInput("'trace_id' must be 32 hex digits")
    return value


def parse_filter(args: Mapping[str, str], now: float) -> TraceFilter:
    """The filters of a query string: ``service``, ``endpoint``, ``min_ms``, ``max_ms``, ``errors``,
    ``since`` (default 1h back), ``until`` (default now), ``trace_id``, ``attr`` (``key:value``)."""
    try:
        since, until = times.time_range(args.get("since"), args.get("until"), now, DEFAULT_SINCE)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    errors = (args.get("errors") or "").strip().lower()
    if errors not in TRUE + FALSE:
        raise InvalidInput("'errors' must be 1 (only traces with an error span) or 0")
    min_ms, max_ms = _ms(args, "min_ms"), _ms(args, "max_ms")
    if min_ms is not None and max_ms is not None and min_ms > max_ms:
        raise InvalidInput("'min_ms' must not be above 'max_ms'")
    return TraceFilter(
        since=since, until=until,
        service=text_filter(args, "service", MAX_SERVICE_CHARS) or None,
        endpoint=text_filter(args, "endpoint", MAX_ENDPOINT_CHARS) or None,
        min_ms=min_ms, max_ms=max_ms, errors=errors in TRUE,
        trace_id=trace_id_arg(args.get("trace_id")),
        attr=attr_filter(args),
    )


def search(args: Mapping[str, str], default_limit: int) -> tuple[list[TraceSummary], str | None]:
    """One page of matching traces and the cursor of the next (None: the last page)."""
    filters = parse_filter(args, time.time())
    limit = page_limit(args, default_limit, MAX_LIMIT)
    cursor = args.get("cursor")
    after = decode_cursor(cursor, _CURSOR, str)["traces"] if cursor else None
    found, more = list_traces(filters, limit, after)
    return found, None if more is None else encode({"traces": more})


def to_json(summary: TraceSummary) -> dict:
    return {"trace_id": summary.trace_id, "root_service": summary.root_service,
            "root_endpoint": summary.root_endpoint, "start": log_service.iso_ms(summary.start),
            "duration_ms": round(summary.duration_ms, 3), "spans": summary.spans, "error": summary.error}


def trace_context(trace_id: str, highlight: tuple[str, str] | None = None) -> dict:
    """What a page needs to draw one trace (``""``: none): its waterfall rows and time axis, and its
    log lines."""
    spans = store.trace_spans([trace_id]).get(trace_id, []) if trace_id else []
    rows = waterfall.layout(spans, highlight=highlight)
    lines, more_lines = log_service.trace_lines(trace_id) if trace_id else ([], False)
    trace_logs = [log_service.line_view(r) for r in lines]
    waterfall.mark_logs(rows, trace_logs)
    total = waterfall.total_ms(rows)
    return {"rows": rows, "span_count": len(spans), "trace_logs": trace_logs, "more_lines": more_lines,
            "trace_ms": total, "ticks": waterfall.ticks(total)}


@api.get("/aiops/traces")
def traces_json():
    """Traces with a span matching every filter, newest first, paginated (``next``)."""
    found, cursor = search(request.args, DEFAULT_LIMIT)
    return jsonify(traces=[to_json(s) for s in found], next=cursor)


@pages.get("/traces")
def traces_page():
    args = request.args
    if trace_id_arg(args.get("trace_id")) and not args.get("cursor"):
        return redirect(url_for("traces.trace_page", trace_id=trace_id_arg(args.get("trace_id"))))
    found, cursor = search(args, PAGE_LIMIT)
    form = {name: args.get(name, "") for name in
            ("service", "endpoint", "min_ms", "max_ms", "since", "until", "errors", "attr")}
    next_args = {k: v for k, v in args.items() if k != "cursor"} | {"cursor": cursor} if cursor else None
    return render_template("traces.html", traces=found, form=form, next_args=next_args,
                           default_since=DEFAULT_SINCE)


@pages.get("/traces/<trace_id>")
def trace_page(trace_id: str):
    trace_id = trace_id_arg(trace_id) or ""
    incident = incident_queries.incidents_by_trace({trace_id}).get(trace_id)
    return render_template("trace.html", trace_id=trace_id, incident=incident, **trace_context(trace_id))
