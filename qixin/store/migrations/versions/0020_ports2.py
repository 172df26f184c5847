"""SGIP direct connections: the address of the customer's own SGIP listener (issue 12)

Revision ID: 0020_ports2
Revises: 0015_rowid_keys
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_ports2"
down_revision = "0015_rowid_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("direct_connections") as batch:
        batch.add_column(sa.Column("deliver_to", sa.String(length=64), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("direct_connections") as batch:
        batch.drop_column("deliver_to")
