"""Log templates and the log memory: ``log_templates`` (what each service's lines say, by drain3
cluster id), ``log_miners`` (each service's miner snapshot) and ``log_memory`` (the log baselines
and the log store cursor), so template ids and baselines survive a restart.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("log_templates"):
        op.create_table(
            "log_templates",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("service", sa.String(255), nullable=False),
            sa.Column("template_id", sa.Integer(), nullable=False),
            sa.Column("template", sa.Text(), nullable=False),
            sa.Column("first_seen", sa.Float(), nullable=False),
            sa.Column("last_seen", sa.Float(), nullable=False),
            sa.Column("count", sa.BigInteger(), nullable=False),
            sa.Column("exception", sa.Boolean(), nullable=False),
        )
        op.create_index("ux_log_templates_service_template", "log_templates", ["service", "template_id"],
                        unique=True)
        op.create_index("ix_log_templates_first_seen", "log_templates", ["first_seen"])
    if not inspector.has_table("log_miners"):
        op.create_table(
            "log_miners",
            sa.Column("service", sa.String(255), primary_key=True),
            sa.Column("state", sa.LargeBinary(), nullable=False),
            sa.Column("updated_at", sa.Float(), nullable=False),
        )
    if not inspector.has_table("log_memory"):
        op.create_table(
            "log_memory",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("cursor", sa.BigInteger(), nullable=True),
            sa.Column("baselines", sa.JSON(), nullable=False),
            sa.Column("updated_at", sa.Float(), nullable=False),
        )


def downgrade() -> None:
    op.drop_table("log_memory")
    op.drop_table("log_miners")
    op.drop_table("log_templates")
