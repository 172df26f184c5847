"""PostgreSQL: messages and submits range-partitioned by month (by id / message_id); SQLite unchanged.
Both: the export_jobs table (services/exports.py); alert_notices and service_leases (services/alerts.py).

An empty table (a new install) is recreated partitioned, with the current and the next Beijing month and
a default partition. A table holding rows is not rewritten: it becomes one partition (``*_legacy``)
covering every id below the month after now; only ``submits`` needs a new primary key on it, which
includes the partition key (channel, carrier_msg_id, message_id) — an index build over its rows. The
indexes of the table as it is (other migrations may have added some) are recreated on the parent, and
the legacy partition's own are attached to them, not rebuilt (docs/retention.md: the cost on a big
table).

Revision ID: 0022_retention2
Revises: 0020_numbers2, 0020_ports2, 0020_review, 0021_console2
Create Date: 2026-12-02
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

from qixin.store.partitions import TABLES, id_at, month_name, month_of, month_start, next_month

revision = "0022_retention2"
down_revision = ("0020_numbers2", "0020_ports2", "0020_review", "0021_console2")
branch_labels = None
depends_on = None

PKEY = {"messages": "id", "submits": "channel, carrier_msg_id, message_id"}


def _convert(conn: sa.Connection, table: str, key: str, legacy_high: int | None, months: list[tuple[int, int]]) -> None:
    q = lambda sql, **kw: conn.execute(sa.text(sql), kw)  # noqa: E731
    indexes = [
        (str(r[0]), str(r[1]))
        for r in q(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema()"
            " AND i.tablename = :t AND i.indexname <> :pk",
            t=table, pk=f"{table}_pkey",
        )
    ]  # fmt: skip
    legacy = f"{table}_legacy"
    q(f"ALTER TABLE {table} RENAME TO {legacy}")
    if legacy_high is not None:
        q(f"ALTER TABLE {legacy} RENAME CONSTRAINT {table}_pkey TO {legacy}_pkey")
        for name, _ in indexes:
            q(f"ALTER INDEX {name} RENAME TO {name}_legacy")
    q(f"CREATE TABLE {table} (LIKE {legacy} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE ({key})")
    if legacy_high is None:
        q(f"DROP TABLE {legacy}")
    q(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({PKEY[table]})")
    for _, ddl in indexes:
        q(ddl)
    if legacy_high is not None:
        if table == "submits":  # the parent's key holds the partition key: the old key cannot be attached
            q(f"ALTER TABLE {legacy} DROP CONSTRAINT {legacy}_pkey")
            q(f"ALTER TABLE {legacy} ADD CONSTRAINT {legacy}_pkey PRIMARY KEY ({PKEY[table]})")
        # a valid CHECK that implies the bound spares ATTACH its own scan under the exclusive lock
        q(f"ALTER TABLE {legacy} ADD CONSTRAINT {legacy}_bound CHECK ({key} IS NOT NULL AND {key} < {legacy_high})")
        q(f"ALTER TABLE {table} ATTACH PARTITION {legacy} FOR VALUES FROM (MINVALUE) TO ({legacy_high})")
        q(f"ALTER TABLE {legacy} DROP CONSTRAINT {legacy}_bound")
    for year, month in months:
        low, high = id_at(month_start(year, month)), id_at(month_start(year, month + 1))
        if legacy_high is not None and low < legacy_high:
            continue
        q(f"CREATE TABLE {month_name(table, year, month)} PARTITION OF {table} FOR VALUES FROM ({low}) TO ({high})")
    q(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")


def _export_jobs() -> None:
    op.create_table(
        "export_jobs",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("reveal", sa.Boolean(), nullable=False),
        sa.Column("filters", sa.Text(), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=True),
        sa.Column("rows_written", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=True),
        sa.Column("offset_bytes", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("error_code", sa.String(length=40), nullable=True),
        sa.Column("runner", sa.String(length=40), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_export_jobs_status", "export_jobs", ["status"], unique=False)
    op.create_index("ix_export_jobs_account", "export_jobs", ["account_id", "id"], unique=False)


def _notices_and_leases() -> None:
    op.create_table(
        "alert_notices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=160), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("next_at", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alert_notices_alert_id", "alert_notices", ["alert_id"], unique=False)
    op.create_index("ix_alert_notices_due", "alert_notices", ["status", "next_at"], unique=False)
    op.create_table(
        "service_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=80), nullable=False),
        sa.Column("until", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def upgrade() -> None:
    _export_jobs()
    _notices_and_leases()
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    now = int(time.time() * 1000)
    year, month = month_of(now)
    months = [(year, month), next_month(year, month)]
    after = next_month(year, month)
    legacy_high = id_at(month_start(*after))
    has_rows = conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM messages) OR EXISTS (SELECT 1 FROM submits)"))
    keep = bool(has_rows.scalar())
    for table, key in TABLES.items():
        _convert(conn, table, key, legacy_high if keep else None, months)


def downgrade() -> None:
    op.drop_table("service_leases")
    op.drop_index("ix_alert_notices_due", table_name="alert_notices")
    op.drop_index("ix_alert_notices_alert_id", table_name="alert_notices")
    op.drop_table("alert_notices")
    op.drop_index("ix_export_jobs_account", table_name="export_jobs")
    op.drop_index("ix_export_jobs_status", table_name="export_jobs")
    op.drop_table("export_jobs")
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table in TABLES:
        conn.execute(sa.text(f"CREATE TABLE {table}_flat (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
        conn.execute(sa.text(f"INSERT INTO {table}_flat SELECT * FROM {table}"))
        indexes = [
            str(r[1])
            for r in conn.execute(
                sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
                        " AND tablename = :t AND indexname <> :pk"),
                {"t": table, "pk": f"{table}_pkey"},
            )
        ]  # fmt: skip
        conn.execute(sa.text(f"DROP TABLE {table} CASCADE"))
        conn.execute(sa.text(f"ALTER TABLE {table}_flat RENAME TO {table}"))
        pk = "id" if table == "messages" else "channel, carrier_msg_id"
        conn.execute(sa.text(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({pk})"))
        for ddl in indexes:
            conn.execute(sa.text(ddl))
