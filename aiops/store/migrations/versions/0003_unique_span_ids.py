"""Spans are unique by (trace_id, span_id): a repeated span is stored once.

Removes the duplicates an older database may hold (keeping the first stored
copy), then replaces the trace_id index with a unique (trace_id, span_id) one,
which serves the same trace lookups through its prefix.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    indexes = {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes("spans")}
    if "ux_spans_trace_span" not in indexes:  # (a database adopted from create_all has it)
        op.execute(
            "DELETE FROM spans WHERE id NOT IN (SELECT MIN(id) FROM spans GROUP BY trace_id, span_id)"
        )
        op.create_index("ux_spans_trace_span", "spans", ["trace_id", "span_id"], unique=True)
    if "ix_spans_trace_id" in indexes:
        op.drop_index("ix_spans_trace_id", table_name="spans")


def downgrade() -> None:
    op.create_index("ix_spans_trace_id", "spans", ["trace_id"], unique=False)
    op.drop_index("ux_spans_trace_span", table_name="spans")
