"""Trace-query rules: ``rules`` holds each rule (TraceQL query, window, aggregation, threshold,
webhook) and its last evaluation; ``rule_alerts`` the alerts they raised (see :mod:`aiops.rules`).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tables = sa.inspect(op.get_bind()).get_table_names()
    if "rules" not in tables:
        op.create_table(
            "rules",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("name", sa.String(255), nullable=False, unique=True),
            sa.Column("kind", sa.String(32), nullable=False),
            sa.Column("query", sa.Text(), nullable=False),
            sa.Column("window_s", sa.Float(), nullable=False),
            sa.Column("aggregation", sa.String(16), nullable=False),
            sa.Column("threshold", sa.Float(), nullable=False),
            sa.Column("severity", sa.String(16), nullable=False),
            sa.Column("webhook_url", sa.Text(), nullable=True),
            sa.Column("source", sa.String(16), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("updated_at", sa.Float(), nullable=False),
            sa.Column("evaluated_at", sa.Float(), nullable=True),
            sa.Column("lease_until", sa.Float(), nullable=True),
            sa.Column("lease_owner", sa.String(128), nullable=True),
            sa.Column("status", sa.String(16), nullable=True),
            sa.Column("value", sa.Float(), nullable=True),
            sa.Column("last_error", sa.Text(), nullable=True),
            sa.Column("last_notified_at", sa.Float(), nullable=True),
        )
    if "rule_alerts" not in tables:
        op.create_table(
            "rule_alerts",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("rule_id", sa.Integer(), nullable=False),
            sa.Column("rule", sa.String(255), nullable=False),
            sa.Column("anomaly_type", sa.String(32), nullable=False),
            sa.Column("fingerprint", sa.String(64), nullable=False),
            sa.Column("trace_id", sa.String(32), nullable=True),
            sa.Column("span_name", sa.String(512), nullable=True),
            sa.Column("service", sa.String(255), nullable=True),
            sa.Column("duration_ms", sa.Float(), nullable=True),
            sa.Column("error_message", sa.Text(), nullable=True),
            sa.Column("aggregation", sa.String(16), nullable=False),
            sa.Column("value", sa.Float(), nullable=False),
            sa.Column("threshold", sa.Float(), nullable=False),
            sa.Column("affected_traces", sa.Integer(), nullable=False),
            sa.Column("total_traces", sa.Integer(), nullable=False),
            sa.Column("trace_ids", sa.JSON(), nullable=False),
            sa.Column("severity", sa.String(16), nullable=False),
            sa.Column("notification", sa.String(16), nullable=False),
            sa.Column("first_seen", sa.Float(), nullable=False),
            sa.Column("last_seen", sa.Float(), nullable=False),
            sa.Column("seen", sa.Integer(), nullable=False),
        )
        op.create_index("ix_rule_alerts_anomaly_type", "rule_alerts", ["anomaly_type"])
        op.create_index("ix_rule_alerts_first_seen", "rule_alerts", ["first_seen"])
        op.create_index("ix_rule_alerts_rule_first_seen", "rule_alerts", ["rule_id", "first_seen"])


def downgrade() -> None:
    op.drop_table("rule_alerts")
    op.drop_table("rules")
