"""Alembic environment: run migrations on the connection :mod:`aiops.store.schema` hands over.

``aiops.store.schema.upgrade`` opens the connection, takes the migration lock
and begins the transaction; this file only runs the scripts on it, so every
revision applies in that one locked transaction. Autogenerate compares
against the MetaData handed over too: the tables each package's ``init_app``
registered (this file imports no package's models).
"""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - always driven through aiops.store.schema
    raise RuntimeError("run migrations with `flask --app app aiops migrate`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=config.attributes.get("metadata"),
    # SQLite cannot ALTER most things: batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
