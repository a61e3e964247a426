"""Alembic environment: run migrations on the connection :mod:`telemetry.schema` hands over.

``telemetry.schema.upgrade`` opens the connection, takes the migration lock
and begins the transaction; this file only runs the scripts on it, so every
revision applies in that one locked transaction. Autogenerate compares
against ``db.metadata`` with every model module imported.
"""

from __future__ import annotations

from alembic import context

import aiops.models  # noqa: F401 - every model module registers its tables
import simulation.models  # noqa: F401
import telemetry.models  # noqa: F401
from telemetry.db import db

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - always driven through telemetry.schema
    raise RuntimeError("run migrations with `flask --app app aiops migrate`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=db.metadata,
    # SQLite cannot ALTER most things: batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
