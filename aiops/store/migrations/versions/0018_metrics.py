"""Metrics as a third signal: the ``metric_points`` table (OTLP metric points reduced to numeric
series, ``telemetry.otlp_metrics``), indexed by (service, name, time) and by time (retention).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("metric_points"):
        return
    op.create_table(
        "metric_points",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("service", sa.String(255), nullable=False),
        sa.Column("pod", sa.String(255), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=True),
        sa.Column("value", sa.Float(), nullable=False),
    )
    op.create_index("ix_metric_points_service_name_time", "metric_points", ["service", "name", "time"])
    op.create_index("ix_metric_points_time", "metric_points", ["time"])


def downgrade() -> None:
    op.drop_table("metric_points")
