"""archive_months: the month partitions of the archive sealed once their month is over (PostgreSQL; the
table exists on SQLite too, unused there): their rows and parts counted once, and the ids not final then,
so that the purge of a month reads these instead of scanning it (issue 10: a month's purge ≤ 1 s)

Revision ID: 0024_archive_months
Revises: 0022_retention2
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024_archive_months"
down_revision = "0022_retention2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archive_months",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.Column("submits", sa.BigInteger(), nullable=False),
        sa.Column("open_ids", sa.Text(), server_default="[]", nullable=False),
        sa.Column("sealed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("archive_months")
