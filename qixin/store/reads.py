"""Read models of messages and batches for the customer and staff APIs (SQL only here).

Every customer read filters by ``account_id`` (invariant I4).
"""

from __future__ import annotations

from typing import Any

from qixin.store.db import Tx

MESSAGE_COLUMNS = (
    "id", "batch_id", "to", "carrier", "province", "type", "parts", "fee_li", "status", "out_id",
    "channel", "carrier_stat", "carrier_err", "error_code", "refunded", "created_at", "send_at",
    "submitted_at", "done_at", "content",
)  # fmt: skip


def message_row(tx: Tx, account_id: int, message_id: int) -> Any:
    """The message (MESSAGE_COLUMNS) if it belongs to ``account_id``, else None."""
    return tx.one(
        "SELECT m.id, m.batch_id, m.number, m.carrier, m.province, m.type, m.parts, m.fee_li, m.status, m.out_id,"
        " m.channel, m.carrier_stat, m.carrier_err, m.error_code, m.refunded, m.created_at, m.send_at,"
        " m.submitted_at, m.done_at, COALESCE(m.content, b.content)"
        " FROM messages m JOIN batches b ON b.id = m.batch_id WHERE m.id = ? AND m.account_id = ?",
        (message_id, account_id),
    )


def batch_row(tx: Tx, account_id: int, batch_id: int) -> Any:
    """(id, type, signature, total, accepted, rejected, fee_li, out_id, created_at, send_at) or None."""
    return tx.one(
        "SELECT id, type, signature, total, accepted, rejected, fee_li, out_id, created_at, send_at"
        " FROM batches WHERE id = ? AND account_id = ?",
        (batch_id, account_id),
    )


def batch_status_counts(tx: Tx, batch_id: int) -> dict[str, int]:
    rows = tx.all("SELECT status, COUNT(*) FROM messages WHERE batch_id = ? GROUP BY status", (batch_id,))
    return {str(s): int(n) for s, n in rows}


FINAL_STATUSES = ("delivered", "undelivered", "failed", "rejected", "expired", "cancelled")


def count_final(tx: Tx) -> int:
    """Messages in a final state (tests and operators wait on this)."""
    marks = ", ".join("?" * len(FINAL_STATUSES))
    return int(tx.one(f"SELECT COUNT(*) FROM messages WHERE status IN ({marks})", FINAL_STATUSES)[0])


def ported_recent(tx: Tx, limit: int) -> list[Any]:
    """(number, carrier, learned_at) of the most recently learned ported numbers."""
    return tx.all("SELECT number, carrier, learned_at FROM ported_numbers ORDER BY learned_at DESC LIMIT ?", (limit,))
