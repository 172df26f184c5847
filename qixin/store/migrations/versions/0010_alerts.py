"""alerts: rules (seeded with the defaults), fired/resolved/acknowledged alerts; maintenance announcements

Revision ID: 0010_alerts
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0010_alerts"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# domain/alerts.py DEFAULT_RULES at the time of this migration: kind, scope, threshold, for, window, min
_DEFAULTS = (
    ("channel_down", "channel", 0, 60, 0, 0),
    ("success_rate", "channel", 80, 0, 3600, 100),
    ("success_rate", "account", 80, 0, 3600, 100),
    ("queue_lag", "platform", 300, 0, 0, 0),
    ("receipts_stopped", "channel", 0, 600, 0, 0),
    ("webhook_dead_letters", "account", 1, 0, 86400, 0),
    ("balance_low", "account", 10000, 0, 0, 0),
)


def upgrade() -> None:
    rules = op.create_table(
        "alert_rules",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("threshold", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("for_seconds", sa.Integer(), server_default="0", nullable=False),
        sa.Column("window_seconds", sa.Integer(), server_default="0", nullable=False),
        sa.Column("min_messages", sa.Integer(), server_default="0", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "scope", name="uq_alert_rules_kind_scope"),
    )
    now = int(time.time() * 1000)
    op.bulk_insert(
        rules,
        [
            {
                "kind": k,
                "scope": s,
                "threshold": t,
                "for_seconds": f,
                "window_seconds": w,
                "min_messages": m,
                "enabled": True,
                "updated_at": now,
            }
            for k, s, t, f, w, m in _DEFAULTS
        ],
    )
    op.create_table(
        "alerts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("rule_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=96), nullable=False),
        sa.Column("value", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("fired_at", sa.BigInteger(), nullable=False),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("acknowledged_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alerts_open", "alerts", ["resolved_at", "rule_id"], unique=False)
    op.create_index("ix_alerts_fired", "alerts", ["fired_at"], unique=False)
    op.create_table(
        "announcements",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.BigInteger(), nullable=False),
        sa.Column("ends_at", sa.BigInteger(), nullable=True),
        sa.Column("audience", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="published", nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("published_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_announcements_starts", "announcements", ["starts_at"], unique=False)
    op.create_table(
        "announcement_accounts",
        sa.Column("announcement_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("announcement_id", "account_id"),
    )
    op.create_index("ix_announcement_accounts_account", "announcement_accounts", ["account_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_announcement_accounts_account", table_name="announcement_accounts")
    op.drop_table("announcement_accounts")
    op.drop_index("ix_announcements_starts", table_name="announcements")
    op.drop_table("announcements")
    op.drop_index("ix_alerts_fired", table_name="alerts")
    op.drop_index("ix_alerts_open", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("alert_rules")
