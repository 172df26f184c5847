"""per-account flow control and callback formats (issue 12)

Revision ID: 0010_aliyun
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_aliyun"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_flow",
        sa.Column("account_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("tps", sa.Integer(), server_default="0", nullable=False),
        sa.Column("daily_cap", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_table(
        "callback_formats",
        sa.Column("api_key_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("api_key_id"),
    )


def downgrade() -> None:
    op.drop_table("callback_formats")
    op.drop_table("account_flow")
