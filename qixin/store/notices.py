"""Queries on ``notifications``: the customer's notice records and their pending deliveries.
No rules here (services/notify.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx

RECORD_KEYS = ("id", "kind", "subject", "body", "ref", "created_at")


def insert_many(tx: Tx, rows: Sequence[tuple[int, str, str, str, str, str, str, str, int]]) -> None:
    """(account id, kind, channel, target, subject, body, ref, status, created_at) rows, attempts 0."""
    tx.executemany(
        "INSERT INTO notifications (account_id, kind, channel, target, subject, body, ref, status, created_at,"
        " attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
        rows,
    )


def records(tx: Tx, account_id: int, limit: int, before_id: int | None = None) -> list[dict[str, Any]]:
    """The customer's notices (channel 'record'), newest first."""
    sql = (
        "SELECT id, kind, subject, body, ref, created_at FROM notifications WHERE account_id = ? AND channel = 'record'"
    )
    params: tuple[Any, ...] = (account_id,)
    if before_id:
        sql += " AND id < ?"
        params += (before_id,)
    rows = tx.all(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
    return [dict(zip(RECORD_KEYS, r, strict=True)) for r in rows]


def pending(tx: Tx, limit: int) -> list[tuple[int, int, str, str, str, str, str, int]]:
    """(id, account id, kind, channel, target, subject, body, attempts) of email/webhook rows to deliver."""
    rows = tx.all(
        "SELECT id, account_id, kind, channel, target, subject, body, attempts FROM notifications"
        " WHERE status = 'pending' AND channel IN ('email', 'webhook') ORDER BY id LIMIT ?",
        (limit,),
    )
    return [(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5], r[6], int(r[7])) for r in rows]


def mark_sent(tx: Tx, notice_id: int, now: int) -> None:
    tx.execute(
        "UPDATE notifications SET status = 'sent', sent_at = ?, attempts = attempts + 1 WHERE id = ?", (now, notice_id)
    )


def mark_failed_attempt(tx: Tx, notice_id: int, error: str, max_attempts: int) -> None:
    """One more failed attempt; the row becomes 'failed' at ``max_attempts``."""
    tx.execute(
        "UPDATE notifications SET attempts = attempts + 1, last_error = ?,"
        " status = CASE WHEN attempts + 1 >= ? THEN 'failed' ELSE 'pending' END WHERE id = ?",
        (error, max_attempts, notice_id),
    )
