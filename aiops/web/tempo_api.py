"""Grafana Tempo's query API over our span store: ``GET /api/search`` (TraceQL) and
``GET /api/traces/<trace_id>``, in the shapes Tempo's HTTP API documentation gives
(:mod:`telemetry.tempo_json`), so a tool that speaks Tempo's API can read this store.

Reads, like ``/aiops/*``'s: open unless ``AIOPS_PROTECT_READS`` (:mod:`aiops.web.security`). A bad
parameter is a 400 that names it; a query that does not parse is a 400 whose message gives the
line and column (:class:`telemetry.traceql.TraceQLError`). The work of a search is bounded by its
time range, :data:`telemetry.trace_queries.MAX_INSPECTED` candidate traces and ``limit``.
"""

from __future__ import annotations

import re
import time

from flask import Blueprint, Response, abort, jsonify, request

from telemetry import span_attrs, tempo_json, trace_queries, traceql

bp = Blueprint("tempo", __name__, url_prefix="/api")

DEFAULT_LIMIT, MAX_LIMIT = 20, 500
DEFAULT_SPSS, MAX_SPSS = 3, 100
DEFAULT_WINDOW = 3600  # seconds searched back from end when start is not given
_SECONDS = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")
TRACE_ID = re.compile(r"[0-9a-fA-F]{1,32}")
JSON, PROTOBUF = "application/json", "application/protobuf"


def _integer(name: str, default: int, most: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= most:
        abort(400, description=f"{name}: must be a whole number from 1 to {most}")
    return int(raw)


def _seconds(name: str, default: float) -> float:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not _SECONDS.fullmatch(raw):
        abort(400, description=f"{name}: must be unix epoch seconds")
    return float(raw)


def _window() -> tuple[float, float]:
    end = _seconds("end", time.time())
    start = _seconds("start", end - DEFAULT_WINDOW)
    if end < start:
        abort(400, description="end: must not be before start")
    return start, end


def _query():
    if "tags" in request.args:
        abort(400, description="tags: tag-based search is not supported here; send a TraceQL query as q")
    text = request.args.get("q", "").strip() or "{}"
    if "\x00" in text:  # no column holds it (PostgreSQL refuses it in a parameter)
        abort(400, description="q: must not contain NUL characters")
    try:
        return traceql.parse(text)
    except traceql.TraceQLError as exc:
        abort(400, description=f"q: {exc}")


@bp.get("/search")
def search():
    """Traces matching a TraceQL query (``q``) with a span in ``[start, end]``, newest first."""
    query = _query()
    start, end = _window()
    limit = _integer("limit", DEFAULT_LIMIT, MAX_LIMIT)
    spss = _integer("spss", DEFAULT_SPSS, MAX_SPSS)
    result = trace_queries.search(query, start, end, limit)
    fields = traceql.fields_of(query)
    return jsonify({
        "traces": [tempo_json.search_trace(f.facts, f.matched, fields, spss) for f in result.found],
        "metrics": {"inspectedTraces": result.inspected_traces, "inspectedSpans": result.inspected_spans},
    })


@bp.get("/traces/<trace_id>")
def trace(trace_id: str):
    """One trace as OTLP/JSON ``batches`` (Tempo's answer), or OTLP protobuf when the ``Accept`` header
    prefers ``application/protobuf``: 404 when no span of it is stored."""
    if not TRACE_ID.fullmatch(trace_id):
        abort(400, description="trace_id: must be 1 to 32 hex digits")
    spans = trace_queries.trace(trace_id.lower().rjust(32, "0"))
    if not spans:
        abort(404, description=f"trace not found: {trace_id}")
    stored = span_attrs.of_trace(spans[0].trace_id)
    if request.accept_mimetypes.best_match([JSON, PROTOBUF, "application/x-protobuf"], default=JSON) != JSON:
        return Response(tempo_json.trace_protobuf(spans, stored), mimetype=PROTOBUF)
    return jsonify(tempo_json.trace_batches(spans, stored))
