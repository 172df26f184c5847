"""Queries on refunds: ``refund_rules`` (which receipt codes refund) and the once-only claim of a
message's refund (``messages.refunded``). No rules here (services/billing.py)."""

from __future__ import annotations

from typing import Any

from qixin.store.db import Tx, now_ms

RULE_KEYS = ("id", "account_id", "kind", "code")


def rules(tx: Tx) -> list[dict[str, Any]]:
    rows = tx.all("SELECT id, account_id, kind, code FROM refund_rules ORDER BY id")
    return [dict(zip(RULE_KEYS, r, strict=True)) for r in rows]


def rule_id(tx: Tx, account_id: int, kind: str, code: str) -> int | None:
    row = tx.one("SELECT id FROM refund_rules WHERE account_id = ? AND kind = ? AND code = ?", (account_id, kind, code))
    return int(row[0]) if row is not None else None


def insert_rule(tx: Tx, account_id: int, kind: str, code: str) -> int:
    row = tx.one(
        "INSERT INTO refund_rules (account_id, kind, code, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        (account_id, kind, code, now_ms()),
    )
    return int(row[0])


def delete_rule(tx: Tx, rule_id: int) -> bool:
    return bool(tx.execute("DELETE FROM refund_rules WHERE id = ?", (rule_id,)).rowcount)


def claim(tx: Tx, message_id: int) -> bool:
    """Mark a message refunded; True for the one caller that found it not yet refunded."""
    cur = tx.execute("UPDATE messages SET refunded = ? WHERE id = ? AND refunded = ?", (True, message_id, False))
    return bool(cur.rowcount)
