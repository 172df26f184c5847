"""the lean statistics rollup (stats_hourly_core): hour × account × type × carrier × status × reason, kept
with stats_hourly for the queries that group and filter by those dimensions only (issue 10: a 30-day
query for one account by day and carrier over 10,000,000 messages ≤ 100 ms), filled from stats_hourly

Revision ID: 0023_stats_core
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023_stats_core"
down_revision = "0008"
branch_labels = None
depends_on = None

KEY = ("account_id", "hour", "type", "carrier", "status", "reason")


def upgrade() -> None:
    op.create_table(
        "stats_hourly_core",
        sa.Column("account_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hour", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("carrier", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=24), nullable=False),
        sa.Column("messages", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("parts", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("fee_li", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint(*KEY),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_stats_hourly_core_hour", "stats_hourly_core", ["hour"])
    keys = ", ".join(KEY)
    op.execute(
        f"INSERT INTO stats_hourly_core ({keys}, messages, parts, fee_li)"
        f" SELECT {keys}, SUM(messages), SUM(parts), SUM(fee_li) FROM stats_hourly GROUP BY {keys}"
    )


def downgrade() -> None:
    op.drop_index("ix_stats_hourly_core_hour", table_name="stats_hourly_core")
    op.drop_table("stats_hourly_core")
