"""The shared SQLAlchemy handle and the SQLite settings every connection needs.

SQLite is the default store, used by several gunicorn workers at once, so each
connection runs in WAL mode with a busy timeout, and write transactions begin
with ``BEGIN IMMEDIATE``: a deferred transaction that reads first and writes
later fails at once with "database is locked", whatever the busy timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Engine, event
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)

_IMMEDIATE = "aiops_immediate"

# Every SQLite connection's settings. WAL with synchronous=NORMAL is safe from
# corruption; the busy timeout lets writers of several workers queue.
SQLITE_PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=NORMAL",
    "busy_timeout=10000",
    "foreign_keys=ON",
    "wal_autocheckpoint=10000",
)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def configure_engine(engine: Engine) -> None:
    """Install the SQLite pragmas and explicit BEGIN handling on ``engine``."""
    if not is_sqlite(engine) or getattr(engine, "_aiops_configured", False):
        return
    engine._aiops_configured = True  # type: ignore[attr-defined]

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Take transaction control away from the sqlite3 module so that our
        # "begin" listener decides between BEGIN and BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for pragma in SQLITE_PRAGMAS:
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get(_IMMEDIATE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def begin_write(session=None) -> None:
    """Make the session's transaction a write transaction; call it before the first write.

    An open read transaction (nothing changed yet) is ended first, because it
    cannot be upgraded safely on SQLite.
    """
    session = session or db.session()
    if session.in_transaction():
        if session.connection().get_execution_options().get(_IMMEDIATE):
            return
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("begin_write() must come before the transaction's first change")
        session.rollback()
    session.connection(execution_options={_IMMEDIATE: True})


@contextmanager
def write_connection(engine: Engine):
    """A Core connection inside a write transaction, committed on success."""
    with engine.connect() as conn:
        conn = conn.execution_options(**{_IMMEDIATE: True})
        with conn.begin():
            yield conn


def executemany(sql: str, rows: Sequence[tuple]) -> None:
    """Run ``sql`` (``?`` placeholders, quoted names) once per tuple of ``rows`` on the session's driver
    cursor, in its transaction: for thousands of rows a cycle writes, SQLAlchemy's processing of
    their parameters costs more than the statements themselves."""
    if not rows:
        return
    conn = db.session.connection()
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    cur = conn.connection.cursor()
    try:
        cur.executemany(sql, rows)
    finally:
        cur.close()
