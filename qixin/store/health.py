"""Cheap readiness facts from the database (api/health.py /readyz): reachable, schema current, traffic."""

from __future__ import annotations

import functools

from qixin.store.db import Tx, now_ms


@functools.cache
def schema_heads() -> frozenset[str]:
    """The migration heads this code expects (read once from the migration scripts)."""
    from alembic.script import ScriptDirectory

    from qixin.store.migrate import HERE

    return frozenset(ScriptDirectory(str(HERE / "migrations")).get_heads())


def applied_heads(tx: Tx) -> frozenset[str]:
    """The migration heads recorded in the database (empty when it was never migrated)."""
    try:
        return frozenset(r[0] for r in tx.all("SELECT version_num FROM alembic_version"))
    except Exception:  # no alembic_version table (reads are autocommit on PostgreSQL: nothing to roll back)
        return frozenset()


def carriers_with_traffic(tx: Tx, since_id: int, sample: int = 2000) -> list[str]:
    """Carriers with traffic: those of the queue's due rows, and of the newest ``sample`` messages with an
    id from ``since_id`` on (ids are time-ordered, so this is a short primary-key range, never a scan of
    the archive; a carrier absent from the sample is a carrier with little traffic)."""
    rows = tx.all(
        "SELECT DISTINCT m.carrier FROM dispatch_queue q JOIN messages m ON m.id = q.message_id WHERE q.due_at <= ?"
        " UNION SELECT carrier FROM (SELECT carrier FROM messages WHERE id >= ? ORDER BY id DESC LIMIT ?) recent",
        (now_ms(), since_id, sample),
    )
    return sorted(str(r[0]) for r in rows)
