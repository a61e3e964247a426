"""Span and log store service functions: batched inserts, reads for detection and pages, pruning."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import namedtuple
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from functools import lru_cache
from itertools import chain

try:
    import fcntl
except ImportError:  # not POSIX: the processes of a server wait in SQLite's busy handler instead
    fcntl = None

from sqlalchemy import Engine, case, delete, func, select, text
from sqlalchemy.orm import aliased

from telemetry import pg_copy
from telemetry.columns import KIND_CLIENT, KIND_SERVER, LOG_FIELDS, METRIC_FIELDS, SPAN_FIELDS
from telemetry.db import db, executemany, write_connection
from telemetry.models import LogRecord, MetricPoint, Span

# PostgreSQL hands out ids at INSERT but shows the rows at COMMIT, so concurrent
# writers can commit out of id order: a cycle that read up to max(id) would then
# skip the smaller ids committed after it. Span writers hold this advisory lock
# shared; max_span_id() takes it exclusively for a moment, which waits out the
# inserts in flight, so every smaller id is committed when it returns. (SQLite
# writers are serialized already.)
_SPAN_WRITE_LOCK = 0x41494F7053  # "AIOps"


def _sqlite_chunk(fields: Sequence[str]) -> int:
    """Rows per multi-row INSERT on SQLite: 256 x 16 = 4,096 parameters, within
    SQLite's limit (32,766 since 3.32; 999 before, hence the smaller chunk there)."""
    return 256 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999 // len(fields)


@lru_cache(maxsize=16)
def _sqlite_insert(table: str, fields: tuple[str, ...], rows: int) -> str:
    one = "(" + ", ".join("?" * len(fields)) + ")"
    return f"INSERT OR IGNORE INTO {table} ({', '.join(fields)}) VALUES " + ", ".join([one] * rows)


def insert_spans(engine: Engine, rows: Sequence[tuple]) -> None:
    """Insert span tuples (in ``SPAN_FIELDS`` order) in one write transaction.

    A span already stored (same trace and span id) is skipped, not stored twice:
    OTLP clients retry whole batches, and some exporters repeat spans.

    The hot path of recording and OTLP ingest, so the tuples go to the driver
    as they are (every value is already a plain str, int, float, bool or None
    that sqlite3 and psycopg store as is), not through Core's ``insert()``
    with a dict per row and per-row bind processing.

    On SQLite they go as multi-row ``INSERT ... VALUES (...), (...)`` statements
    of up to 256 rows rather than ``executemany``: the sqlite3 module releases
    and retakes the GIL around every statement it steps, so ``executemany``
    does that once per row, and whenever another thread of the process is
    busy (a worker thread decoding the next OTLP batch, a request) each retake
    can wait out the interpreter's 5 ms switch interval while this thread
    holds the database's only write lock. One statement per 256 rows retakes
    it once per chunk; alone it is also faster. Sorting a batch by trace id
    first did not pay (the same pages of the index are dirtied in any order).

    On PostgreSQL they go with binary ``COPY`` (:mod:`telemetry.pg_copy`): one
    command streams the batch, with no statement, bind and result per row, and
    no number formatted as text and parsed again. Side by side with psycopg's
    pipelined ``executemany`` of ``INSERT ... ON CONFLICT DO NOTHING`` it stored
    1.6 times the spans per second at 0.7 times the server CPU per span
    (docs/performance.md). COPY has no ``ON CONFLICT``: a batch holding a span
    already stored is copied again through a temporary table.
    """
    _insert(engine, Span.__tablename__, SPAN_FIELDS, rows)


def insert_logs(engine: Engine, rows: Sequence[tuple]) -> None:
    """Insert log tuples (in ``LOG_FIELDS`` order) in one write transaction, the spans' way.

    Log records have no identity of their own, so a batch a client retries after
    we stored it is stored twice: at least once, never lost.
    """
    _insert(engine, LogRecord.__tablename__, LOG_FIELDS, rows)


def insert_metrics(engine: Engine, rows: Sequence[tuple]) -> None:
    """Insert metric tuples (in ``METRIC_FIELDS`` order) in one write transaction, the logs' way."""
    _insert(engine, MetricPoint.__tablename__, METRIC_FIELDS, rows)


class _Turns:
    """Batch writers of one SQLite file take turns: a mutex among this process's threads, then an
    ``flock`` on a file beside the database among the server's processes.

    SQLite has one writer at a time, and a writer that finds the file locked
    sleeps in its busy handler (1, 2, 5, 10 ... 100 ms) and polls, so with
    several request threads and workers storing batches a few milliseconds
    long, time went to sleeping past the moment the lock was free and to
    threads contending. Waiting here instead, the next writer starts the
    moment the last one is done. SQLite's own locking still decides: the
    cycle, retention and anything else write as before, in its busy handler.
    The lock file is opened for each turn (a syscall pair per batch), so no
    descriptor outlives it or is shared across a fork.
    """

    def __init__(self, path: str):
        self.path = path + "-writers.lock"
        self.mutex = threading.Lock()

    @contextmanager
    def turn(self):
        with self.mutex:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600) if fcntl else None
            except OSError:
                fd = None  # a read-only folder: SQLite's busy handler it is, as before
            if fd is None:
                yield
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the flock


_turns: dict[str, _Turns] = {}
_turns_lock = threading.Lock()


def _writer_turn(engine: Engine):
    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:" or path.startswith("file:"):
        return nullcontext()
    turns = _turns.get(path)
    if turns is None:
        with _turns_lock:
            turns = _turns.setdefault(path, _Turns(os.path.abspath(path)))
    return turns.turn()


def _insert(engine: Engine, table: str, fields: tuple[str, ...], rows: Sequence[tuple]) -> None:
    if not rows:
        return
    rows = rows if isinstance(rows, list) else list(rows)
    with _writer_turn(engine), write_connection(engine) as conn:
        dialect = conn.dialect.name
        if dialect == "postgresql":
            # Shared by span and log writers: a reader of either table's max id waits them out.
            conn.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": _SPAN_WRITE_LOCK})
        if dialect != "sqlite":
            if table == Span.__tablename__:
                pg_copy.copy_new_rows(conn, table, fields, rows)
            else:
                pg_copy.copy_rows(conn, table, fields, rows)
            return
        chunk = _sqlite_chunk(fields)
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            # A tuple is one parameter set (a list would mean executemany).
            conn.exec_driver_sql(_sqlite_insert(table, fields, len(part)),
                                 tuple(chain.from_iterable(part)))


def max_span_id(model=Span) -> int:
    """The highest span id (or log id, ``model=LogRecord``) such that every row with a smaller
    id is already committed."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SPAN_WRITE_LOCK})
            return conn.scalar(select(func.max(model.id))) or 0
    return db.session.scalar(select(func.max(model.id))) or 0


_T = Span.__table__

SpanRow = namedtuple("SpanRow", ("id", *SPAN_FIELDS))
SpanRow.__doc__ = """A stored span as detection, RCA and the pages read it: a plain named tuple.

Its attribute access costs a tenth of SQLAlchemy's ``Row`` (30 ns, not 300),
and a detection cycle reads each of its thousands of spans dozens of times
(window stats, self time, entries, RCA): for 10,000 spans that was about
100 ms of a cycle. Values are the column types' Python values (``error`` a bool); ``attributes``
is the column's JSON text, parsed only where it is needed (RCA's pods, :mod:`aiops.rca.pods`).
"""
_SPAN_COLUMNS = [_T.c[name] for name in SpanRow._fields]


def _span_rows(stmt) -> list[SpanRow]:
    return list(map(SpanRow._make, db.session.execute(stmt).all()))


def spans_after(cursor: int, upto: int) -> list[SpanRow]:
    """Span rows with ``cursor < id <= upto``: what arrived since the last cycle (in id order).

    A range scan of the primary key: its cost follows the new spans, not the history.
    """
    return _span_rows(
        select(*_SPAN_COLUMNS).where(_T.c.id > cursor, _T.c.id <= upto).order_by(_T.c.id)
    )


def trace_spans(trace_ids: Iterable[str]) -> dict[str, list[SpanRow]]:
    """All stored span rows of the given traces, grouped by trace id (the ``trace_id`` index)."""
    ids = sorted(set(trace_ids))
    out: dict[str, list] = {t: [] for t in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in _span_rows(select(*_SPAN_COLUMNS).where(_T.c.trace_id.in_(chunk))):
            out[row.trace_id].append(row)
    return out


def stored_span_ids(trace_id: str) -> set[str]:
    """The span ids stored for one trace (the ``trace_id`` index): what a pulled trace need not add."""
    return set(db.session.scalars(select(_T.c.span_id).where(_T.c.trace_id == trace_id)))


def spans_by_id(ids: Iterable[int]) -> dict[int, SpanRow]:
    """Span rows by primary key (a few, remembered by an earlier cycle)."""
    wanted = sorted(set(ids))
    rows: dict[int, SpanRow] = {}
    for start in range(0, len(wanted), 500):
        for row in _span_rows(select(*_SPAN_COLUMNS).where(_T.c.id.in_(wanted[start : start + 500]))):
            rows[row.id] = row
    return rows


def earlier_spans(trace_ids: Iterable[str], upto: int) -> list[SpanRow]:
    """The span rows of the given traces stored up to id ``upto`` (the ``trace_id`` index)."""
    ids = sorted(set(trace_ids))
    rows: list[SpanRow] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows += _span_rows(select(*_SPAN_COLUMNS).where(_T.c.trace_id.in_(chunk), _T.c.id <= upto))
    return rows


_LOGS_AFTER = ("SELECT id, time, service, severity_number, body, trace_id, span_id FROM logs "
               "WHERE id > {0} AND id <= {0} ORDER BY id LIMIT {0}")


def logs_after(cursor: int, upto: int, limit: int) -> list[tuple]:
    """Log rows with ``cursor < id <= upto``, oldest id first, at most ``limit``, as plain tuples
    (id, time, service, severity_number, body, trace_id, span_id).

    A range scan of the primary key, like :func:`spans_after`, read with the session's own driver
    cursor (in its transaction): a cycle reads thousands of lines, and a SQLAlchemy ``Row`` for
    each cost more than the rest of the read.
    """
    conn = db.session.connection()
    sql = _LOGS_AFTER.format("?" if conn.dialect.paramstyle == "qmark" else "%s")
    cur = conn.connection.cursor()
    try:
        cur.execute(sql, (cursor, upto, limit))
        return cur.fetchall()
    finally:
        cur.close()


def set_template_ids(pairs: Sequence[tuple[int, int]]) -> None:
    """``logs.template_id`` of rows by id, from ``(template_id, row id)`` pairs: one executemany of
    plain tuples on the session's driver cursor, in its transaction (SQLAlchemy's parameter
    processing of ten thousand dicts cost more than the UPDATE itself)."""
    executemany("UPDATE logs SET template_id = ? WHERE id = ?", pairs)


def recent_failures(keys: Sequence[tuple[str, str]], since: float) -> dict[tuple[str, str], tuple[int, int]]:
    """(requests, failed requests) since ``since`` of each (service, endpoint) in ``keys`` (no
    CLIENT spans): a quiet path's last few windows, one index range scan per endpoint."""
    found = {}
    for service, endpoint in keys:
        row = db.session.execute(
            select(func.count(), func.sum(case((Span.error, 1), else_=0))).where(
                Span.service == service, Span.endpoint == endpoint, Span.start_time >= since,
                Span.kind != KIND_CLIENT)
        ).one()
        found[(service, endpoint)] = (int(row[0] or 0), int(row[1] or 0))
    return found


MAX_CALLERS = 50  # callers of one callee whose calls recent_calls counts


def recent_calls(callees: Mapping[tuple[str, str], Iterable[str]], since: float
                 ) -> dict[tuple[str, str], tuple[int, ...]]:
    """(calls, failed unanswered, timed out) since ``since`` of each callee (peer, called operation)
    in ``callees`` from the callers named with it, as ``aiops.detection.rules`` counts a window's
    CLIENT spans into it: those that timed out (a 504, a ``*Timeout*`` exception), and those that
    failed with no status code, no timeout and no SERVER span under them (reset, refused, lost).
    By caller: one index range scan per (caller, operation), as for ``recent_failures``."""
    child = aliased(Span)
    answered = select(child.id).where(
        child.trace_id == Span.trace_id, child.parent_span_id == Span.span_id, child.kind == KIND_SERVER
    ).exists()
    exception = func.lower(func.coalesce(Span.exception_type, ""))
    timed_out = (func.coalesce(Span.status_code, 0) == 504) | exception.contains("timeout")  # never NULL
    refused = Span.error & ((Span.status_code.is_(None)) | (Span.status_code == 0)) & ~timed_out & ~answered
    counts = (func.count(), func.sum(case((refused, 1), else_=0)), func.sum(case((timed_out, 1), else_=0)))
    found = {}
    for (peer, endpoint), callers in callees.items():
        row = db.session.execute(
            select(*counts).where(Span.service.in_(sorted(callers)[:MAX_CALLERS]), Span.endpoint == endpoint,
                                  Span.start_time >= since, Span.kind == KIND_CLIENT, Span.peer == peer)
        ).one()
        found[(peer, endpoint)] = (int(row[0] or 0), int(row[1] or 0), int(row[2] or 0))
    return found


def endpoint_stats(since: float, ignore_services: Sequence[str] = ()) -> list[dict]:
    """Per (service, endpoint, status) counts and latency since ``since`` (no CLIENT spans)."""
    stmt = (
        select(
            Span.service,
            Span.endpoint,
            Span.status_code,
            func.count().label("n"),
            func.sum(Span.duration_ms).label("total_ms"),
            func.sum(case((Span.error, 1), else_=0)).label("errors"),
        )
        .where(Span.start_time >= since, Span.kind != KIND_CLIENT)
        .group_by(Span.service, Span.endpoint, Span.status_code)
    )
    if ignore_services:
        stmt = stmt.where(Span.service.not_in(list(ignore_services)))
    return [row._asdict() for row in db.session.execute(stmt)]


def prune_spans(engine: Engine, older_than: float, batch: int = 5000) -> int:
    """Delete spans that started before ``older_than`` in small batches (ingest keeps going)."""
    return _prune(engine, Span, Span.start_time, older_than, batch)


def prune_logs(engine: Engine, older_than: float, batch: int = 5000) -> int:
    """Delete log records older than ``older_than``, the spans' way (same retention)."""
    return _prune(engine, LogRecord, LogRecord.time, older_than, batch)


def prune_metrics(engine: Engine, older_than: float, batch: int = 5000) -> int:
    """Delete metric points older than ``older_than`` (the same retention as spans and logs)."""
    return _prune(engine, MetricPoint, MetricPoint.time, older_than, batch)


def _prune(engine: Engine, model, column, older_than: float, batch: int) -> int:
    removed = 0
    while True:
        with write_connection(engine) as conn:
            ids = select(model.id).where(column < older_than).limit(batch)
            result = conn.execute(delete(model).where(model.id.in_(ids)))
        removed += result.rowcount or 0
        if not result.rowcount or result.rowcount < batch:
            return removed
        time.sleep(0)  # let writers in between batches
