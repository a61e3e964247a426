"""Incident episodes: ``incidents.episode_at`` says when the current episode began (opened,
reopened, or another kind of fault took over), so a reopened incident describes what fails now.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("incidents")}
    if "episode_at" not in columns:
        with op.batch_alter_table("incidents") as batch:
            batch.add_column(sa.Column("episode_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("episode_at")
