"""the console, third part: contact tags, the staff's read-only view of a customer, failed-records index

- ``contact_tags`` / ``contact_taggings``: an account's tags and which contacts carry them (many per
  contact; services/addressbook.py).
- ``console_sessions.view_account_id``: a staff session viewing a customer's console read-only
  (services/console_users.py ``impersonate``); NULL for every other session.
- ``ix_messages_account_failed``: the records page filtered by a failure status (undelivered, failed,
  rejected, expired) walks only the account's failed messages. A partial index: a message enters it once,
  when it fails for good, and never moves; delivered and in-flight messages cost nothing. The predicate is
  written with ORs: SQLite evaluates a partial index's IN (…) list on every write of the row (3–5 µs per
  insert or status change measured), the ORs next to nothing.

Revision ID: 0022_console3
Revises: 0020_numbers2, 0020_ports2, 0020_review, 0021_console2
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022_console3"
down_revision = ("0020_numbers2", "0020_ports2", "0020_review", "0021_console2")
branch_labels = None
depends_on = None

FAILED = "status = 'undelivered' OR status = 'failed' OR status = 'rejected' OR status = 'expired'"


def upgrade() -> None:
    op.create_table(
        "contact_tags",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "name", name="uq_contact_tags_account_name"),
    )
    op.create_table(
        "contact_taggings",
        sa.Column("tag_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("contact_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("tag_id", "contact_id"),
    )
    op.create_index("ix_contact_taggings_contact", "contact_taggings", ["contact_id"], unique=False)
    op.add_column("console_sessions", sa.Column("view_account_id", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_messages_account_failed", "messages", ["account_id", "id"], unique=False,
        sqlite_where=sa.text(FAILED), postgresql_where=sa.text(FAILED),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_messages_account_failed", table_name="messages")
    with op.batch_alter_table("console_sessions") as b:
        b.drop_column("view_account_id")
    op.drop_index("ix_contact_taggings_contact", table_name="contact_taggings")
    op.drop_table("contact_taggings")
    op.drop_table("contact_tags")
