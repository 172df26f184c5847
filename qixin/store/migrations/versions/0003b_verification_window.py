"""compliance: account_policies.verification_window (verification codes go out at any hour unless set)

Revision ID: 0003b
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003b"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account_policies") as batch:
        batch.add_column(sa.Column("verification_window", sa.Boolean(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("account_policies") as batch:
        batch.drop_column("verification_window")
