"""SQL of channels, extension codes and channel health snapshots (services/channels.py, gateway/manager.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx

# the columns services/channels.Channel is built from, in order
COLUMNS = (
    "id", "name", "protocol", "host", "port", "username", "secret", "service_code", "options", "tps", "window_size",
    "connections", "carriers", "msg_types", "accounts", "priority", "weight", "enabled", "embedded", "version",
)  # fmt: skip
# what create/update may set (besides the bookkeeping ones); checked again here because column names
# become SQL text
WRITABLE = frozenset(COLUMNS) - {"id", "version"} | {"created_at", "updated_at"}
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM channels"


def _columns(values: dict[str, Any]) -> list[str]:
    bad = set(values) - WRITABLE
    if bad:
        raise ValueError(f"not channel columns: {sorted(bad)}")
    return list(values)


def name_taken(tx: Tx, name: str) -> bool:
    return tx.one("SELECT id FROM channels WHERE name = ?", (name,)) is not None


def insert(tx: Tx, values: dict[str, Any]) -> int:
    cols = _columns(values)
    row = tx.one(
        f"INSERT INTO channels ({', '.join(cols)}) VALUES ({tx.in_list(cols)}) RETURNING id", tuple(values.values())
    )
    return int(row[0])


def update(tx: Tx, channel_id: int, values: dict[str, Any], now: int) -> bool:
    """Set ``values`` and bump the version; False when there is no such channel."""
    sets = ", ".join(f"{k} = ?" for k in _columns(values))
    tx.execute(
        f"UPDATE channels SET {sets}, version = version + 1, updated_at = ? WHERE id = ?",
        (*values.values(), now, channel_id),
    )
    return tx.rowcount > 0


def delete(tx: Tx, channel_id: int) -> bool:
    tx.execute("DELETE FROM channels WHERE id = ?", (channel_id,))
    return tx.rowcount > 0


def by_id(tx: Tx, channel_id: int) -> Any:
    return tx.one(f"{_SELECT} WHERE id = ?", (channel_id,))


def by_name(tx: Tx, name: str) -> Any:
    return tx.one(f"{_SELECT} WHERE name = ?", (name,))


def all_rows(tx: Tx) -> list[Any]:
    return tx.all(f"{_SELECT} ORDER BY priority, id")


# -- extension codes ----------------------------------------------------------------------------------------


def account_extension(tx: Tx, account_id: int) -> str | None:
    r = tx.one("SELECT code FROM extensions WHERE account_id = ? AND signature IS NULL", (account_id,))
    return str(r[0]) if r else None


def extension_taken(tx: Tx, code: str) -> bool:
    return tx.one("SELECT 1 FROM extensions WHERE code = ?", (code,)) is not None


def insert_extension(tx: Tx, code: str, account_id: int, now: int) -> None:
    tx.execute(
        "INSERT INTO extensions (code, account_id, signature, created_at) VALUES (?, ?, NULL, ?)",
        (code, account_id, now),
    )


def account_of_extensions(tx: Tx, codes: Sequence[str]) -> dict[str, int]:
    """code -> account for those of ``codes`` that are registered (one query)."""
    if not codes:
        return {}
    rows = tx.all(f"SELECT code, account_id FROM extensions WHERE code IN ({tx.in_list(codes)})", tuple(codes))
    return {str(r[0]): int(r[1]) for r in rows}


# -- health snapshots ---------------------------------------------------------------------------------------


def save_health(tx: Tx, rows: Sequence[tuple[str, str, int]]) -> None:
    """(name, health JSON, updated_at) each."""
    tx.executemany(
        "INSERT INTO channel_health (name, health, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET health = excluded.health, updated_at = excluded.updated_at",
        rows,
    )


def health_since(tx: Tx, since: int) -> list[Any]:
    """(name, health JSON) of the snapshots updated at or after ``since``."""
    return tx.all("SELECT name, health FROM channel_health WHERE updated_at >= ?", (since,))
