"""statistics rollups by hour (stats_hourly), filled from the messages already stored

Revision ID: 0008
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0002"
branch_labels = None
depends_on = None

DIMS = ("hour", "account_id", "signature", "template_id", "type", "carrier", "province", "channel", "status", "reason")


def upgrade() -> None:
    op.create_table(
        "stats_hourly",
        sa.Column("hour", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("signature", sa.String(length=32), nullable=False),
        sa.Column("template_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("carrier", sa.String(length=8), nullable=False),
        sa.Column("province", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=24), nullable=False),
        sa.Column("messages", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("parts", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("fee_li", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint(*DIMS),
    )
    op.create_index("ix_stats_hourly_account_hour", "stats_hourly", ["account_id", "hour"])
    # messages stored before the rollups existed (their failure reason is recomputed by `qixin stats rebuild`)
    op.execute(
        "INSERT INTO stats_hourly (hour, account_id, signature, template_id, type, carrier, province, channel,"
        " status, reason, messages, parts, fee_li)"
        " SELECT (m.created_at / 3600000) * 3600000, m.account_id, b.signature, COALESCE(b.template_id, 0), m.type,"
        " m.carrier, m.province, COALESCE(m.channel, ''), m.status, '', COUNT(*), SUM(m.parts), SUM(m.fee_li)"
        " FROM messages m JOIN batches b ON b.id = m.batch_id"
        " GROUP BY (m.created_at / 3600000) * 3600000, m.account_id, b.signature, COALESCE(b.template_id, 0),"
        " m.type, m.carrier, m.province, COALESCE(m.channel, ''), m.status"
    )


def downgrade() -> None:
    op.drop_index("ix_stats_hourly_account_hour", table_name="stats_hourly")
    op.drop_table("stats_hourly")
