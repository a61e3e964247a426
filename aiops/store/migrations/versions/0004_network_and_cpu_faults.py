"""Two more demo faults: a slow network to an endpoint, and a CPU hog in the process.

``faults.network_delay_ms`` is the delay its callers add inside their CLIENT
span (the callee's own SERVER span stays normal). ``cpu_threads`` and
``cpu_until`` belong to the row of the whole process (endpoint ``*``): how
many busy threads each process runs, and until when (NULL: until cleared).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = ("network_delay_ms", "cpu_threads", "cpu_until")


def upgrade() -> None:
    # A database adopted from create_all may already have them (see 0001).
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("faults")}
    columns = [
        sa.Column("network_delay_ms", sa.Float(), nullable=False, server_default="0"),
        sa.Column("cpu_threads", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("cpu_until", sa.Float(), nullable=True),
    ]
    missing = [c for c in columns if c.name not in present]
    if missing:
        with op.batch_alter_table("faults") as batch:  # SQLite: NOT NULL columns need a default
            for column in missing:
                batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("faults") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column)
