"""Throwaway databases for tests: a SQLite file, or a fresh PostgreSQL database.

PostgreSQL is used when reachable at ``AIOPS_TEST_POSTGRES_URL`` (default: the
local server, user ``postgres``, database ``test``); each test gets a
database of its own while it runs: created from nothing and dropped
afterwards, or a copy of a migrated template, emptied afterwards.

Migrating a database from nothing costs a few hundred milliseconds, and most
tests want the newest schema, not the migration: they get a copy of a
template migrated once per session (``CREATE DATABASE ... TEMPLATE``, or a
copied SQLite file), which is what ``flask aiops migrate`` would leave.
A PostgreSQL copy costs 0.2 s to 1 s on a busy machine (the server
checkpoints), so :class:`PostgresCopies` empties a copy after its test and
hands it to a later one, in the background while the tests run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_admin_url() -> str:
    return os.environ.get("AIOPS_TEST_POSTGRES_URL", DEFAULT_PG)


def postgres_available() -> bool:
    try:
        engine = sa.create_engine(postgres_admin_url(), connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


def _admin(*statements: str | Callable[[tuple], str]) -> None:
    """Run statements on the admin database, in order (a function of the server's version, if one
    depends on it)."""
    admin = sa.create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for sql in statements:
                conn.exec_driver_sql(sql if isinstance(sql, str) else sql(conn.dialect.server_version_info))
    finally:
        admin.dispose()


def _unique_name() -> str:
    return f"aiops_test_{uuid.uuid4().hex[:12]}"


def _url(name: str) -> str:
    return sa.engine.make_url(postgres_admin_url()).set(database=name).render_as_string(hide_password=False)


def create_postgres_database(template: str | None = None) -> str:
    """A new, uniquely named database (a copy of ``template``'s URL when given); its URL."""
    name = _unique_name()
    copy = f' TEMPLATE "{sa.engine.make_url(template).database}"' if template else ""
    # PostgreSQL 15 copies a template through the WAL by default; copying its files is about
    # twice as fast for a database this small.
    _admin(lambda version: f'CREATE DATABASE "{name}"{copy}'
           + (" STRATEGY FILE_COPY" if copy and version >= (15,) else ""))
    return _url(name)


def drop_postgres_database(url: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{sa.engine.make_url(url).database}" WITH (FORCE)')


def migrate(url: str) -> str:
    """Bring the database at ``url`` to the newest schema, then close every connection to it."""
    from aiops.store import schema

    engine = sa.create_engine(url)
    try:
        schema.upgrade(engine)
    finally:
        engine.dispose()
    return url


def copy_sqlite(template: Path, target: Path) -> str:
    """Copy a (closed) SQLite database file, with its WAL if one was left; the copy's URL."""
    for suffix in ("", "-wal"):
        source = template.with_name(template.name + suffix)
        if source.exists():
            shutil.copyfile(source, target.with_name(target.name + suffix))
    return f"sqlite:///{target}"


# What a test may change in a copy besides its rows: anything here that differs from the template's
# after a test (a dropped or renamed table, a new index, another schema version) and the copy is dropped,
# not reused. One row per object, hashed.
_SHAPE = """
WITH ours AS (SELECT oid FROM pg_namespace WHERE nspname <> 'information_schema' AND nspname !~ '^pg_')
SELECT md5(string_agg(line, E'\\n' ORDER BY line)) FROM (
  SELECT concat_ws(' ', 'relation', c.relnamespace::regnamespace, c.relname, c.relkind, c.reloptions)
    FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM ours)
  UNION ALL
  SELECT concat_ws(' ', 'column', a.attrelid::regclass, a.attname, format_type(a.atttypid, a.atttypmod),
                   a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relnamespace IN (SELECT oid FROM ours)
  UNION ALL
  SELECT concat_ws(' ', 'constraint', conrelid::regclass, conname, pg_get_constraintdef(oid))
    FROM pg_constraint WHERE connamespace IN (SELECT oid FROM ours)
  UNION ALL
  SELECT concat_ws(' ', 'index', pg_get_indexdef(i.indexrelid))
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace IN (SELECT oid FROM ours)
  UNION ALL
  SELECT concat_ws(' ', 'view', c.oid::regclass, pg_get_viewdef(c.oid))
    FROM pg_class c WHERE c.relkind IN ('v', 'm') AND c.relnamespace IN (SELECT oid FROM ours)
  UNION ALL
  SELECT concat_ws(' ', 'trigger', pg_get_triggerdef(oid)) FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL
  SELECT concat_ws(' ', 'function', pg_get_functiondef(oid))
    FROM pg_proc WHERE prokind IN ('f', 'p') AND pronamespace IN (SELECT oid FROM ours)
  UNION ALL
  SELECT concat_ws(' ', 'type', typnamespace::regnamespace, typname, typtype)
    FROM pg_type WHERE typnamespace IN (SELECT oid FROM ours)
  UNION ALL
  SELECT concat_ws(' ', 'enum', enumtypid::regtype, enumsortorder, enumlabel) FROM pg_enum
  UNION ALL
  SELECT concat_ws(' ', 'sequence', schemaname, sequencename, data_type, start_value, min_value, max_value,
                   increment_by, cycle) FROM pg_sequences
  UNION ALL
  SELECT concat_ws(' ', 'extension', extname, extversion) FROM pg_extension
  UNION ALL
  SELECT concat_ws(' ', 'schema version', version_num) FROM alembic_version
) AS shape (line)
"""


# Every sequence a test used hands out 1 next, as in the template.
_RESTART_SEQUENCES = ("SELECT setval(quote_ident(schemaname) || '.' || quote_ident(sequencename), 1, false)"
                      " FROM pg_sequences WHERE last_value IS NOT NULL")


def _shape(conn: sa.Connection) -> str:
    return conn.exec_driver_sql(_SHAPE).scalar_one()


class PostgresCopies:
    """Copies of a migrated template database: emptied after each test and reused, one readied ahead.

    Making a copy is mostly the server's disk work (0.2 s to 1 s on a busy
    machine: ``CREATE DATABASE`` checkpoints), while a test mostly runs Python.
    So the copy a test used is emptied and handed to a later test instead of
    being dropped: its other sessions are ended, as ``DROP DATABASE ... WITH
    (FORCE)`` would, and it is renamed (what still points at it finds no
    database); every table but ``alembic_version`` is emptied; every sequence
    starts again at 1. A copy whose shape differs from the template's
    afterwards (:data:`_SHAPE`: a test dropped a table, say) is dropped and a
    new one made. One thread empties the copy a test left and readies the next
    while the current test runs.

    A copy's commits do not wait for the disk (``synchronous_commit = off``,
    as SQLite's ``synchronous=NORMAL`` in telemetry/db.py): only a server
    crash could tell, and every session sees the same rows at the same time.
    A busy disk otherwise makes each commit wait its turn for an fsync.
    """

    def __init__(self, template: str):
        self._template = template
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-databases")
        self._next: Future | None = None
        self._jobs: list[Future] = []
        self._emptied: list[str] = []  # copies ready for reuse (the worker thread's)
        self._made: set[str] = set()  # every copy not dropped yet (the worker thread's)
        engine = sa.create_engine(template)
        try:
            with engine.connect() as conn:
                # Referencing tables first, so that DELETE never trips a foreign key.
                ordered = reversed(sa.inspect(conn).get_sorted_table_and_fkc_names())
                self._tables = [name for name, _ in ordered if name not in (None, "alembic_version")]
                self._shape = _shape(conn)
        finally:
            engine.dispose()

    def _ready(self) -> str:
        if self._emptied:
            return self._emptied.pop()
        url = create_postgres_database(self._template)
        self._made.add(url)
        _admin(f'ALTER DATABASE "{sa.engine.make_url(url).database}" SET synchronous_commit = off')
        return url

    def _empty(self, used: str) -> None:
        """Make the copy at ``used`` as the template is again, under a new name; or drop it if its
        shape changed.

        Under its new name, whatever the last test left running (a writer thread, a pool, a
        process) cannot reach the copy: it finds no database, as if this one had been dropped.
        """
        old, new = sa.engine.make_url(used).database, _unique_name()
        self._made.discard(used)
        try:
            _admin(lambda version: "SELECT pg_terminate_backend(pid"
                   + (", 5000" if version >= (14,) else "")  # and wait until the session is gone
                   + f") FROM pg_stat_activity WHERE datname = '{old}' AND pid <> pg_backend_pid()",
                   f'ALTER DATABASE "{old}" RENAME TO "{new}"')
        except sa.exc.DBAPIError:  # a session came back in between
            drop_postgres_database(used)
            return
        url = _url(new)
        self._made.add(url)
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                same = _shape(conn) == self._shape
                if same:
                    # DELETE, not TRUNCATE: a test leaves a few rows, and TRUNCATE makes new files.
                    for table in self._tables:
                        conn.exec_driver_sql(f'DELETE FROM "{table}"')
                    conn.exec_driver_sql(_RESTART_SEQUENCES)
        except sa.exc.DBAPIError:
            same = False  # the shape query failed: alembic_version is gone, say
        finally:
            engine.dispose()
        if same:
            self._emptied.append(url)
        else:
            self._made.discard(url)
            drop_postgres_database(url)

    def take(self) -> str:
        """A copy as the template is (waits for the one being readied); starts readying the next."""
        current = self._next or self._worker.submit(self._ready)
        self._next = self._worker.submit(self._ready)
        return current.result()

    def release(self, url: str) -> None:
        """Empty ``url`` in the background, for a later test."""
        self._jobs.append(self._worker.submit(self._empty, url))

    def close(self) -> None:
        """Drop every copy; raises the first emptying that failed."""
        self._worker.shutdown(wait=True)
        for url in sorted(self._made):
            drop_postgres_database(url)
        for job in self._jobs:
            job.result()
