"""channels as data, extension codes, ported numbers, uplink messages

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "channels",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("protocol", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=128), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("service_code", sa.String(length=21), server_default="", nullable=False),
        sa.Column("options", sa.Text(), server_default="{}", nullable=False),
        sa.Column("tps", sa.Integer(), server_default="0", nullable=False),
        sa.Column("window_size", sa.Integer(), server_default="16", nullable=False),
        sa.Column("connections", sa.Integer(), server_default="1", nullable=False),
        sa.Column("carriers", sa.String(length=64), server_default="", nullable=False),
        sa.Column("msg_types", sa.String(length=64), server_default="", nullable=False),
        sa.Column("accounts", sa.Text(), server_default="", nullable=False),
        sa.Column("priority", sa.Integer(), server_default="100", nullable=False),
        sa.Column("weight", sa.Integer(), server_default="1", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("embedded", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "extensions",
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_index(op.f("ix_extensions_account_id"), "extensions", ["account_id"], unique=False)
    op.create_table(
        "ported_numbers",
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("carrier", sa.String(length=8), nullable=False),
        sa.Column("learned_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("number"),
    )
    op.create_index("ix_ported_numbers_learned", "ported_numbers", ["learned_at"], unique=False)
    op.create_table(
        "receipt_inbox",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("carrier_msg_id", sa.String(length=64), nullable=False),
        sa.Column("stat", sa.String(length=16), nullable=False),
        sa.Column("err", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "channel_health",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("health", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "mo_messages",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("destination", sa.String(length=32), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_mo_messages_account_id"), "mo_messages", ["account_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_mo_messages_account_id"), table_name="mo_messages")
    op.drop_table("mo_messages")
    op.drop_table("channel_health")
    op.drop_table("receipt_inbox")
    op.drop_index("ix_ported_numbers_learned", table_name="ported_numbers")
    op.drop_table("ported_numbers")
    op.drop_index(op.f("ix_extensions_account_id"), table_name="extensions")
    op.drop_table("extensions")
    op.drop_table("channels")
