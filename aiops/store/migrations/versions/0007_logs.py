"""Logs as a second signal: the ``logs`` table (OTLP log records and the product's own logs).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("logs"):
        return
    op.create_table(
        "logs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("service", sa.String(255), nullable=False),
        sa.Column("severity_number", sa.SmallInteger(), nullable=False),
        sa.Column("severity_text", sa.String(32), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("trace_id", sa.String(32), nullable=True),
        sa.Column("span_id", sa.String(16), nullable=True),
        sa.Column("attributes", sa.Text(), nullable=True),
        sa.Column("template_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_logs_time", "logs", ["time"])
    op.create_index("ix_logs_service_time", "logs", ["service", "time"])
    op.create_index("ix_logs_trace_id", "logs", ["trace_id"])
    op.create_index("ix_logs_template_id", "logs", ["template_id"])


def downgrade() -> None:
    op.drop_table("logs")
