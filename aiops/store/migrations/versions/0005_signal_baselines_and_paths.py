"""Robust baselines for every series (self time, durations, edges), incidents' propagation paths,
the data clock of the last window (stale baselines after a long silence) and the
evidence carried between windows.

``signal_baselines`` replaces ``self_time_baselines``: one row per series,
keyed (signal, source, target): ``("self", service, endpoint)``,
``("duration", service, endpoint)``, ``("gap" | "call" | "server", caller,
callee)``. The old rows were mean/variance baselines; the new ones are
median/MAD with a tail rate, so they are relearned rather than converted
(a few normal windows).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database adopted from create_all may already have part of this (see 0001).
    inspector = sa.inspect(op.get_bind())
    if "propagation" not in {c["name"] for c in inspector.get_columns("incidents")}:
        with op.batch_alter_table("incidents") as batch:
            batch.add_column(sa.Column("propagation", sa.JSON(), nullable=True))
    state = {c["name"] for c in inspector.get_columns("detection_state")}
    if "last_data_at" not in state:
        with op.batch_alter_table("detection_state") as batch:
            batch.add_column(sa.Column("last_data_at", sa.Float(), nullable=True))
            batch.add_column(sa.Column("relearn_until", sa.Float(), nullable=True))
            batch.add_column(sa.Column("pending", sa.JSON(), nullable=True))
    if inspector.has_table("self_time_baselines"):
        op.drop_table("self_time_baselines")
    if inspector.has_table("signal_baselines"):
        return
    op.create_table(
        "signal_baselines",
        sa.Column("signal", sa.String(16), primary_key=True),
        sa.Column("source", sa.String(255), primary_key=True),
        sa.Column("target", sa.String(512), primary_key=True),
        sa.Column("center", sa.Float(), nullable=False),
        sa.Column("var", sa.Float(), nullable=False),
        sa.Column("tail", sa.Float(), nullable=False),
        sa.Column("far", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("windows", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("detection_state") as batch:
        batch.drop_column("pending")
        batch.drop_column("relearn_until")
        batch.drop_column("last_data_at")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("propagation")
    op.create_table(
        "self_time_baselines",
        sa.Column("service", sa.String(255), primary_key=True),
        sa.Column("endpoint", sa.String(512), primary_key=True),
        sa.Column("mean_log", sa.Float(), nullable=False),
        sa.Column("var_log", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("windows", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.drop_table("signal_baselines")
