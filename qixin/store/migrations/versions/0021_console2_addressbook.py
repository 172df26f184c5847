"""the console's address book: contact groups, contacts, memberships

Revision ID: 0021_console2
Revises: 0020_console2
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_console2"
down_revision = "0020_console2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_groups",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "name", name="uq_contact_groups_account_name"),
    )
    op.create_table(
        "contacts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), server_default="", nullable=False),
        sa.Column("fields", sa.Text(), server_default="{}", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "number", name="uq_contacts_account_number"),
    )
    op.create_table(
        "contact_members",
        sa.Column("group_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("contact_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("group_id", "contact_id"),
    )
    op.create_index("ix_contact_members_contact", "contact_members", ["contact_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_contact_members_contact", table_name="contact_members")
    op.drop_table("contact_members")
    op.drop_table("contacts")
    op.drop_table("contact_groups")
