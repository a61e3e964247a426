"""Throwaway databases for tests: a SQLite file, or a fresh PostgreSQL database.

PostgreSQL is used when reachable at ``AIOPS_TEST_POSTGRES_URL`` (default: the
local server, user ``postgres``, database ``test``); each test gets its own
database, created from nothing (or copied from a migrated template) and
dropped afterwards.

Migrating a database from nothing costs a few hundred milliseconds, and most
tests want the newest schema, not the migration: they get a copy of a
template migrated once per session (``CREATE DATABASE ... TEMPLATE``, or a
copied SQLite file), which is what ``flask aiops migrate`` would leave.
PostgreSQL copies are made one ahead and dropped in the background
(:class:`PostgresCopies`), while the tests run.
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


def _admin(sql: str | Callable[[tuple], str]) -> None:
    """Run one statement on the admin database (a function of the server's version, if it depends on it)."""
    admin = sa.create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(sql if isinstance(sql, str) else sql(conn.dialect.server_version_info))
    finally:
        admin.dispose()


def create_postgres_database(template: str | None = None) -> str:
    """A new, uniquely named database (a copy of ``template``'s URL when given); its URL."""
    name = f"aiops_test_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{sa.engine.make_url(template).database}"' if template else ""
    # PostgreSQL 15 copies a template through the WAL by default; copying its files is about
    # twice as fast for a database this small.
    _admin(lambda version: f'CREATE DATABASE "{name}"{copy}'
           + (" STRATEGY FILE_COPY" if copy and version >= (15,) else ""))
    return sa.engine.make_url(postgres_admin_url()).set(database=name).render_as_string(hide_password=False)


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


class PostgresCopies:
    """Copies of a migrated template database, made one ahead and dropped in the background.

    Making or dropping a database is mostly the server's disk work (0.05 s to
    0.3 s on a busy machine), while a test mostly runs Python: one thread does
    that work for the next test while the current one runs. Each copy is used
    by one test only and dropped after it, as before.
    """

    def __init__(self, template: str):
        self._template = template
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-databases")
        self._next: Future | None = None
        self._drops: list[Future] = []

    def _make(self) -> Future:
        return self._worker.submit(create_postgres_database, self._template)

    def take(self) -> str:
        """A fresh copy of the template (waits for the one being made); starts making the next."""
        current = self._next or self._make()
        self._next = self._make()
        return current.result()

    def release(self, url: str) -> None:
        """Drop ``url`` in the background (after the copy being made, if any)."""
        self._drops.append(self._worker.submit(drop_postgres_database, url))

    def close(self) -> None:
        """Drop the copy made ahead and wait for every drop; raises the first drop that failed."""
        if self._next is not None:
            try:
                self.release(self._next.result())
            except Exception:  # noqa: BLE001 - nothing was made, nothing to drop
                pass
        self._worker.shutdown(wait=True)
        for drop in self._drops:
            drop.result()
