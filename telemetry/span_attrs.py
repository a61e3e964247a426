"""Reads of the spans' ``attributes`` column (:mod:`telemetry.attributes`): a trace's, a filter on
one attribute, and the bounded sample of one endpoint that "what changed" compares.

**Filtering**: both stores filter on the JSON text as it is, with no extra index: SQLite's
``json_extract(attributes, '$."key"')`` and PostgreSQL's ``attributes::json ->> 'key'``. The
filter always comes on top of an indexed restriction (an endpoint's or a trace's spans in a range),
so it is evaluated on the rows of a bounded read, never on the table. A value compares as text
(``json_extract`` of a number is a number on SQLite, hence the ``CAST``), so ``http.status=500``
finds the integer 500.

**The sample**: the newest :data:`MAX_SPANS` spans of the endpoint (or of the whole service, without
an endpoint) in the range, CLIENT spans left out (a caller records its call under the callee's
name; the charts leave them out alike), through the
``ix_spans_endpoint_time`` index backwards, then what their traces say about each: the service of
its parent span (the caller) and the peers its CLIENT children called. Rows come through the
session's driver cursor as plain named tuples (:mod:`telemetry.span_sample`'s way).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable

from telemetry.attributes import decode
from telemetry.columns import KIND_CLIENT
from telemetry.db import db

MAX_SPANS = 2_000  # spans one comparison reads (bench/pages.py times it on 1 M spans): 200 bad at p90
_CHUNK = 300  # spans per statement: at most 901 parameters (SQLite's old limit is 999)

ChangeSpan = namedtuple(
    "ChangeSpan",
    (
        "trace_id",
        "span_id",
        "parent_span_id",
        "service",
        "endpoint",
        "kind",
        "status_code",
        "error",
        "duration_ms",
        "exception_type",
        "attributes",
    ),
)
_COLUMNS = ", ".join(ChangeSpan._fields)


def _mark(conn) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def attribute_filter(dialect: str, key: str, value: str) -> str:
    """A SQL condition "attribute ``key`` has the text ``value``", where ``key`` and ``value`` are
    the statement's placeholders (``?``, ``%s``, ``:name``) for :func:`attribute_params`' values."""
    if dialect == "postgresql":
        return f"(attributes::json ->> {key}) = {value}"
    return f"CAST(json_extract(attributes, '$.\"' || {key} || '\"') AS TEXT) = {value}"


def attribute_params(dialect: str, key: str, value: str) -> tuple[str, str]:
    """The values for :func:`attribute_filter`'s placeholders: on SQLite the key goes into a quoted
    JSON path, where a ``"`` or ``\\`` in it would end the path."""
    if dialect != "postgresql":
        key = key.replace("\\", "\\\\").replace('"', '\\"')
    return key, value


def of_trace(trace_id: str) -> dict[str, dict]:
    """Span id -> stored attributes, for the spans of one trace that have any (the trace index)."""
    conn = db.session.connection()
    cur = conn.connection.cursor()
    try:
        cur.execute(
            f"SELECT span_id, attributes FROM spans WHERE trace_id = {_mark(conn)} "
            "AND attributes IS NOT NULL",
            (trace_id,),
        )
        return {span_id: decode(text) for span_id, text in cur.fetchall()}
    finally:
        cur.close()


def endpoint_spans(
    service: str,
    endpoint: str | None,
    since: float,
    until: float,
    attr: tuple[str, str] | None = None,
    limit: int = MAX_SPANS,
) -> list[ChangeSpan]:
    """The newest ``limit`` spans (not CLIENT) of ``service``/``endpoint`` (None: every endpoint of the
    service) that started in ``[since, until]``, with one attribute's value if ``attr``."""
    conn = db.session.connection()
    m = _mark(conn)
    where = f"service = {m} AND start_time >= {m} AND start_time <= {m} AND kind != {m}"
    params: list = [service, since, until, KIND_CLIENT]
    if endpoint is not None:
        where += f" AND endpoint = {m}"
        params.append(endpoint)
    if attr is not None:
        where += " AND " + attribute_filter(conn.dialect.name, m, m)
        params += attribute_params(conn.dialect.name, *attr)
    sql = f"SELECT {_COLUMNS} FROM spans WHERE {where} ORDER BY start_time DESC LIMIT {m}"
    cur = conn.connection.cursor()
    try:
        cur.execute(sql, (*params, limit))
        return list(map(ChangeSpan._make, cur.fetchall()))
    finally:
        cur.close()


Context = namedtuple("Context", ("callers", "peers"))
Context.__doc__ = """What the traces of a sample say about its spans: ``callers`` maps a span id to
the service of its parent span, ``peers`` a span id to the (peer, failed) pairs of its CLIENT
children (the peer column, else the child's endpoint)."""


def context(spans: Iterable[ChangeSpan]) -> Context:
    """The parents' services and the CLIENT children's peers of ``spans``: one statement per
    :data:`_CHUNK` spans on the trace index, giving back only those parent and child rows."""
    spans = list(spans)
    callers: dict[str, str] = {}
    peers: dict[str, list[tuple[str, bool]]] = {}
    conn = db.session.connection()
    m = _mark(conn)
    cur = conn.connection.cursor()
    try:
        for start in range(0, len(spans), _CHUNK):
            chunk = spans[start : start + _CHUNK]
            traces = sorted({s.trace_id for s in chunk})
            parents = sorted({s.parent_span_id for s in chunk if s.parent_span_id}) or [""]
            ids = [s.span_id for s in chunk]
            cur.execute(
                f"SELECT span_id, parent_span_id, service, kind, peer, endpoint, error FROM spans "
                f"WHERE trace_id IN ({', '.join([m] * len(traces))}) "
                f"AND (span_id IN ({', '.join([m] * len(parents))}) "
                f"OR (kind = {m} AND parent_span_id IN ({', '.join([m] * len(ids))})))",
                (*traces, *parents, KIND_CLIENT, *ids),
            )
            service_of = {}
            wanted = set(ids)
            for span_id, parent, service, kind, peer, endpoint, error in cur.fetchall():
                service_of[span_id] = service
                if kind == KIND_CLIENT and parent in wanted:
                    peers.setdefault(parent, []).append((peer or endpoint, bool(error)))
            for s in chunk:
                if s.parent_span_id in service_of:
                    callers[s.span_id] = service_of[s.parent_span_id]
    finally:
        cur.close()
    return Context(callers, peers)
