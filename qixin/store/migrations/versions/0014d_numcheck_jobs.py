"""number check file jobs (issue 14)

Revision ID: 0014d_numcheck_jobs
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014d_numcheck_jobs"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "number_check_jobs",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("done_chunks", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unit_li", sa.BigInteger(), nullable=False),
        sa.Column("lease_until", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_number_check_jobs_status", "number_check_jobs", ["status", "created_at"], unique=False)
    op.create_table(
        "number_check_inputs",
        sa.Column("job_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("chunk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("entries", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "chunk"),
    )


def downgrade() -> None:
    op.drop_table("number_check_inputs")
    op.drop_index("ix_number_check_jobs_status", table_name="number_check_jobs")
    op.drop_table("number_check_jobs")
