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
    """(id, number, carrier, content, type, account_id, extension code or None, pinned channel or None,
    created_at, signature, template_id or 0, province, parts, fee_li) of each message: the last six with
    type, account and carrier are its statistics bucket's fixed dimensions (carried to the submit's
    rollup move, which then reads only the message's state)."""
    return _in(
        tx,
        "SELECT m.id, m.number, m.carrier, COALESCE(m.content, b.content), m.type, m.account_id, e.code,"
        " m.pin_channel, m.created_at, b.signature, COALESCE(b.template_id, 0), m.province, m.parts, m.fee_li"
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


def callback_urls(tx: Tx, key_ids: Sequence[int]) -> dict[int, str | None]:
    """api key id -> its callback URL (None: none set), as stored now."""
    return {int(r[0]): r[1] for r in _in(tx, "SELECT id, callback_url FROM api_keys WHERE id IN ({ids})", key_ids)}


# -- receipt timeout ----------------------------------------------------------------------------------------
# No index on status: the sweep walks messages by id (time-ordered, the rowid / primary key) from a persisted
# mark (receipt_sweep); the few messages it passes that are not final yet wait in receipt_watch (by due time).


def sweep_mark(tx: Tx) -> int:
    """The first message id the sweep has not walked yet (0 at first); on PostgreSQL the row stays locked
    until the transaction ends, so concurrent sweeps (several dispatchers) take turns."""
    r = tx.one("SELECT next_id FROM receipt_sweep WHERE name = 'messages'" + (" FOR UPDATE" if tx.is_pg else ""))
    if r is not None:
        return int(r[0])
    tx.execute("INSERT INTO receipt_sweep (name, next_id, updated_at) VALUES ('messages', 0, 0) ON CONFLICT DO NOTHING")
    r = tx.one("SELECT next_id FROM receipt_sweep WHERE name = 'messages'" + (" FOR UPDATE" if tx.is_pg else ""))
    return int(r[0])


def set_sweep_mark(tx: Tx, next_id: int, now: int) -> None:
    tx.execute("UPDATE receipt_sweep SET next_id = ?, updated_at = ? WHERE name = 'messages'", (next_id, now))


def walk(tx: Tx, lo: int, hi: int, limit: int) -> list[tuple[int, str, int | None]]:
    """(id, status, submitted_at) of the messages with lo <= id < hi, by id, at most ``limit`` (a range of
    the primary key: no other index)."""
    rows = tx.all("SELECT id, status, submitted_at FROM messages WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
                  (lo, hi, limit))  # fmt: skip
    return [(int(r[0]), str(r[1]), None if r[2] is None else int(r[2])) for r in rows]


def watched_due(tx: Tx, now: int, limit: int) -> list[tuple[int, str | None, int | None]]:
    """(message id, status or None when the message is gone, submitted_at) of the watched messages due by
    ``now``, soonest first, at most ``limit``."""
    rows = tx.all(
        "SELECT w.message_id, m.status, m.submitted_at FROM receipt_watch w"
        " LEFT JOIN messages m ON m.id = w.message_id WHERE w.due_at <= ? ORDER BY w.due_at LIMIT ?",
        (now, limit),
    )
    return [(int(r[0]), None if r[1] is None else str(r[1]), None if r[2] is None else int(r[2])) for r in rows]


def watch(tx: Tx, rows: Sequence[tuple[int, int]]) -> None:
    """(message id, due_at) each: look at the message again at due_at (an existing row gets the new time)."""
    if rows:
        tx.executemany(
            "INSERT INTO receipt_watch (message_id, due_at) VALUES (?, ?)"
            " ON CONFLICT (message_id) DO UPDATE SET due_at = excluded.due_at",
            rows,
        )


def unwatch(tx: Tx, ids: Sequence[int]) -> None:
    if ids:
        tx.executemany("DELETE FROM receipt_watch WHERE message_id = ?", [(i,) for i in ids])


def expire_submitted(tx: Tx, ids: Sequence[int], submitted_before: int, code: str, now: int) -> list[int]:
    """Those of ``ids`` still ``submitted`` (a receipt missing) since before ``submitted_before`` become
    ``expired`` with ``code``; one statement per chunk (on PostgreSQL a concurrent receipt's row lock is
    waited for and the condition read again). Returns the ids changed."""
    out: list[int] = []
    for chunk in chunks(list(ids)):
        rows = tx.all(
            "UPDATE messages SET status = 'expired', error_code = ?, receipts_pending = 0, done_at = ?"
            f" WHERE id IN ({tx.in_list(chunk)}) AND status = 'submitted' AND submitted_at < ? RETURNING id",
            (code, now, *chunk, submitted_before),
        )
        out += [int(r[0]) for r in rows]
    return out
