"""Service level objectives: ``slos`` holds each objective (from the API or ``AIOPS_SLO_FILE``), its
last evaluation (burn rates, status, budget remaining) and the daily counts of completed days.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("slos"):
        return
    op.create_table(
        "slos",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("service", sa.String(255), nullable=False),
        sa.Column("endpoint", sa.String(512), nullable=False),
        sa.Column("sli", sa.String(16), nullable=False),
        sa.Column("objective", sa.Float(), nullable=False),
        sa.Column("threshold_ms", sa.Float(), nullable=True),
        sa.Column("min_rps", sa.Float(), nullable=True),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("evaluated_at", sa.Float(), nullable=True),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("burn_rates", sa.JSON(), nullable=True),
        sa.Column("budget_remaining", sa.Float(), nullable=True),
        sa.Column("daily", sa.JSON(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("slos")
