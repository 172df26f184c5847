"""compliance: account policies, opt-outs, blacklist, violations, versioned lexicon, complaints,
batch audience, signature purpose and qualification documents

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "account_policies",
        sa.Column("account_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("permit_24h", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("international", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("link_policy", sa.String(length=16), server_default="allowed", nullable=False),
        sa.Column("allowed_domains", sa.Text(), server_default="", nullable=False),
        sa.Column("limits", sa.Text(), server_default="{}", nullable=False),
        sa.Column("optout_words", sa.Text(), server_default="", nullable=False),
        sa.Column("max_number_run", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_table(
        "optouts",
        sa.Column("account_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("signature", sa.String(length=32), server_default="", nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "number", "signature"),
    )
    op.create_table(
        "blacklist",
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("number"),
    )
    op.create_table(
        "violations",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), server_default="{}", nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_violations_account_created", "violations", ["account_id", "created_at"], unique=False)
    op.create_table(
        "lexicon_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "lexicon_entries",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("word", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=32), server_default="", nullable=False),
        sa.Column("added_in", sa.Integer(), nullable=False),
        sa.Column("removed_in", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_lexicon_entries_word", "lexicon_entries", ["kind", "word"], unique=False)
    op.create_table(
        "complaints",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_complaints_number", "complaints", ["number"], unique=False)
    op.create_table(
        "batch_audience",
        sa.Column("batch_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("audience", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("batch_id"),
    )
    op.create_table(
        "signature_info",
        sa.Column("signature_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.Text(), server_default="", nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("signature_id"),
    )
    op.create_table(
        "qualification_documents",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("signature_id", sa.BigInteger(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_qualification_documents_signature_id", "qualification_documents", ["signature_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_qualification_documents_signature_id", table_name="qualification_documents")
    op.drop_table("qualification_documents")
    op.drop_table("signature_info")
    op.drop_table("batch_audience")
    op.drop_index("ix_complaints_number", table_name="complaints")
    op.drop_table("complaints")
    op.drop_index("ix_lexicon_entries_word", table_name="lexicon_entries")
    op.drop_table("lexicon_entries")
    op.drop_table("lexicon_versions")
    op.drop_index("ix_violations_account_created", table_name="violations")
    op.drop_table("violations")
    op.drop_table("blacklist")
    op.drop_table("optouts")
    op.drop_table("account_policies")
