"""Cycles on demand: ``POST /aiops/analyze`` asks the worker process through ``cycle_requests``
and waits for its answer; ``workers`` says which worker processes are alive.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("cycle_requests"):
        op.create_table(
            "cycle_requests",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("requested_at", sa.Float(), nullable=False, index=True),
            sa.Column("answered_at", sa.Float(), nullable=True),
            sa.Column("answered_by", sa.String(128), nullable=True),
            sa.Column("summary", sa.JSON(), nullable=True),
        )
    if not inspector.has_table("workers"):
        op.create_table(
            "workers",
            sa.Column("name", sa.String(128), primary_key=True),
            sa.Column("started_at", sa.Float(), nullable=False),
            sa.Column("seen_at", sa.Float(), nullable=False),
        )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_table("cycle_requests")
