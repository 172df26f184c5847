"""the writer's indexes: no partial index on messages.status

- ix_messages_awaiting_receipt (status = 'submitted') was maintained by every status change (an entry at
  submit, removed at the final receipt). The receipt-timeout sweep now walks messages by id
  (time-ordered) from a persisted mark (receipt_sweep) and keeps the few messages it passes before they
  are final in receipt_watch.
- ix_messages_number (number, partial on the final statuses) was evaluated by the submit's status change
  too; ix_messages_number_done holds the same rows (partial on done_at IS NOT NULL: done_at is set exactly
  when a message becomes final), and only the final change maintains it.
- ix_messages_account_created (account_id, created_at) cost an entry per accepted message beside
  ix_messages_account_id (account_id, id); ids are time-ordered, so a period of an account's messages is
  a range of the latter.

Revision ID: 0022_writer
Revises: 0020_numbers2, 0020_ports2, 0020_review, 0021_console2
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022_writer"
down_revision = ("0020_numbers2", "0020_ports2", "0020_review", "0021_console2")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_messages_awaiting_receipt")
    op.create_table(
        "receipt_sweep",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("next_id", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "receipt_watch",
        sa.Column("message_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("due_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_receipt_watch_due_at", "receipt_watch", ["due_at"], unique=False)
    done = sa.text("done_at IS NOT NULL")
    op.create_index(
        "ix_messages_number_done", "messages", ["number"], unique=False, sqlite_where=done, postgresql_where=done
    )
    op.execute("DROP INDEX IF EXISTS ix_messages_number")
    op.execute("DROP INDEX IF EXISTS ix_messages_account_created")


def downgrade() -> None:
    op.create_index("ix_messages_account_created", "messages", ["account_id", "created_at"], unique=False)
    final = sa.text("status IN ('delivered', 'undelivered', 'expired')")
    op.create_index(
        "ix_messages_number", "messages", ["number"], unique=False, sqlite_where=final, postgresql_where=final
    )
    op.drop_index("ix_messages_number_done", table_name="messages")
    op.drop_index("ix_receipt_watch_due_at", table_name="receipt_watch")
    op.drop_table("receipt_watch")
    op.drop_table("receipt_sweep")
    where = sa.text("status = 'submitted'")
    op.create_index(
        "ix_messages_awaiting_receipt", "messages", ["submitted_at"], unique=False,
        sqlite_where=where, postgresql_where=where,
    )  # fmt: skip
