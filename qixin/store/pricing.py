"""Queries on ``price_plans`` (and the account's base price). No rules here (services/pricing.py)."""

from __future__ import annotations

from typing import Any

from qixin.store.db import Tx

PLAN_KEYS = ("id", "account_id", "product", "carrier", "msg_type", "price_li", "effective_at", "note", "created_by",
             "created_at")  # fmt: skip


def base_price(tx: Tx, account_id: int) -> int | None:
    """The account's own price per SMS part; None when there is no such account."""
    row = tx.one("SELECT price_li FROM accounts WHERE id = ?", (account_id,))
    return int(row[0]) if row is not None else None


def plan_rows(tx: Tx, account_id: int) -> list[tuple[int, str, str, str, int, int]]:
    """(id, product, carrier, msg_type, price_li, effective_at), oldest effective first."""
    rows = tx.all(
        "SELECT id, product, carrier, msg_type, price_li, effective_at FROM price_plans WHERE account_id = ?"
        " ORDER BY effective_at, id",
        (account_id,),
    )
    return [(int(r[0]), r[1], r[2], r[3], int(r[4]), int(r[5])) for r in rows]


def insert(
    tx: Tx, account_id: int, product: str, carrier: str, msg_type: str, price_li: int, effective_at: int,
    note: str | None, created_by: str, created_at: int,
) -> int:  # fmt: skip
    row = tx.one(
        "INSERT INTO price_plans (account_id, product, carrier, msg_type, price_li, effective_at, note, created_by,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (account_id, product, carrier, msg_type, price_li, effective_at, note, created_by, created_at),
    )
    return int(row[0])


def plans(tx: Tx, account_id: int) -> list[dict[str, Any]]:
    rows = tx.all(
        f"SELECT {', '.join(PLAN_KEYS)} FROM price_plans WHERE account_id = ? ORDER BY effective_at, id", (account_id,)
    )
    return [dict(zip(PLAN_KEYS, r, strict=True)) for r in rows]
