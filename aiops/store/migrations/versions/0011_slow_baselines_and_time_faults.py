"""The patterns told apart by time: each endpoint's slow latency baseline and expected traffic
(``baselines.slow_ms``, ``slow_windows``, ``traffic_ratio``, ``traffic_windows``: see
``aiops.detection.degradation`` and ``aiops.detection.traffic``), and the demo faults that show
them (``faults.degrade_factor``, ``degrade_ramp_s``, ``degrade_since``: latency growing linearly
from the injection; ``faults.stopped``: the endpoint refuses its connections).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _columns() -> dict[str, list[sa.Column]]:
    return {
        "baselines": [
            sa.Column("slow_ms", sa.Float(), nullable=True),
            sa.Column("slow_windows", sa.Integer(), nullable=False, server_default="0"),
            sa.Column("traffic_ratio", sa.Float(), nullable=True),
            sa.Column("traffic_windows", sa.Integer(), nullable=False, server_default="0"),
        ],
        "faults": [
            sa.Column("degrade_factor", sa.Float(), nullable=False, server_default="0"),
            sa.Column("degrade_ramp_s", sa.Float(), nullable=False, server_default="0"),
            sa.Column("degrade_since", sa.Float(), nullable=True),
            sa.Column("stopped", sa.Boolean(), nullable=False, server_default=sa.false()),
        ],
    }


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, columns in _columns().items():
        # A database adopted from create_all may already have them (see 0001).
        present = {c["name"] for c in inspector.get_columns(table)}
        missing = [c for c in columns if c.name not in present]
        if missing:
            with op.batch_alter_table(table) as batch:  # SQLite: NOT NULL columns need a default
                for column in missing:
                    batch.add_column(column)


def downgrade() -> None:
    for table, columns in _columns().items():
        with op.batch_alter_table(table) as batch:
            for column in reversed(columns):
                batch.drop_column(column.name)
