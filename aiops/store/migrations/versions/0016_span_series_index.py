"""An index for one endpoint's spans over time (the charts, ``telemetry.series``): (service,
endpoint, start_time, kind, duration_ms, error), covering, so a week of one endpoint is an index
scan instead of a read of every span of the week.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

NAME = "ix_spans_endpoint_time"


def upgrade() -> None:
    if NAME not in {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes("spans")}:
        op.create_index(NAME, "spans", ["service", "endpoint", "start_time", "kind", "duration_ms", "error"])


def downgrade() -> None:
    op.drop_index(NAME, table_name="spans")
