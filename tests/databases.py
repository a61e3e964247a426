"""Throwaway databases for tests: a SQLite file, or a fresh PostgreSQL database.

PostgreSQL is used when reachable at ``AIOPS_TEST_POSTGRES_URL`` (default: the
local server, user ``postgres``, database ``test``); each test gets its own
database, created from nothing and dropped afterwards.
"""

from __future__ import annotations

import os
import uuid

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


def create_postgres_database() -> str:
    admin = sa.create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    name = f"aiops_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return sa.engine.make_url(postgres_admin_url()).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = sa.engine.make_url(url).database
    admin = sa.create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()
