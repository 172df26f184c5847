"""privacy numbers: recipient tokens and messages.token (issue 14)

Revision ID: 0014b_tokens
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014b_tokens"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recipient_tokens",
        sa.Column("token", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("number_sealed", sa.Text(), nullable=False),
        sa.Column("number_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token"),
    )
    op.create_index("ix_recipient_tokens_number", "recipient_tokens", ["account_id", "number_hash"], unique=False)
    op.add_column("messages", sa.Column("token", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("token")
    op.drop_index("ix_recipient_tokens_number", table_name="recipient_tokens")
    op.drop_table("recipient_tokens")
