"""the records page (MessageSearch): an index on messages (account_id, id)

The search lists an account's messages newest first (ORDER BY id DESC LIMIT n, the cursor is an id).
With only (account_id, created_at) the database reads and sorts every message of the account; with
(account_id, id) it walks the index backwards and stops after one page.

Revision ID: 0020_console2
Revises: 0015_rowid_keys
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0020_console2"
down_revision = "0015_rowid_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_account_id", "messages", ["account_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_messages_account_id", table_name="messages")
