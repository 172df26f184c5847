"""Delivery outcomes: submit results, receipts, final statuses, refunds and webhook events.

Rules:
- Status vocabulary (one everywhere): accepted, scheduled, queued, submitted, delivered, undelivered,
  failed, rejected, expired, cancelled. The carrier's own stat and error code are kept beside it.
- A message is final when every part has a receipt: delivered if all parts were delivered, else the
  status of the first failed part. A second receipt for the same part changes nothing.
- A message the platform or channel failed (submit refused) is refunded, exactly once (billing rule);
  a final receipt refunds when its stat or error code matches a refund rule (billing.refund_receipts).
- Each final message produces one webhook event for the callback URL of the key that sent it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from qixin.services import billing, portability
from qixin.store.db import Tx, chunks, now_ms

FINAL = frozenset({"delivered", "undelivered", "failed", "rejected", "expired", "cancelled"})

# carrier receipt stat -> platform status
STAT_STATUS = {
    "DELIVRD": "delivered",
    "EXPIRED": "expired",
    "UNDELIV": "undelivered",
    "REJECTD": "rejected",
    "DELETED": "undelivered",
    "UNKNOWN": "undelivered",
    "ACCEPTD": "delivered",
}


def status_of_stat(stat: str) -> str:
    return STAT_STATUS.get(stat.upper(), "undelivered")


@dataclass(slots=True)
class Submitted:
    message_id: int
    channel: str
    carrier_ids: list[str]  # one per part, in part order
    at: int


@dataclass(slots=True)
class Failed:
    message_id: int
    code: str  # platform error code, e.g. SUBMIT_REJECTED
    detail: str
    at: int


@dataclass(slots=True)
class Receipt:
    channel: str
    carrier_id: str
    stat: str
    err: str
    at: int


def record_submits(tx: Tx, items: list[Submitted]) -> None:
    if not items:
        return
    tx.executemany(
        "UPDATE messages SET status = 'submitted', channel = ?, submitted_at = ?, receipts_pending = ? WHERE id = ?",
        [(s.channel, s.at, len(s.carrier_ids), s.message_id) for s in items],
    )
    tx.bulk_insert(
        "submits",
        ("channel", "carrier_msg_id", "message_id", "part_no", "submitted_at"),
        [(s.channel, cid, s.message_id, i + 1, s.at) for s in items for i, cid in enumerate(s.carrier_ids)],
    )
    tx.executemany("DELETE FROM dispatch_queue WHERE message_id = ?", [(s.message_id,) for s in items])


def record_failures(tx: Tx, items: list[Failed]) -> None:
    if not items:
        return
    ids_ = [f.message_id for f in items]
    tx.executemany(
        "UPDATE messages SET status = 'failed', error_code = ?, carrier_err = ?, done_at = ? WHERE id = ?",
        [(f.code, f.detail[:16], f.at, f.message_id) for f in items],
    )
    tx.executemany("DELETE FROM dispatch_queue WHERE message_id = ?", [(i,) for i in ids_])
    rows = _message_rows(tx, ids_)
    billing.refund_messages(tx, ((r[0], r[1], r[2]) for r in rows), note="平台提交失败退款")
    _emit(tx, rows)


def _message_rows(tx: Tx, ids_: Sequence[int]) -> list[tuple]:
    out: list[tuple] = []
    for chunk in chunks(list(ids_)):
        out += tx.all(
            "SELECT m.id, m.account_id, m.fee_li, m.batch_id, m.out_id, m.number, m.status, m.parts,"
            " m.carrier_stat, m.carrier_err, m.error_code, m.done_at, m.submitted_at, b.api_key_id, k.callback_url"
            " FROM messages m JOIN batches b ON b.id = m.batch_id LEFT JOIN api_keys k ON k.id = b.api_key_id"
            f" WHERE m.id IN ({tx.in_list(chunk)})",
            tuple(chunk),
        )
    return out


def _emit(tx: Tx, rows: list[tuple]) -> None:
    """Webhook events for final messages whose key has a callback URL."""
    now = now_ms()
    events = []
    for r in rows:
        (mid, account_id, _fee, batch_id, out_id, number, status, parts, stat, err, code, done_at, sub_at, key_id,
         url) = r  # fmt: skip
        if not url or status not in FINAL:
            continue
        payload = {
            "type": "receipt",
            "id": str(mid),
            "batch_id": str(batch_id),
            "out_id": out_id,
            "to": number,
            "status": status,
            "parts": parts,
            "carrier_stat": stat,
            "carrier_err": err,
            "error_code": code,
            "submitted_at": sub_at,
            "done_at": done_at,
        }
        events.append((account_id, key_id, url, orjson.dumps(payload).decode(), now, now))
    tx.executemany(
        "INSERT INTO webhook_outbox (account_id, api_key_id, url, payload, next_at, created_at, status, attempts)"
        " VALUES (?, ?, ?, ?, ?, ?, 'pending', 0)",
        events,
    )


def apply_receipts(tx: Tx, items: list[Receipt]) -> tuple[int, list[Receipt]]:
    """Match receipts to submitted parts and finalise messages.

    Returns (messages that became final, receipts that matched no submit). A receipt can come before
    its submit is stored (the other parts of a long message still in flight, or the submit's outcome
    held by another dispatcher); the caller parks those in ``receipt_inbox`` (``park_receipts``) and
    ``retry_parked`` applies them again until they match or grow stale (orphans).
    """
    if not items:
        return 0, []
    matched: set[tuple[str, str]] = set()
    by_channel: dict[str, list[Receipt]] = {}
    for r in items:
        by_channel.setdefault(r.channel, []).append(r)
    part_updates: list[tuple[str, str, str]] = []
    per_message: dict[int, list[Receipt]] = {}
    for channel, recs in by_channel.items():
        wanted = {r.carrier_id: r for r in recs}
        for chunk in chunks(list(wanted)):
            for cid, mid, stat in tx.all(
                "SELECT carrier_msg_id, message_id, stat FROM submits"
                f" WHERE channel = ? AND carrier_msg_id IN ({tx.in_list(chunk)})",
                (channel, *chunk),
            ):
                matched.add((channel, cid))
                if stat is not None:
                    continue  # a repeated receipt: nothing changes
                rec = wanted[cid]
                part_updates.append((rec.stat, channel, cid))
                per_message.setdefault(int(mid), []).append(rec)
    unmatched = [r for r in items if (r.channel, r.carrier_id) not in matched]
    if not per_message:
        return 0, unmatched
    tx.executemany("UPDATE submits SET stat = ? WHERE channel = ? AND carrier_msg_id = ?", part_updates)
    ids_ = list(per_message)
    current = {}
    for id_chunk in chunks(ids_):
        for mid, status, pending, stat, err in tx.all(
            "SELECT id, status, receipts_pending, carrier_stat, carrier_err FROM messages"
            f" WHERE id IN ({tx.in_list(id_chunk)})",
            tuple(id_chunk),
        ):
            current[int(mid)] = (status, int(pending), stat, err)
    updates = []
    finals = []
    ported: dict[int, str] = {}  # message id -> the carrier its number moved to
    for mid, recs in per_message.items():
        cur = current.get(mid)
        if cur is None or cur[0] in FINAL:
            continue
        status, pending, stat, err = cur
        for rec in recs:
            pending -= 1
            if stat is None or (stat == "DELIVRD" and rec.stat != "DELIVRD"):
                stat, err = rec.stat, rec.err
            if portability.is_ported(rec.stat):
                ported[mid] = portability.carrier_named(rec.stat, rec.err)
        done_at = max(r.at for r in recs)
        if pending <= 0:
            status = status_of_stat(stat or "UNKNOWN")
            finals.append(mid)
        updates.append((status, max(pending, 0), stat, err, done_at if pending <= 0 else None, mid))
    tx.executemany(
        "UPDATE messages SET status = ?, receipts_pending = ?, carrier_stat = ?, carrier_err = ?, done_at = ?"
        " WHERE id = ?",
        updates,
    )
    if ported:
        ids_p = list(ported)
        numbers = tx.all(f"SELECT id, number FROM messages WHERE id IN ({tx.in_list(ids_p)})", tuple(ids_p))
        portability.record(tx, [(str(n), ported[int(i)]) for i, n in numbers])
    if finals:
        rows = _message_rows(tx, finals)
        billing.refund_receipts(tx, [(r[0], r[1], r[2], r[6], r[8], r[9]) for r in rows])
        _emit(tx, rows)
    return len(finals), unmatched


def park_receipts(tx: Tx, items: list[Receipt]) -> None:
    """Store receipts that matched no submit yet, in the transaction that decides so (before the
    carrier is answered): they survive a crash and any dispatcher may match them later."""
    tx.executemany(
        "INSERT INTO receipt_inbox (channel, carrier_msg_id, stat, err, received_at) VALUES (?, ?, ?, ?, ?)",
        [(r.channel, r.carrier_id, r.stat[:16], r.err[:16], r.at) for r in items],
    )


def retry_parked(tx: Tx, limit: int, stale_before: int) -> tuple[int, int, int]:
    """Apply parked receipts again; drop those that matched and those older than ``stale_before``.

    Returns (messages that became final, receipts matched now, stale receipts dropped). Idempotent, so
    dispatchers in several processes may run it at once.
    """
    rows = tx.all(
        "SELECT id, channel, carrier_msg_id, stat, err, received_at FROM receipt_inbox ORDER BY id LIMIT ?", (limit,)
    )
    if not rows:
        return 0, 0, 0
    items = [Receipt(r[1], r[2], r[3], r[4], int(r[5])) for r in rows]
    finals, unmatched = apply_receipts(tx, items)
    still = {(r.channel, r.carrier_id) for r in unmatched}
    done = [int(r[0]) for r in rows if (r[1], r[2]) not in still]
    stale = [int(r[0]) for r in rows if (r[1], r[2]) in still and int(r[5]) < stale_before]
    tx.executemany("DELETE FROM receipt_inbox WHERE id = ?", [(i,) for i in done + stale])
    return finals, len(done), len(stale)
