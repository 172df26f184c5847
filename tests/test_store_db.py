"""store/db.py: constants inlined into bulk inserts are safe literals only; rows land the same on both DBs."""

from __future__ import annotations

import pytest

from qixin.store.db import Database
from qixin.store.migrate import migrate


def test_bulk_insert_const_rows_and_refusals(db_url: str) -> None:
    migrate(db_url)
    db = Database(db_url)
    try:
        db.write_sync(
            lambda tx: tx.bulk_insert_const(
                "dispatch_queue", ("message_id",), [(1,), (2,), (3,)], {"priority": 2, "due_at": 99, "attempts": 0}
            )
        )
        rows = db.read_sync(lambda tx: tx.all("SELECT message_id, priority, due_at, attempts FROM dispatch_queue"))
        assert sorted(tuple(r) for r in rows) == [(1, 2, 99, 0), (2, 2, 99, 0), (3, 2, 99, 0)]
        if not db.is_pg:  # PostgreSQL binds everything through COPY; SQLite inlines, so it must refuse
            for bad in ("x'); DROP TABLE accounts; --", "客户文本", "Upper"):
                with pytest.raises(ValueError):
                    db.write_sync(
                        lambda tx, b=bad: tx.bulk_insert_const("dispatch_queue", ("message_id",), [(9,)], {"x": b})
                    )
            with pytest.raises(TypeError):
                db.write_sync(lambda tx: tx.bulk_insert_const("dispatch_queue", ("message_id",), [(9,)], {"x": 1.5}))
    finally:
        db.close()
