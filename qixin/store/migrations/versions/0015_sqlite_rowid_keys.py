"""SQLite: messages, batches and dispatch_queue keyed by the rowid (issue 8/13 speed)

Their keys were declared ``BIGINT PRIMARY KEY``: SQLite then keeps a hidden rowid plus a separate unique
index on the key, so every insert writes two B-trees and every lookup by id walks both. Declared
``INTEGER PRIMARY KEY`` the key IS the rowid (still 64-bit signed): one B-tree, one walk. SQLite cannot
change a column's type in place, so each table is rebuilt (same columns in the same order, same rows,
same indexes — partial ones included, from their stored SQL) inside the migration's transaction; on a
large database this copies every row once. PostgreSQL keeps BIGINT (nothing to do).

Revision ID: 0015_rowid_keys
Revises: every head before it (it rebuilds tables that earlier revisions extended)
Create Date: 2026-12-02
"""

from __future__ import annotations

import re

from alembic import op

revision = "0015_rowid_keys"
down_revision = (
    "0003b", "0004", "0005r", "0006_nonces", "0008", "0010_alerts", "0010_aliyun", "0010_console",
    "0010_filejobs", "0010_ports", "0010_retention", "0014_numbers", "0014b_tokens", "0014c_flash",
    "0014d_numcheck_jobs",
)  # fmt: skip
branch_labels = None
depends_on = None

KEYS = {"messages": "id", "batches": "id", "dispatch_queue": "message_id"}


def _rebuild(table: str, column: str, old: str, new: str) -> None:
    conn = op.get_bind()
    (create,) = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).one()
    pattern = re.compile(rf"(\n\s*{column} ){old}( NOT NULL)", re.IGNORECASE)
    if not pattern.search(create):
        return  # already in the wanted form
    indexes = [
        r[0]
        for r in conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (table,)
        )
    ]
    body = pattern.sub(rf"\g<1>{new}\g<2>", create, count=1)
    body = re.sub(rf"^CREATE TABLE \"?{table}\"?", f"CREATE TABLE {table}__new", body, count=1)
    conn.exec_driver_sql(body)
    conn.exec_driver_sql(f"INSERT INTO {table}__new SELECT * FROM {table}")
    conn.exec_driver_sql(f"DROP TABLE {table}")
    conn.exec_driver_sql(f"ALTER TABLE {table}__new RENAME TO {table}")
    for sql in indexes:
        conn.exec_driver_sql(sql)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, column in KEYS.items():
        _rebuild(table, column, "BIGINT", "INTEGER")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, column in KEYS.items():
        _rebuild(table, column, "INTEGER", "BIGINT")
