"""The demo's collector failure (``POST /simulate/collector-failure``): ``faults.until``, when a
fault that lasts a while ends (the row ``otlp-collector`` uses it; see :mod:`simulation.faults`).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("faults")}
    if "until" not in present:  # a database adopted from create_all may have it (see 0001)
        with op.batch_alter_table("faults") as batch:
            batch.add_column(sa.Column("until", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("faults") as batch:
        batch.drop_column("until")
