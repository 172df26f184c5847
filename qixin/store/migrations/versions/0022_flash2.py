"""periodic 闪测 of every channel (issue 14): probe rounds, per-channel results and the latest state per
channel, and the alert rule ``flash_probe``

Revision ID: 0022_flash2
Revises: 0020_numbers2, 0020_ports2, 0020_review, 0021_console2
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022_flash2"
down_revision = ("0020_numbers2", "0020_ports2", "0020_review", "0021_console2")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flash_probe_rounds",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("test_id", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("settled_at", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.String(length=200), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_flash_probe_rounds_started", "flash_probe_rounds", ["started_at"])
    op.create_table(
        "flash_probes",
        sa.Column("round_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("seeds", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("no_receipt", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.BigInteger(), nullable=True),
        sa.Column("code", sa.String(length=64), server_default="", nullable=False),
        sa.Column("probed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("round_id", "channel"),
    )
    op.create_index("ix_flash_probes_channel", "flash_probes", ["channel", "probed_at"])
    op.create_table(
        "flash_probe_channels",
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("failures", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("latency_ms", sa.BigInteger(), nullable=True),
        sa.Column("code", sa.String(length=64), server_default="", nullable=False),
        sa.Column("round_id", sa.BigInteger(), nullable=False),
        sa.Column("probed_at", sa.BigInteger(), nullable=False),
        sa.Column("last_delivered_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("channel"),
    )
    rules = sa.table(
        "alert_rules",
        sa.column("kind", sa.String), sa.column("scope", sa.String), sa.column("threshold", sa.BigInteger),
        sa.column("for_seconds", sa.BigInteger), sa.column("window_seconds", sa.BigInteger),
        sa.column("min_messages", sa.BigInteger), sa.column("enabled", sa.Boolean),
        sa.column("updated_at", sa.BigInteger),
    )  # fmt: skip
    # a channel whose periodic probes failed 2 rounds in a row
    op.bulk_insert(rules, [{"kind": "flash_probe", "scope": "channel", "threshold": 2, "for_seconds": 0,
                            "window_seconds": 0, "min_messages": 0, "enabled": True, "updated_at": 0}])  # fmt: skip


def downgrade() -> None:
    op.execute("DELETE FROM alerts WHERE kind = 'flash_probe'")
    op.execute("DELETE FROM alert_rules WHERE kind = 'flash_probe'")
    op.drop_table("flash_probe_channels")
    op.drop_index("ix_flash_probes_channel", table_name="flash_probes")
    op.drop_table("flash_probes")
    op.drop_index("ix_flash_probe_rounds_started", table_name="flash_probe_rounds")
    op.drop_table("flash_probe_rounds")
