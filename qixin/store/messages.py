"""SQL of messages on their way out: the dispatch queue (claims, leases), submit and failure outcomes,
final states and the rows webhook events are built from (services/dispatch.py, services/receipts.py).

Every function takes whole batches: one statement (executemany) or one IN list per chunk of
``IN_LIST_MAX`` ids, never one round trip per message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx, chunks

_CLAIM_SQLITE = (
    "UPDATE dispatch_queue SET due_at = ?, attempts = attempts + 1 WHERE message_id IN"
    " (SELECT message_id FROM dispatch_queue WHERE due_at <= ? ORDER BY priority, due_at LIMIT ?)"
    " RETURNING message_id, attempts"
)
_CLAIM_PG = (
    "UPDATE dispatch_queue q SET due_at = ?, attempts = q.attempts + 1 FROM"
    " (SELECT message_id FROM dispatch_queue WHERE due_at <= ? ORDER BY priority, due_at LIMIT ?"
    " FOR UPDATE SKIP LOCKED) s WHERE q.message_id = s.message_id RETURNING q.message_id, q.attempts"
)


def _in(tx: Tx, sql: str, ids: Sequence[int]) -> list[Any]:
    """``sql`` with one ``{ids}`` IN list, run per chunk of ids; the rows of every chunk."""
    out: list[Any] = []
    for chunk in chunks(list(ids)):
        out += tx.all(sql.format(ids=tx.in_list(chunk)), tuple(chunk))
    return out


# -- the dispatch queue ----------------------------------------------------------------------------------


def claim_due(tx: Tx, now: int, lease_until: int, limit: int) -> list[Any]:
    """Lease up to ``limit`` due queue rows (verification first, then by due time): (message_id, attempts)."""
    return tx.all(_CLAIM_PG if tx.is_pg else _CLAIM_SQLITE, (lease_until, now, limit))


def outgoing(tx: Tx, ids: Sequence[int]) -> list[Any]:
    """(id, number, carrier, content, type, account_id, extension code or None, pinned channel or None) of
    each message."""
    return _in(
        tx,
        "SELECT m.id, m.number, m.carrier, COALESCE(m.content, b.content), m.type, m.account_id, e.code,"
        " m.pin_channel"
        " FROM messages m JOIN batches b ON b.id = m.batch_id"
        " LEFT JOIN extensions e ON e.account_id = m.account_id AND e.signature IS NULL"
        " WHERE m.id IN ({ids})",
        ids,
    )


def renew_leases(tx: Tx, ids: Sequence[int], due: int) -> None:
    tx.executemany("UPDATE dispatch_queue SET due_at = ? WHERE message_id = ?", [(due, i) for i in ids])


def dequeue(tx: Tx, ids: Sequence[int]) -> None:
    tx.executemany("DELETE FROM dispatch_queue WHERE message_id = ?", [(i,) for i in ids])


# -- outcomes ---------------------------------------------------------------------------------------------


def mark_submitted(tx: Tx, rows: Sequence[tuple[str, int, int, int]]) -> None:
    """(channel, submitted_at, parts awaiting a receipt, message id) each."""
    tx.executemany(
        "UPDATE messages SET status = 'submitted', channel = ?, submitted_at = ?, receipts_pending = ? WHERE id = ?",
        rows,
    )


def insert_submits(tx: Tx, rows: Sequence[tuple[str, str, int, int, int]]) -> None:
    """(channel, carrier_msg_id, message_id, part_no, submitted_at) each: COPY on PostgreSQL."""
    tx.bulk_insert("submits", ("channel", "carrier_msg_id", "message_id", "part_no", "submitted_at"), rows)


def mark_failed(tx: Tx, rows: Sequence[tuple[str, str, int, int]]) -> None:
    """(error_code, carrier_err, done_at, message id) each."""
    tx.executemany(
        "UPDATE messages SET status = 'failed', error_code = ?, carrier_err = ?, done_at = ? WHERE id = ?", rows
    )


# -- states -----------------------------------------------------------------------------------------------


def set_states(tx: Tx, rows: Sequence[tuple[str, int, str | None, str | None, int | None, int]]) -> None:
    """(status, receipts_pending, carrier_stat, carrier_err, done_at, message id) each."""
    tx.executemany(
        "UPDATE messages SET status = ?, receipts_pending = ?, carrier_stat = ?, carrier_err = ?, done_at = ?"
        " WHERE id = ?",
        rows,
    )


def numbers(tx: Tx, ids: Sequence[int]) -> list[tuple[int, str]]:
    return [(int(r[0]), str(r[1])) for r in _in(tx, "SELECT id, number FROM messages WHERE id IN ({ids})", ids)]


def event_rows(tx: Tx, ids: Sequence[int]) -> list[tuple[Any, ...]]:
    """What a final message's refund and webhook event need: (id, account_id, fee_li, batch_id, out_id,
    number, status, parts, carrier_stat, carrier_err, error_code, done_at, submitted_at, api_key_id,
    the key's callback_url) each."""
    return _in(
        tx,
        "SELECT m.id, m.account_id, m.fee_li, m.batch_id, m.out_id, COALESCE(m.token, m.number), m.status, m.parts,"
        " m.carrier_stat, m.carrier_err, m.error_code, m.done_at, m.submitted_at, b.api_key_id, k.callback_url"
        " FROM messages m JOIN batches b ON b.id = m.batch_id LEFT JOIN api_keys k ON k.id = b.api_key_id"
        " WHERE m.id IN ({ids})",
        ids,
    )


# -- receipt timeout ----------------------------------------------------------------------------------------

_EXPIRE_SET = "status = 'expired', error_code = ?, receipts_pending = 0, done_at = ?"
_EXPIRE_SQLITE = (
    f"UPDATE messages SET {_EXPIRE_SET} WHERE id IN (SELECT id FROM messages"
    " WHERE status = 'submitted' AND submitted_at < ? ORDER BY submitted_at LIMIT ?) RETURNING id"
)
# the locking sub-select runs ONCE (a materialized CTE): as the inner side of a join it could be rescanned,
# each rescan skipping the rows this statement already changed and returning new ones — past the LIMIT
_EXPIRE_PG = (
    "WITH s AS MATERIALIZED (SELECT id FROM messages WHERE status = 'submitted' AND submitted_at < ?"
    f" ORDER BY submitted_at LIMIT ? FOR UPDATE SKIP LOCKED) UPDATE messages m SET {_EXPIRE_SET}"
    " FROM s WHERE m.id = s.id RETURNING m.id"
)


def expire_awaiting_receipt(tx: Tx, submitted_before: int, code: str, now: int, limit: int) -> list[int]:
    """Messages still ``submitted`` (a receipt missing) since before ``submitted_before`` become
    ``expired`` with ``code``; up to ``limit`` of them, oldest first, in one statement (the partial index
    ix_messages_awaiting_receipt holds exactly the submitted ones). Returns their ids."""
    if tx.is_pg:
        rows = tx.all(_EXPIRE_PG, (submitted_before, limit, code, now))
    else:
        rows = tx.all(_EXPIRE_SQLITE, (code, now, submitted_before, limit))
    return [int(r[0]) for r in rows]
