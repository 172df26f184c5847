"""What accepting a send writes: the batch, its messages and their dispatch-queue rows (SQL only here).

The accept transaction (services/accept.py) calls these in one job; messages and queue rows are written
with one batch insert each (COPY on PostgreSQL), never a round trip per message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx


def stored_answer(tx: Tx, account_id: int, idempotency_key: str) -> Any:
    """(request_hash, response JSON) of the batch sent with this idempotency key, or None."""
    return tx.one(
        "SELECT request_hash, response FROM batches WHERE account_id = ? AND idempotency_key = ?",
        (account_id, idempotency_key),
    )


_INSERT_BATCH = (
    "INSERT INTO batches (id, account_id, api_key_id, type, signature, template_id, content, total, accepted,"
    " rejected, fee_li, out_id, idempotency_key, request_hash, response, created_at, send_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
MESSAGE_COLUMNS = (
    "id", "number", "carrier", "province", "fee_li", "out_id", "batch_id", "account_id", "type", "parts", "status",
    "created_at", "send_at", "refunded", "receipts_pending",
)  # fmt: skip


def insert_batch(tx: Tx, values: Sequence[Any]) -> None:
    """One batch row: (id, account_id, api_key_id, type, signature, template_id, content, total, accepted,
    rejected, fee_li, out_id, idempotency_key, request_hash, response, created_at, send_at)."""
    tx.execute(_INSERT_BATCH, values)


def insert_batches(tx: Tx, rows: Sequence[Sequence[Any]]) -> None:
    """Many batch rows (as ``insert_batch``) in one statement: the accept of concurrent small sends."""
    tx.executemany(_INSERT_BATCH, rows)


def insert_full_messages(tx: Tx, rows: Sequence[Sequence[Any]]) -> None:
    """Messages of several batches in one insert, every column bound (``MESSAGE_COLUMNS``' order)."""
    tx.bulk_insert("messages", MESSAGE_COLUMNS, rows)


def insert_messages(
    tx: Tx,
    rows: Sequence[tuple[int, str, str, str, int, str | None]],
    constants: dict[str, bool | int | str | None],
) -> None:
    """Messages (id, number, carrier, province, fee_li, out_id) sharing ``constants`` (batch_id, account_id,
    type, parts, status, created_at, send_at, refunded, receipts_pending)."""
    tx.bulk_insert_const("messages", ("id", "number", "carrier", "province", "fee_li", "out_id"), rows, constants)


def enqueue(tx: Tx, message_ids: Sequence[tuple[int]], priority: int, due_at: int) -> None:
    tx.bulk_insert_const(
        "dispatch_queue", ("message_id",), message_ids, {"priority": priority, "due_at": due_at, "attempts": 0}
    )


def enqueue_each(tx: Tx, rows: Sequence[tuple[int, int, int]]) -> None:
    """Queue rows (message id, priority, due_at) of several batches in one insert."""
    tx.bulk_insert("dispatch_queue", ("message_id", "priority", "due_at", "attempts"), [(*r, 0) for r in rows])
