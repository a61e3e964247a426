"""A span's attributes and its resource's (``spans.attributes``, compact JSON, NULL when none):
what "what changed" compares (pods, hosts, versions, any attribute value), the export sends back
out and the Tempo API shows. A nullable column without a default: adding it rewrites no row on
SQLite or PostgreSQL, so the migration is instant on a large table; old spans keep NULL.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "attributes" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("spans")}:
        op.add_column("spans", sa.Column("attributes", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("spans") as batch:
        batch.drop_column("attributes")
