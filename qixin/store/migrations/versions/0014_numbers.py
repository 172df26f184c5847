"""number services: status check results (issue 14) and the messages-by-number index

Revision ID: 0014_numbers
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_numbers"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_number", "messages", ["number"], unique=False)
    op.create_table(
        "number_checks",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("charged", sa.Integer(), nullable=False),
        sa.Column("fee_li", sa.BigInteger(), nullable=False),
        sa.Column("unit_li", sa.BigInteger(), nullable=False),
        sa.Column("counts", sa.Text(), server_default="{}", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_number_checks_account", "number_checks", ["account_id", "created_at"], unique=False)
    op.create_table(
        "number_check_results",
        sa.Column("check_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("class", sa.String(length=8), nullable=False),
        sa.Column("carrier", sa.String(length=8), nullable=False),
        sa.Column("province", sa.String(length=16), server_default="", nullable=False),
        sa.Column("ported", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("confidence_pm", sa.SmallInteger(), nullable=False),
        sa.Column("evidence", sa.Text(), server_default="", nullable=False),
        sa.Column("billed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("check_id", "seq"),
    )


def downgrade() -> None:
    op.drop_table("number_check_results")
    op.drop_index("ix_number_checks_account", table_name="number_checks")
    op.drop_table("number_checks")
    op.drop_index("ix_messages_number", table_name="messages")
