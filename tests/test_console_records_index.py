"""The records page's query (store/reads.search_messages, shared with GET /v1/sms) walks the index on
messages (account_id, id) instead of sorting every message of the account (migration 0020_console2)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from qixin.store import reads
from qixin.store.migrate import migrate


class Recorder:
    """Stands in for a transaction: keeps the statement instead of running it."""

    def __init__(self) -> None:
        self.sql = ""
        self.params: tuple[Any, ...] = ()

    def all(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        self.sql, self.params = sql, params
        return []


def plan(path: Path, filters: dict[str, Any]) -> str:
    rec = Recorder()
    reads.search_messages(rec, filters, 51)  # type: ignore[arg-type]
    with sqlite3.connect(path) as conn:
        rows = conn.execute("EXPLAIN QUERY PLAN " + rec.sql, rec.params).fetchall()
    return "\n".join(str(r[-1]) for r in rows)


def test_records_search_uses_account_id_index(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    migrate(f"sqlite:///{path}")
    for filters in ({"account_id": 1}, {"account_id": 1, "before_id": 10**15}, {"account_id": 1, "status": "failed"}):
        p = plan(path, filters)
        assert "ix_messages_account_id" in p, (filters, p)
        assert "TEMP B-TREE" not in p, (filters, p)  # no sort of the account's messages
