"""Incident lifecycle columns, the notification outbox and per-channel state.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database adopted from create_all may already have all of this (see 0001).
    inspector = sa.inspect(op.get_bind())
    present = {c["name"] for c in inspector.get_columns("incidents")}
    columns = [
        sa.Column("seen_cycles", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("confirmed_at", sa.Float(), nullable=True),
        sa.Column("reopen_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("related_to", sa.String(length=64), nullable=True),
        sa.Column("last_notified_at", sa.Float(), nullable=True),
        sa.Column("remediation", sa.String(length=16), nullable=True),
        sa.Column("remediation_at", sa.Float(), nullable=True),
    ]
    missing = [c for c in columns if c.name not in present]
    if missing:
        with op.batch_alter_table("incidents") as batch:  # SQLite: NOT NULL columns need a default
            for column in missing:
                batch.add_column(column)
    if inspector.has_table("notifications"):
        return
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("channel", "incident_id", "status", "created_at", "next_attempt_at"):
        op.create_index(f"ix_notifications_{column}", "notifications", [column], unique=False)
    op.create_table(
        "notification_channels",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("open_until", sa.Float(), nullable=True),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("notification_channels")
    for column in ("channel", "incident_id", "status", "created_at", "next_attempt_at"):
        op.drop_index(f"ix_notifications_{column}", table_name="notifications")
    op.drop_table("notifications")
    with op.batch_alter_table("incidents") as batch:
        for column in ("remediation_at", "remediation", "last_notified_at", "related_to", "reopen_count",
                       "confirmed_at", "seen_cycles"):
            batch.drop_column(column)
