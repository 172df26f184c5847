"""partial index for the receipt-timeout sweep (messages still waiting for a receipt)

Revision ID: 0005r
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005r"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    where = sa.text("status = 'submitted'")
    op.create_index(
        "ix_messages_awaiting_receipt", "messages", ["submitted_at"], unique=False,
        sqlite_where=where, postgresql_where=where,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_messages_awaiting_receipt", table_name="messages")
