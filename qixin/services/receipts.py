"""Delivery outcomes: submit results, receipts, final statuses, refunds and webhook events.

Rules:
- Status vocabulary (one everywhere): accepted, scheduled, queued, submitted, delivered, undelivered,
  failed, rejected, expired, cancelled. The carrier's own stat and error code are kept beside it.
- A message is final when every part has a receipt: delivered if all parts were delivered, else the
  status of the first failed part. A second receipt for the same part changes nothing.
- A message the platform or channel failed (submit refused) is refunded, exactly once (billing rule);
  a final receipt refunds when its stat or error code matches a refund rule (billing.refund_receipts).
- Each final message produces one webhook event for the callback URL of the key that sent it, and
  makes the receipts a customer port owes for it ready (``port_events``), in the same transaction.
- A submitted message whose final receipt has not come ``receipt_timeout`` after submission (72 h by
  default) becomes ``expired`` with error code RECEIPT_TIMEOUT (``expire_unreceipted``): nothing stays
  ``submitted`` for ever, even when the receipts died with the gateway that owed them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from qixin import ids
from qixin.domain.delivery import status_of_stat  # the one stat -> status table (docs/status-codes.md)
from qixin.services import billing, latency, portability, stats
from qixin.store import connections as port_events
from qixin.store import messages
from qixin.store import receipts as receipt_store
from qixin.store import webhooks as outbox
from qixin.store.db import Tx, now_ms

FINAL = frozenset({"delivered", "undelivered", "failed", "rejected", "expired", "cancelled"})

# the platform's final status -> the standard receipt stat word
STAT_OF_STATUS = {
    "delivered": "DELIVRD",
    "undelivered": "UNDELIV",
    "failed": "UNDELIV",
    "rejected": "REJECTD",
    "expired": "EXPIRED",
    "cancelled": "DELETED",
}
STAT_WORDS = frozenset({"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD"})


def receipt_stat(status: str, carrier_stat: str | None, carrier_err: str | None, code: str | None) -> tuple[str, str]:
    """(stat, err) told to the customer for a final message: the carrier's stat word when it is a
    standard one (or a 7-character CMPP-style code), else the word of the platform's status; err the
    carrier's three-digit code when it has one."""
    stat = carrier_stat if carrier_stat and (carrier_stat in STAT_WORDS or len(carrier_stat) <= 7) else None
    if stat is None or (status == "delivered") != (stat == "DELIVRD"):
        stat = STAT_OF_STATUS.get(status, "UNKNOWN")
    err = carrier_err if carrier_err and len(carrier_err) <= 3 else ("000" if status == "delivered" else "999")
    return stat, err


def _owe_receipts(tx: Tx, finals: Sequence[tuple[int, str, str | None, str | None, int | None]]) -> None:
    """The customer-port receipts waiting for these messages (id, status, carrier_stat, carrier_err, done_at;
    now final) become ready, in the transaction that made them final, with the stat and err told to the
    customer (``receipt_stat``). The ports' pump then only claims ready rows (services/ports.py); a
    failures-only receipt of a delivered message stays waiting for the pump's periodic scan, which drops it
    (no statement per delivered message for the rare receipts asking for failures only). One probe when no
    receipt waits at all (HTTP-only traffic)."""
    if not finals or not port_events.any_waiting(tx):
        return
    rows = []
    for mid, status, carrier_stat, carrier_err, done_at in finals:
        stat, err = receipt_stat(status, carrier_stat, carrier_err, None)
        rows.append((stat, err, done_at, mid, status != "delivered"))
    port_events.ready_for_messages(tx, rows)


@dataclass(slots=True)
class Submitted:
    message_id: int
    channel: str
    carrier_ids: list[str]  # one per part, in part order
    at: int
    dims: stats.Dims | None = None  # the statistics bucket's fixed dimensions, from the claim (Outgoing.dims)


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
    dims = {s.message_id: s.dims for s in items if s.dims is not None}
    # the claim carried the fixed dimensions: read only the state
    full = len(dims) == len(items)
    now = stats.current_with(tx, dims) if full else stats.current(tx, [s.message_id for s in items])
    # a final message stays final (a second submit of it, e.g. after its lease ran out, only records
    # the carrier ids): the receipt-timeout sweep relies on nothing going back to submitted
    live = [s for s in items if (r := now.get(s.message_id)) is not None and r[8] not in FINAL]
    stats.record_changes(tx, {s.message_id: stats.change("submitted", s.channel) for s in live}, now)
    messages.mark_submitted(tx, [(s.channel, s.at, len(s.carrier_ids), s.message_id) for s in live])
    messages.insert_submits(
        tx, [(s.channel, cid, s.message_id, i + 1, s.at) for s in items for i, cid in enumerate(s.carrier_ids)]
    )
    messages.dequeue(tx, [s.message_id for s in items])


def record_failures(tx: Tx, items: list[Failed]) -> None:
    if not items:
        return
    ids_ = [f.message_id for f in items]
    stats.record_changes(tx, {f.message_id: stats.change("failed", None, None, f.detail[:16], f.code) for f in items})
    messages.mark_failed(tx, [(f.code, f.detail[:16], f.at, f.message_id) for f in items])
    messages.dequeue(tx, ids_)
    rows = messages.event_rows(tx, ids_)
    billing.refund_messages(tx, ((r[0], r[1], r[2]) for r in rows), note="平台提交失败退款")
    _emit(tx, rows)
    _owe_receipts(tx, [(r[0], r[6], r[8], r[9], r[11]) for r in rows])


def _emit(tx: Tx, rows: Sequence[tuple]) -> None:
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
    outbox.insert_events(tx, events)


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
        for cid, mid, stat in receipt_store.submits_matching(tx, channel, list(wanted)):
            matched.add((channel, cid))
            if stat is not None:
                continue  # a repeated receipt: nothing changes
            rec = wanted[cid]
            part_updates.append((rec.stat, channel, cid))
            per_message.setdefault(int(mid), []).append(rec)
    unmatched = [r for r in items if (r.channel, r.carrier_id) not in matched]
    if not per_message:
        return 0, unmatched
    receipt_store.set_part_stats(tx, part_updates)
    dims = stats.current(tx, list(per_message))  # one read: the state here, the buckets for the rollups
    current = {mid: (d[8], int(d[14]), d[11], d[12]) for mid, d in dims.items()}
    updates: list[tuple[str, int, str | None, str | None, int | None, int]] = []
    finals = []
    final_latencies: list[tuple[str, int, int, int | None, int | None, int]] = []
    ported: dict[int, str] = {}  # message id -> the carrier its number moved to
    for mid, recs in per_message.items():
        cur = current.get(mid)
        if cur is None or cur[0] in FINAL:
            continue
        status, pending, stat, err = cur
        for rec in recs:
            pending -= 1
            if stat is None or (status_of_stat(stat) == "delivered" and status_of_stat(rec.stat) != "delivered"):
                stat, err = rec.stat, rec.err
            if portability.is_ported(rec.stat):
                ported[mid] = portability.carrier_named(rec.stat, rec.err)
        done_at = max(r.at for r in recs)
        if pending <= 0:
            status = status_of_stat(stat or "UNKNOWN")
            finals.append(mid)
            d = dims[mid]  # (created_at, account_id, …, channel [7], …, submitted_at [15], send_at [16])
            final_latencies.append((d[7], int(d[1]), int(d[0]), d[16], d[15], done_at))
        updates.append((status, max(pending, 0), stat, err, done_at if pending <= 0 else None, mid))
    latency.record_finals(tx, final_latencies)
    stats.record_changes(tx, {u[5]: stats.change(u[0], None, u[2], u[3]) for u in updates}, dims)
    messages.set_states(tx, updates)
    if ported:
        portability.record(tx, [(n, ported[i]) for i, n in messages.numbers(tx, list(ported))])
    if finals:
        done = [u for u in updates if u[4] is not None]
        rows = _event_rows(tx, dims, done)
        billing.refund_receipts(tx, [(r[0], r[1], r[2], r[6], r[8], r[9]) for r in rows])
        _emit(tx, rows)
        _owe_receipts(tx, [(u[5], u[0], u[2], u[3], u[4]) for u in done])
    return len(finals), unmatched


def _event_rows(tx: Tx, dims: dict[int, tuple], finals: Sequence[tuple]) -> list[tuple]:
    """``messages.event_rows`` of messages made final by ``finals`` (set_states rows: status, pending, stat,
    err, done_at, id), built from what the receipt already read (``dims``) instead of reading them again;
    only the keys' callback URLs are read (they may change at any time)."""
    keys = {d[20] for d in (dims[u[5]] for u in finals) if d[20] is not None}
    urls = messages.callback_urls(tx, list(keys)) if keys else {}
    out = []
    for status, _pending, stat, err, done_at, mid in finals:
        d = dims[mid]
        key = d[20]
        out.append((mid, d[1], d[10], d[17], d[18], d[19], status, d[9], stat, err, d[13], done_at, d[15], key,
                    urls.get(key) if key is not None else None))  # fmt: skip
    return out


def park_receipts(tx: Tx, items: list[Receipt]) -> None:
    """Store receipts that matched no submit yet, in the transaction that decides so (before the
    carrier is answered): they survive a crash and any dispatcher may match them later."""
    receipt_store.park(tx, [(r.channel, r.carrier_id, r.stat[:16], r.err[:16], r.at) for r in items])


def retry_parked(tx: Tx, limit: int, stale_before: int) -> tuple[int, int, int]:
    """Apply parked receipts again; drop those that matched and those older than ``stale_before``.

    Returns (messages that became final, receipts matched now, stale receipts dropped). Idempotent, so
    dispatchers in several processes may run it at once.
    """
    rows = receipt_store.parked(tx, limit)
    if not rows:
        return 0, 0, 0
    items = [Receipt(r[1], r[2], r[3], r[4], int(r[5])) for r in rows]
    finals, unmatched = apply_receipts(tx, items)
    still = {(r.channel, r.carrier_id) for r in unmatched}
    done = [int(r[0]) for r in rows if (r[1], r[2]) not in still]
    stale = [int(r[0]) for r in rows if (r[1], r[2]) in still and int(r[5]) < stale_before]
    receipt_store.unpark(tx, done + stale)
    return finals, len(done), len(stale)


RECEIPT_TIMEOUT = "RECEIPT_TIMEOUT"


SWEEP_PAGE = 5_000  # messages read per statement of the walk
SWEEP_SCAN_MAX = 50_000  # messages walked per call at most (the rest: the next call)


def first_id_at(ms: int) -> int:
    """The smallest message id generated at or after ``ms`` (qixin/ids.py: the creation time's
    milliseconds are the id's high bits)."""
    return max(ms - ids.EPOCH_MS, 0) << 22


def expire_unreceipted(tx: Tx, timeout_ms: int, limit: int, now: int | None = None) -> int:
    """``expire_step``'s count of expired messages."""
    return expire_step(tx, timeout_ms, limit, now)[0]


def expire_step(tx: Tx, timeout_ms: int, limit: int, now: int | None = None) -> tuple[int, bool]:
    """Messages submitted more than ``timeout_ms`` ago whose final receipt never came become ``expired``
    (``error_code`` RECEIPT_TIMEOUT; the carrier's stat stays empty unless a part reported one), are
    refunded when a refund rule says so (an ``err`` rule RECEIPT_TIMEOUT matches), and get their webhook
    event — all in this transaction. At most ``limit``; returns how many, and whether the walk stopped
    before the cutoff (more to do now: the limit was reached or SWEEP_SCAN_MAX messages were walked).

    Such a receipt may have died with its gateway (an in-process simulator killed with the platform) or
    been lost by the carrier; a receipt that comes later finds the message final and changes nothing.

    How they are found without an index on status (which every status change would maintain): message ids
    are time-ordered and a message is created before it is submitted, so every message submitted before
    the cutoff has an id below ``first_id_at(cutoff)``. The sweep walks the ids from a persisted mark up
    to that bound (at most SWEEP_SCAN_MAX per call) and moves the mark past what it walked; a walked
    message that is not final and not overdue (still queued, scheduled, held, or submitted late after its
    creation) is put on a watch list with the time it may become overdue, and looked at again then.
    A message never goes back to ``submitted`` once final (``record_submits``), so nothing the mark passed
    can become overdue unwatched.
    """
    now = now_ms() if now is None else now
    cutoff = now - timeout_ms
    expire: list[int] = []
    later: list[tuple[int, int]] = []  # (message id, due_at) to watch
    done: list[int] = []  # watched messages that need no more looking at
    for mid, status, sub_at in messages.watched_due(tx, now, limit):
        if status is None or status in FINAL:
            done.append(mid)
        elif status == "submitted" and sub_at is not None and sub_at < cutoff:
            expire.append(mid)
            done.append(mid)
        elif status == "submitted" and sub_at is not None:
            later.append((mid, sub_at + timeout_ms))
        else:  # not submitted yet: it cannot be overdue before a whole timeout from now
            later.append((mid, now + timeout_ms))
    mark = messages.sweep_mark(tx)
    bound = first_id_at(cutoff)
    walked = 0
    while mark < bound and len(expire) < limit and walked < SWEEP_SCAN_MAX:
        want = min(SWEEP_PAGE, SWEEP_SCAN_MAX - walked)
        page = messages.walk(tx, mark, bound, want)
        walked += len(page)
        for mid, status, sub_at in page:
            if len(expire) >= limit:
                break
            mark = mid + 1
            if status in FINAL:
                continue
            if status == "submitted" and sub_at is not None and sub_at < cutoff:
                expire.append(mid)
            elif status == "submitted" and sub_at is not None:
                later.append((mid, sub_at + timeout_ms))
            else:
                later.append((mid, now + timeout_ms))
        else:
            if len(page) < want:
                mark = bound  # nothing more below the bound
    messages.set_sweep_mark(tx, mark, now)
    ids_ = messages.expire_submitted(tx, expire, cutoff, RECEIPT_TIMEOUT, now)
    changed = set(ids_)
    # a candidate the UPDATE left alone became final meanwhile, or was submitted again (a later time)
    later += [(mid, now + timeout_ms) for mid in expire if mid not in changed]
    messages.unwatch(tx, done)
    messages.watch(tx, later)
    more = mark < bound or len(expire) >= limit
    if not ids_:
        return 0, more
    stats.record_changed(tx, ids_, was="submitted")
    rows = messages.event_rows(tx, ids_)
    # the platform's code stands in for the carrier's error so that refund rules can name it
    billing.refund_receipts(tx, [(r[0], r[1], r[2], r[6], r[8] or "", RECEIPT_TIMEOUT) for r in rows])
    _emit(tx, rows)
    _owe_receipts(tx, [(r[0], r[6], r[8], r[9], r[11]) for r in rows])
    return len(ids_), more
