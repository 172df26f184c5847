"""Queries on 条数包: ``packages`` (the counters), ``package_ledger`` (one entry per change of a counter)
and ``package_uses`` (which package paid for which message ids). No rules here (services/billing.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx, now_ms

PACKAGE_KEYS = (
    "id", "account_id", "product", "kind", "name", "total_parts", "remaining_parts", "price_li", "starts_at",
    "expires_at", "status", "ref", "created_at",
)  # fmt: skip
_COLUMNS = ", ".join(PACKAGE_KEYS)


def usable(tx: Tx, account_id: int, product: str, now: int, lock: bool = False) -> list[tuple[int, int]]:
    """(package id, remaining parts) usable now, oldest expiry first; ``lock``: FOR UPDATE on PostgreSQL."""
    sql = (
        "SELECT id, remaining_parts FROM packages WHERE account_id = ? AND product = ? AND status = 'active'"
        " AND remaining_parts > 0 AND starts_at <= ? AND expires_at > ? ORDER BY expires_at, id"
    )
    if lock and tx.is_pg:
        sql += " FOR UPDATE"
    return [(int(a), int(b)) for a, b in tx.all(sql, (account_id, product, now, now))]


def ref_exists(tx: Tx, account_id: int, ref: str) -> bool:
    return tx.one("SELECT 1 FROM packages WHERE account_id = ? AND ref = ?", (account_id, ref)) is not None


def insert(
    tx: Tx, account_id: int, product: str, kind: str, name: str, parts: int, price_li: int, starts_at: int,
    expires_at: int, ref: str, created_at: int,
) -> int:  # fmt: skip
    """A new active package with all its parts remaining; returns its id."""
    row = tx.one(
        "INSERT INTO packages (account_id, product, kind, name, total_parts, remaining_parts, price_li, starts_at,"
        " expires_at, status, ref, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?) RETURNING id",
        (account_id, product, kind, name, parts, parts, price_li, starts_at, expires_at, ref, created_at),
    )
    return int(row[0])


def append(
    tx: Tx, package_id: int, account_id: int, kind: str, parts: int, after: int, ref: str, note: str | None
) -> None:
    tx.execute(
        "INSERT INTO package_ledger (package_id, account_id, kind, parts, remaining_after, ref, note, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (package_id, account_id, kind, parts, after, ref, note, now_ms()),
    )


def of_account(tx: Tx, account_id: int) -> list[dict[str, Any]]:
    rows = tx.all(f"SELECT {_COLUMNS} FROM packages WHERE account_id = ? ORDER BY expires_at, id", (account_id,))
    return [dict(zip(PACKAGE_KEYS, r, strict=True)) for r in rows]


def active_remaining(tx: Tx, package_id: int) -> tuple[int, int] | None:
    """(account id, remaining parts) of an active package; None when it is not active."""
    row = tx.one("SELECT account_id, remaining_parts FROM packages WHERE id = ? AND status = 'active'", (package_id,))
    return (int(row[0]), int(row[1])) if row is not None else None


def mark_expired(tx: Tx, package_id: int, remaining: int) -> bool:
    """Set an active package expired with 0 parts, only if it still has exactly ``remaining``."""
    cur = tx.execute(
        "UPDATE packages SET status = 'expired', remaining_parts = 0 WHERE id = ? AND status = 'active'"
        " AND remaining_parts = ?",
        (package_id, remaining),
    )
    return bool(cur.rowcount)


def due_to_expire(tx: Tx, now: int) -> list[int]:
    return [int(p) for (p,) in tx.all("SELECT id FROM packages WHERE status = 'active' AND expires_at <= ?", (now,))]


def take_parts(tx: Tx, package_id: int, parts: int) -> int | None:
    """remaining -= parts only when it covers them; the new remaining, or None."""
    row = tx.one(
        "UPDATE packages SET remaining_parts = remaining_parts - ? WHERE id = ? AND remaining_parts >= ?"
        " RETURNING remaining_parts",
        (parts, package_id, parts),
    )
    return int(row[0]) if row is not None else None


def give_back_parts(tx: Tx, package_id: int, parts: int) -> int:
    row = tx.one(
        "UPDATE packages SET remaining_parts = remaining_parts + ? WHERE id = ? RETURNING remaining_parts",
        (parts, package_id),
    )
    return int(row[0])


def record_uses(tx: Tx, rows: Sequence[tuple[int, int, int, int, int]]) -> None:
    """(batch id, package id, first message id, last message id, parts) rows, in one executemany."""
    tx.executemany(
        "INSERT INTO package_uses (batch_id, package_id, first_message_id, last_message_id, parts)"
        " VALUES (?, ?, ?, ?, ?)",
        rows,
    )


def paid_by(tx: Tx, message_id: int, now: int) -> tuple[int, int] | None:
    """(package id, parts) when a still-valid package (active, or frozen with its account) paid for the
    message; else None."""
    row = tx.one(
        "SELECT u.package_id, m.parts FROM messages m JOIN package_uses u ON u.batch_id = m.batch_id"
        " AND m.id BETWEEN u.first_message_id AND u.last_message_id"
        " JOIN packages k ON k.id = u.package_id AND k.status IN ('active', 'frozen') AND k.expires_at > ?"
        " WHERE m.id = ?",
        (now, message_id),
    )
    return (int(row[0]), int(row[1])) if row is not None else None


def entries_total(tx: Tx, package_id: int) -> int:
    row = tx.one("SELECT COALESCE(SUM(parts), 0) FROM package_ledger WHERE package_id = ?", (package_id,))
    return int(row[0])


def totals_by_package(tx: Tx) -> dict[int, int]:
    return {int(p): int(s) for p, s in tx.all("SELECT package_id, SUM(parts) FROM package_ledger GROUP BY package_id")}


def all_remaining(tx: Tx) -> list[tuple[int, int, int]]:
    """(package id, account id, remaining parts) of every package, by id."""
    return [
        (int(p), int(a), int(r))
        for p, a, r in tx.all("SELECT id, account_id, remaining_parts FROM packages ORDER BY id")
    ]


def period_by_kind(tx: Tx, account_id: int, start: int, end: int) -> dict[str, int]:
    """Sum of parts per package-ledger kind for entries created in [start, end)."""
    rows = tx.all(
        "SELECT kind, SUM(parts) FROM package_ledger WHERE account_id = ? AND created_at >= ? AND created_at < ?"
        " GROUP BY kind",
        (account_id, start, end),
    )
    return {str(k): int(v) for k, v in rows}
