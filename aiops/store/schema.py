"""Database schema migrations (Alembic), applied before serving, never on a request.

Every schema change is an Alembic revision in ``aiops/store/migrations/versions``.
:func:`upgrade` brings a database to the newest revision. ``flask --app app
aiops migrate`` runs it, and so do gunicorn's master before it forks
(gunicorn.conf.py), the worker process and ``python app.py`` when they start,
so it must be cheap when there is nothing to do and safe when several
processes (or instances) start at once:

- a database already at the head revision costs one read, no lock;
- otherwise the upgrade runs in one transaction that first takes a lock
  (PostgreSQL: a transaction-level advisory lock; SQLite: ``BEGIN IMMEDIATE``,
  the database write lock), then looks again: whoever waited finds the work
  done and leaves;
- a database made by the old ``create_all`` (our tables, no ``alembic_version``)
  is *adopted*: the initial revision creates only what is missing and records
  itself, instead of failing on "table already exists".

The functions take an Engine and the models' MetaData, so tests and tools can
call them directly; :func:`ensure_schema` is the app's shorthand. Each package
registers its tables on the shared ``db.metadata`` when its ``init_app`` imports
its models, and the migrations see whatever the app registered: no package
imports another's models for them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, inspect, text

from telemetry.db import configure_engine, db, write_connection

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key of schema upgrades ("AIOpM").
_MIGRATION_LOCK = 0x41494F704D
# A table every pre-migration database has: its presence means "adopt, don't create".
_SENTINEL_TABLE = "spans"


def alembic_config(connection: Connection | None = None, **attributes) -> Config:
    """An Alembic Config for our scripts, without an ini file; ``env.py`` runs on ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    config.attributes.update(attributes)
    return config


def heads() -> set[str]:
    """The head revision(s) of the scripts (one, unless someone branched)."""
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def current(connection: Connection) -> set[str]:
    """The revision(s) recorded in the database; empty when it has none."""
    return set(MigrationContext.configure(connection).get_current_heads())


def _sqlite_dir(engine: Engine) -> None:
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:" \
            and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def upgrade(engine: Engine, metadata: MetaData | None = None) -> str:
    """Bring the database to the head revision: ``"current"``, ``"upgraded"`` or ``"adopted"``."""
    _sqlite_dir(engine)
    configure_engine(engine)  # SQLite: WAL, busy timeout, BEGIN IMMEDIATE for write_connection
    target = heads()
    with engine.connect() as conn:  # the fast path: one read, no lock
        if current(conn) == target:
            return "current"
    with write_connection(engine) as conn:  # SQLite: BEGIN IMMEDIATE, the write lock
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        found = current(conn)
        if found == target:  # another process did it while we waited for the lock
            return "current"
        adopt = not found and inspect(conn).has_table(_SENTINEL_TABLE)
        if adopt:
            log.warning("database has tables but no migration history: adopting it")
        log.info("migrating database from %s to %s", sorted(found) or "nothing", sorted(target))
        command.upgrade(alembic_config(conn, adopt=adopt, metadata=metadata), "head")
    return "adopted" if adopt else "upgraded"


def revision(engine: Engine, metadata: MetaData, message: str) -> str:
    """Autogenerate a new revision from the models' difference to the (migrated) database."""
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    rev_id = f"{int(head) + 1:04d}" if head and head.isdigit() else None
    with engine.connect() as conn:
        made = command.revision(alembic_config(conn, metadata=metadata), message=message,
            autogenerate=True, rev_id=rev_id)
    return made.path if made is not None and not isinstance(made, list) else ""


def ensure_schema() -> str:
    """Migrate the app's database to the newest schema (``flask aiops migrate``, the worker,
    gunicorn's start and ``python app.py`` call it; a request never does)."""
    return upgrade(db.engine, db.metadata)
