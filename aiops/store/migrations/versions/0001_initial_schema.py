"""Initial schema: spans, baselines, detection state and history, incidents, anomalies, faults.

Exactly what ``db.create_all()`` made before the project used migrations.
Such a database (tables, no ``alembic_version``) is *adopted*: with the
``adopt`` attribute set by :func:`aiops.store.schema.upgrade`, tables and
indexes that exist are left alone, missing ones are created, and the one
known drift of older databases is fixed (``detection_state.cursor`` was an
INTEGER before it became a BIGINT).

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _adopting() -> bool:
    return bool(context.config.attributes.get("adopt"))


def _table(name: str, *columns, indexes: tuple[tuple[str, list[str]], ...] = ()) -> None:
    """Create a table and its indexes, unless adopting a database that already has the table."""
    if _adopting() and sa.inspect(op.get_bind()).has_table(name):
        present = {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes(name)}
        indexes = tuple(ix for ix in indexes if ix[0] not in present)
    else:
        op.create_table(name, *columns)
    for index_name, index_columns in indexes:
        op.create_index(index_name, name, index_columns, unique=False)


def upgrade() -> None:
    _table(
        "baselines",
        sa.Column("service", sa.String(length=255), nullable=False),
        sa.Column("endpoint", sa.String(length=512), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("error_rate", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("windows", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("service", "endpoint"),
    )
    _table(
        "self_time_baselines",
        sa.Column("service", sa.String(length=255), nullable=False),
        sa.Column("endpoint", sa.String(length=512), nullable=False),
        sa.Column("mean_log", sa.Float(), nullable=False),
        sa.Column("var_log", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("windows", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("service", "endpoint"),
    )
    _table(
        "detection_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("last_cycle_at", sa.Float(), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("cycles", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    if _adopting():
        cursor = next(c for c in sa.inspect(op.get_bind()).get_columns("detection_state")
                      if c["name"] == "cursor")
        if not isinstance(cursor["type"], sa.BigInteger):
            with op.batch_alter_table("detection_state") as batch:  # SQLite: a copy of the table
                batch.alter_column("cursor", type_=sa.BigInteger(), existing_nullable=False)
    _table(
        "detection_cycles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("spans", sa.Integer(), nullable=False),
        sa.Column("anomalies", sa.Integer(), nullable=False),
        sa.Column("incidents_opened", sa.Integer(), nullable=False),
        sa.Column("incidents_updated", sa.Integer(), nullable=False),
        sa.Column("incidents_resolved", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        indexes=(("ix_detection_cycles_started_at", ["started_at"]),),
    )
    _table(
        "incidents",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("root_service", sa.String(length=255), nullable=False),
        sa.Column("root_endpoint", sa.String(length=512), nullable=False),
        sa.Column("root_issue", sa.Text(), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("affected", sa.JSON(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.Column("correlated_failures", sa.JSON(), nullable=False),
        sa.Column("first_detected", sa.Float(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.Column("resolved_at", sa.Float(), nullable=True),
        sa.Column("clean_cycles", sa.Integer(), nullable=False),
        sa.Column("timeline", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        indexes=(("ix_incidents_status", ["status"]),),
    )
    _table(
        "anomalies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("service", sa.String(length=255), nullable=False),
        sa.Column("endpoint", sa.String(length=512), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("observed", sa.Float(), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=True),
        sa.Column("request_count", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("detected_at", sa.Float(), nullable=False),
        sa.Column("trace_ids", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
        indexes=(("ix_anomalies_incident_id", ["incident_id"]),),
    )
    _table(
        "spans",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("parent_span_id", sa.String(length=16), nullable=True),
        sa.Column("service", sa.String(length=255), nullable=False),
        sa.Column("endpoint", sa.String(length=512), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Boolean(), nullable=False),
        sa.Column("start_time", sa.Float(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("peer", sa.String(length=512), nullable=True),
        sa.Column("exception_type", sa.String(length=255), nullable=True),
        sa.Column("exception_message", sa.Text(), nullable=True),
        sa.Column("exception_stack", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        indexes=(("ix_spans_trace_id", ["trace_id"]), ("ix_spans_start_time", ["start_time"])),
    )
    _table(
        "faults",
        sa.Column("endpoint", sa.String(length=64), nullable=False),
        sa.Column("delay_ms", sa.Float(), nullable=False),
        sa.Column("error_rate", sa.Float(), nullable=False),
        sa.Column("timeout", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint"),
    )


def downgrade() -> None:
    for index_name, table in (
        ("ix_spans_start_time", "spans"),
        ("ix_spans_trace_id", "spans"),
        ("ix_anomalies_incident_id", "anomalies"),
        ("ix_incidents_status", "incidents"),
        ("ix_detection_cycles_started_at", "detection_cycles"),
    ):
        op.drop_index(index_name, table_name=table)
    for table in ("faults", "spans", "anomalies", "incidents", "detection_cycles", "detection_state",
                  "self_time_baselines", "baselines"):
        op.drop_table(table)
