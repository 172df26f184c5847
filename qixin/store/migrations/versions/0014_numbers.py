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
    final = sa.text("status IN ('delivered', 'undelivered', 'expired')")
    op.create_index(
        "ix_messages_number", "messages", ["number"], unique=False, sqlite_where=final, postgresql_where=final
    )
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
        "number_check_pages",
        sa.Column("check_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("page", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rows", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("check_id", "page"),
    )


def downgrade() -> None:
    op.drop_table("number_check_pages")
    op.drop_index("ix_number_checks_account", table_name="number_checks")
    op.drop_table("number_checks")
    op.drop_index("ix_messages_number", table_name="messages")
