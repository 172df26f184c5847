"""interception tests (闪测): seeds, tests, their batches, and messages.pin_channel (issue 14)

Revision ID: 0014c_flash
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014c_flash"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("pin_channel", sa.String(length=64), nullable=True))
    op.create_table(
        "flash_seeds",
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("carrier", sa.String(length=8), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("number"),
    )
    op.create_table(
        "flash_tests",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.String(length=32), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("timeout_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_flash_tests_account", "flash_tests", ["account_id", "created_at"], unique=False)
    op.create_table(
        "flash_test_batches",
        sa.Column("test_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=True),
        sa.Column("rejected", sa.Text(), server_default="[]", nullable=False),
        sa.PrimaryKeyConstraint("test_id", "channel"),
    )


def downgrade() -> None:
    op.drop_table("flash_test_batches")
    op.drop_index("ix_flash_tests_account", table_name="flash_tests")
    op.drop_table("flash_tests")
    op.drop_table("flash_seeds")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("pin_channel")
