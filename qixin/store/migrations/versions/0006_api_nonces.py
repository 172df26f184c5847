"""durable nonces of signed requests (replay protection across restarts)

Revision ID: 0006_nonces
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_nonces"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_nonces",
        sa.Column("app_key", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("app_key", "nonce"),
    )
    op.create_index(op.f("ix_api_nonces_expires_at"), "api_nonces", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_api_nonces_expires_at"), table_name="api_nonces")
    op.drop_table("api_nonces")
