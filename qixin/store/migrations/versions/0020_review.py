"""manual review of content (人工审核): held batches, staff decisions, retrained classifier models;
account_policies.promo_as; packages frozen with their account (issue 15)

Revision ID: 0020_review
Revises: 0003b
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_review"
down_revision = "0003b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account_policies") as batch:
        batch.add_column(sa.Column("promo_as", sa.String(length=16), server_default="marketing", nullable=False))
    op.create_table(
        "review_holds",
        sa.Column("batch_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("send_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("batch_id"),
    )
    op.create_index("ix_review_holds_status", "review_holds", ["status", "expires_at"], unique=False)
    op.create_table(
        "classifier_decisions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("label", sa.String(length=32), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "package_freezes",
        sa.Column("package_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("frozen_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("package_id"),
    )
    op.create_index("ix_package_freezes_account_id", "package_freezes", ["account_id"], unique=False)
    op.create_table(
        "classifier_models",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("decisions", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version"),
    )


def downgrade() -> None:
    op.drop_table("classifier_models")
    op.drop_index("ix_package_freezes_account_id", table_name="package_freezes")
    op.drop_table("package_freezes")
    op.drop_table("classifier_decisions")
    op.drop_index("ix_review_holds_status", table_name="review_holds")
    op.drop_table("review_holds")
    with op.batch_alter_table("account_policies") as batch:
        batch.drop_column("promo_as")
