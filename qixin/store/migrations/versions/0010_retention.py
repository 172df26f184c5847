"""receipt latency histograms (latency_hourly) complaint closures and the retention mark (retention purge)

Revision ID: 0010_retention
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_retention"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "latency_hourly",
        sa.Column("hour", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("bucket", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("submit_receipt", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("accept_final", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("hour", "channel", "account_id", "bucket"),
    )
    op.create_index("ix_latency_hourly_account_hour", "latency_hourly", ["account_id", "hour"], unique=False)
    op.create_table(
        "complaint_closures",
        sa.Column("complaint_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("closed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("complaint_id"),
    )
    op.create_table(
        "retention_marks",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("before_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("retention_marks")
    op.drop_table("complaint_closures")
    op.drop_index("ix_latency_hourly_account_hour", table_name="latency_hourly")
    op.drop_table("latency_hourly")
