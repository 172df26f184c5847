"""billing: account billing settings, price plans, packages and their ledger, refund rules, notifications,
statements

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "billing_accounts",
        sa.Column("account_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("min_first_topup_li", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("min_topup_li", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("validity_months", sa.Integer(), server_default="12", nullable=False),
        sa.Column("balance_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("topups", sa.Integer(), server_default="0", nullable=False),
        sa.Column("low_balance_li", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("low_alert_armed", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("alert_email", sa.Text(), nullable=True),
        sa.Column("alert_webhook", sa.Text(), nullable=True),
        sa.Column("alert_mobile", sa.String(length=32), nullable=True),
        sa.Column("billing_email", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_table(
        "price_plans",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("product", sa.String(length=16), nullable=False),
        sa.Column("carrier", sa.String(length=8), server_default="", nullable=False),
        sa.Column("msg_type", sa.String(length=16), server_default="", nullable=False),
        sa.Column("price_li", sa.BigInteger(), nullable=False),
        sa.Column("effective_at", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=64), server_default="", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_price_plans_account", "price_plans", ["account_id", "product", "effective_at"], unique=False)
    op.create_table(
        "packages",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("product", sa.String(length=16), server_default="sms", nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), server_default="", nullable=False),
        sa.Column("total_parts", sa.BigInteger(), nullable=False),
        sa.Column("remaining_parts", sa.BigInteger(), nullable=False),
        sa.Column("price_li", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("starts_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "ref", name="uq_packages_ref"),
    )
    op.create_index("ix_packages_account", "packages", ["account_id", "status", "expires_at"], unique=False)
    op.create_table(
        "package_ledger",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("package_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("parts", sa.BigInteger(), nullable=False),
        sa.Column("remaining_after", sa.BigInteger(), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("package_id", "kind", "ref", name="uq_package_ledger_once"),
    )
    op.create_index("ix_package_ledger_account", "package_ledger", ["account_id", "id"], unique=False)
    op.create_table(
        "package_uses",
        sa.Column("batch_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("package_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("first_message_id", sa.BigInteger(), nullable=False),
        sa.Column("last_message_id", sa.BigInteger(), nullable=False),
        sa.Column("parts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", "package_id"),
    )
    op.create_table(
        "refund_rules",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "kind", "code", name="uq_refund_rules"),
    )
    op.create_table(
        "notifications",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.Text(), server_default="", nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("ref", sa.String(length=64), server_default="", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notifications_account", "notifications", ["account_id", "id"], unique=False)
    op.create_index("ix_notifications_status", "notifications", ["status", "id"], unique=False)
    op.create_table(
        "statements",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("period_start", sa.BigInteger(), nullable=False),
        sa.Column("period_end", sa.BigInteger(), nullable=False),
        sa.Column("opening_li", sa.BigInteger(), nullable=False),
        sa.Column("topups_li", sa.BigInteger(), nullable=False),
        sa.Column("charges_li", sa.BigInteger(), nullable=False),
        sa.Column("refunds_li", sa.BigInteger(), nullable=False),
        sa.Column("expired_li", sa.BigInteger(), nullable=False),
        sa.Column("other_li", sa.BigInteger(), nullable=False),
        sa.Column("closing_li", sa.BigInteger(), nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.Column("parts", sa.BigInteger(), nullable=False),
        sa.Column("package_used", sa.BigInteger(), nullable=False),
        sa.Column("package_expired", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.Text(), server_default="{}", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="issued", nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("dispute_deadline_at", sa.BigInteger(), nullable=False),
        sa.Column("dispute_reason", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.Column("emailed_at", sa.BigInteger(), nullable=True),
        sa.Column("email_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "period", name="uq_statements_period"),
    )


def downgrade() -> None:
    op.drop_table("statements")
    op.drop_index("ix_notifications_status", table_name="notifications")
    op.drop_index("ix_notifications_account", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("refund_rules")
    op.drop_table("package_uses")
    op.drop_index("ix_package_ledger_account", table_name="package_ledger")
    op.drop_table("package_ledger")
    op.drop_index("ix_packages_account", table_name="packages")
    op.drop_table("packages")
    op.drop_index("ix_price_plans_account", table_name="price_plans")
    op.drop_table("price_plans")
    op.drop_table("billing_accounts")
