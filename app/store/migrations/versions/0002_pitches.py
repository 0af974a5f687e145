"""pitches and takes: the `pitches` table and a session's pitch, take number and target length

Revision ID: 0002_pitches
Revises: 0001_initial
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_pitches"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pitches",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=128), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("target_duration_s", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("takes_started", sa.Integer(), nullable=False),
        sa.Column("deleting_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    # Plain ADD COLUMNs and an index: SQLite does them in place (no table copy).
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pitch_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("take", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("target_duration_s", sa.Float(), nullable=True))
        batch_op.create_index(batch_op.f("ix_sessions_pitch_id"), ["pitch_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_pitch_id"))
        batch_op.drop_column("target_duration_s")
        batch_op.drop_column("take")
        batch_op.drop_column("pitch_id")
    op.drop_table("pitches")
