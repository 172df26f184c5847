"""number services, part two (issue 14): the latest 空号 / 沉默号 class per account and number (skip in
batch sends) and the number-check provider probes

Revision ID: 0020_numbers2
Revises: 0015_rowid_keys
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_numbers2"
down_revision = "0015_rowid_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "number_marks",
        sa.Column("account_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("cls", sa.String(length=8), nullable=False),
        sa.Column("checked_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "number"),
    )
    op.create_table(
        "numcheck_probes",
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("latency_ms", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.String(length=200), server_default="", nullable=False),
        sa.Column("failures", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("probed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("provider"),
    )
    rules = sa.table(
        "alert_rules",
        sa.column("kind", sa.String), sa.column("scope", sa.String), sa.column("threshold", sa.BigInteger),
        sa.column("for_seconds", sa.BigInteger), sa.column("window_seconds", sa.BigInteger),
        sa.column("min_messages", sa.BigInteger), sa.column("enabled", sa.Boolean),
        sa.column("updated_at", sa.BigInteger),
    )  # fmt: skip
    # the probe alert: a failed probe, or one slower than 1,000 ms (degraded)
    op.bulk_insert(rules, [{"kind": "numcheck_provider", "scope": "provider", "threshold": 1000, "for_seconds": 0,
                            "window_seconds": 0, "min_messages": 0, "enabled": True, "updated_at": 0}])  # fmt: skip


def downgrade() -> None:
    op.execute("DELETE FROM alerts WHERE kind = 'numcheck_provider'")
    op.execute("DELETE FROM alert_rules WHERE kind = 'numcheck_provider'")
    op.drop_table("numcheck_probes")
    op.drop_table("number_marks")
