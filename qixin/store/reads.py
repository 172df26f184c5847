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
        "SELECT m.id, m.batch_id, COALESCE(m.token, m.number), m.carrier, m.province, m.type, m.parts, m.fee_li,"
        " m.status, m.out_id,"
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


def queue_snapshot(tx: Tx, now: int) -> tuple[int, int, int]:
    """(rows in the dispatch queue, of them due now, age in ms of the oldest due row)."""
    depth = int(tx.one("SELECT COUNT(*) FROM dispatch_queue")[0])
    due, oldest = tx.one("SELECT COUNT(*), MIN(due_at) FROM dispatch_queue WHERE due_at <= ?", (now,))
    return depth, int(due), (now - int(oldest)) if oldest is not None else 0


def webhook_snapshot(tx: Tx) -> dict[str, int]:
    """Webhook outbox rows by status (pending, sent, dead)."""
    return {str(s): int(n) for s, n in tx.all("SELECT status, COUNT(*) FROM webhook_outbox GROUP BY status")}


SEARCH_COLUMNS = (
    "id", "batch_id", "account_id", "to", "carrier", "province", "type", "parts", "fee_li", "status", "out_id",
    "channel", "carrier_stat", "carrier_err", "error_code", "created_at", "submitted_at", "done_at", "signature",
    "template_id", "protocol",
)  # fmt: skip
# filter name -> SQL condition (each takes one parameter)
SEARCH_FILTERS = {
    "account_id": "m.account_id = ?",
    "number": "m.number = ? AND m.token IS NULL",  # a tokenised message is found by its token only
    "token": "m.token = ?",
    "batch_id": "m.batch_id = ?",
    "out_id": "m.out_id = ?",
    "status": "m.status = ?",
    "type": "m.type = ?",
    "template_id": "b.template_id = ?",
    "signature": "b.signature = ?",
    "channel": "m.channel = ?",
    "carrier": "m.carrier = ?",
    "province": "m.province = ?",
    "since": "m.created_at >= ?",
    "until": "m.created_at < ?",
    "before_id": "m.id < ?",
    "min_id": "m.id >= ?",  # the records page's bounded scan (services/queries.py SCAN_WINDOW)
}
# the predicate of the partial index ix_messages_account_failed (migration 0022_console3), written out in
# the query of a failure-status search so that the planner may use that index (it cannot see through "?").
# ORs, not IN (…): SQLite evaluates a partial index's IN list on every write of the row, which cost 3–5 µs
# per insert or status change in a micro-bench; the ORs cost next to nothing.
FAILED_PREDICATE = "(m.status = 'undelivered' OR m.status = 'failed' OR m.status = 'rejected' OR m.status = 'expired')"
FAILED_STATUSES = frozenset({"undelivered", "failed", "rejected", "expired"})


def scan_floor(tx: Tx, account_id: int, before_id: int | None, window: int) -> int | None:
    """The id of the account's ``window``-th newest message older than ``before_id`` (None: fewer than
    that): a search from ``before_id`` down to it reads at most ``window`` of the index (account_id, id)."""
    r = tx.one(
        "SELECT id FROM messages WHERE account_id = ? AND id < ? ORDER BY id DESC LIMIT 1 OFFSET ?",
        (account_id, before_id if before_id is not None else 2**63 - 1, window - 1),
    )
    return int(r[0]) if r else None


def search_where(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    """The `` WHERE …`` (or "") and its parameters for every given filter of SEARCH_FILTERS over
    ``messages m`` (a failure status also names the failed-records index's predicate)."""
    clauses = [SEARCH_FILTERS[k] for k in SEARCH_FILTERS if filters.get(k) is not None]
    params = [filters[k] for k in SEARCH_FILTERS if filters.get(k) is not None]
    if filters.get("status") in FAILED_STATUSES:
        clauses.append(FAILED_PREDICATE)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def search_messages(tx: Tx, filters: dict[str, Any], limit: int) -> list[Any]:
    """Messages matching every given filter (SEARCH_FILTERS), newest first (ids are time-ordered), at most
    ``limit`` rows of SEARCH_COLUMNS. ``before_id`` is the cursor: rows strictly older than it."""
    where, params = search_where(filters)
    return tx.all(
        "SELECT m.id, m.batch_id, m.account_id, COALESCE(m.token, m.number), m.carrier, m.province, m.type, m.parts,"
        " m.fee_li, m.status,"
        " m.out_id, m.channel, m.carrier_stat, m.carrier_err, m.error_code, m.created_at, m.submitted_at, m.done_at,"
        " b.signature, b.template_id, c.protocol FROM messages m JOIN batches b ON b.id = m.batch_id"
        f" LEFT JOIN channels c ON c.name = m.channel{where}"
        " ORDER BY m.id DESC LIMIT ?",
        (*params, limit),
    )
