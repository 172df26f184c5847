"""direct connections (customer SMPP / CMPP ports) and what the ports owe their customers

Revision ID: 0010_ports
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_ports"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "direct_connections",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("protocol", sa.String(length=8), nullable=False),
        sa.Column("login", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("ip_allowlist", sa.Text(), server_default="", nullable=False),
        sa.Column("max_connections", sa.Integer(), server_default="4", nullable=False),
        sa.Column("tps", sa.Integer(), server_default="0", nullable=False),
        sa.Column("daily_cap", sa.Integer(), server_default="0", nullable=False),
        sa.Column("service_code", sa.String(length=21), server_default="", nullable=False),
        sa.Column("signature", sa.String(length=32), server_default="", nullable=False),
        sa.Column("msg_type", sa.String(length=16), server_default="notification", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("protocol", "login", name="uq_direct_connections_login"),
    )
    op.create_index(op.f("ix_direct_connections_account_id"), "direct_connections", ["account_id"], unique=False)
    op.create_table(
        "port_events",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("connection_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("failures_only", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("customer_id", sa.String(length=64), server_default="", nullable=False),
        sa.Column("source", sa.String(length=32), server_default="", nullable=False),
        sa.Column("destination", sa.String(length=32), server_default="", nullable=False),
        sa.Column("content", sa.Text(), server_default="", nullable=False),
        sa.Column("stat", sa.String(length=16), nullable=True),
        sa.Column("err", sa.String(length=16), nullable=True),
        sa.Column("submitted_at", sa.BigInteger(), nullable=False),
        sa.Column("done_at", sa.BigInteger(), nullable=True),
        sa.Column("next_at", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "connection_daily",
        sa.Column("connection_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("messages", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("connection_id", "day"),
    )
    op.create_index("ix_port_events_ready", "port_events", ["state", "account_id", "next_at"], unique=False)
    op.create_index("ix_port_events_message", "port_events", ["message_id"], unique=False)


def downgrade() -> None:
    op.drop_table("connection_daily")
    op.drop_index("ix_port_events_message", table_name="port_events")
    op.drop_index("ix_port_events_ready", table_name="port_events")
    op.drop_table("port_events")
    op.drop_index(op.f("ix_direct_connections_account_id"), table_name="direct_connections")
    op.drop_table("direct_connections")
