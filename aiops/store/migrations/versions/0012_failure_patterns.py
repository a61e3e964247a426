"""Failure patterns (issue 21): what fails, its cooldown, and the demo faults that show it.

- ``anomalies.pattern``: what the evidence says fails (``dependency``, ``exhaustion``,
  ``invalid_response``; NULL: it does not say), read by the incident report's kind;
- ``incidents.paged_at`` and ``incidents.paged_kind``: when the incident last paged (a trigger
  went out) and as which kind, for the per-pattern cooldowns (aiops.incidents.cooldowns);
- ``faults.dependency`` (``refused``, ``dns``, ``5xx``), ``faults.exhaust`` (``pool``,
  ``memory``, ``fds``, ``disk``) and ``faults.invalid``: the demo's faults for them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None



def _columns() -> dict[str, tuple[sa.Column, ...]]:
    return {
        "anomalies": (sa.Column("pattern", sa.String(32), nullable=True),),
        "incidents": (sa.Column("paged_at", sa.Float(), nullable=True),
                      sa.Column("paged_kind", sa.String(32), nullable=True)),
        "faults": (sa.Column("dependency", sa.String(16), nullable=True),
                   sa.Column("exhaust", sa.String(16), nullable=True),
                   sa.Column("invalid", sa.Boolean(), nullable=False, server_default=sa.false())),
    }


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, columns in _columns().items():
        # A database adopted from create_all may already have them (see 0001).
        present = {c["name"] for c in inspector.get_columns(table)}
        missing = [c for c in columns if c.name not in present]
        if missing:
            with op.batch_alter_table(table) as batch:
                for column in missing:
                    batch.add_column(column)


def downgrade() -> None:
    for table, columns in _columns().items():
        with op.batch_alter_table(table) as batch:
            for column in reversed(columns):
                batch.drop_column(column.name)
