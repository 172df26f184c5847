"""Receipt timeout: a submitted message whose final receipt never comes expires after ``receipt_timeout``
(error RECEIPT_TIMEOUT), refunded only as the refund rules say, with its webhook event; bounded batches."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from _billing import Bill, numbers

from qixin.services import billing, receipts, stats
from qixin.services.receipts import (
    Receipt,
    Submitted,
    apply_receipts,
    expire_unreceipted,
    first_id_at,
    record_submits,
)
from qixin.store.accounts import update_key
from qixin.store.db import Database, now_ms
from qixin.store.migrate import migrate

HOUR = 3_600_000


@pytest.fixture
def bill(db_url: str) -> Iterator[Bill]:
    b = Bill(db_url)
    yield b
    b.close()


def _submit(bill: Bill, mid: int, at: int) -> None:
    bill.w(lambda tx: record_submits(tx, [Submitted(mid, "ch", [f"c{mid}"], at)]))


def _row(bill: Bill, mid: int) -> tuple:  # type: ignore[type-arg]
    return tuple(
        bill.one(
            "SELECT status, error_code, carrier_stat, receipts_pending, done_at FROM messages WHERE id = ?", (mid,)
        )
    )


async def test_overdue_submitted_messages_expire_with_event_and_refund_by_rule(bill: Bill) -> None:
    key = await bill.account(balance_li=10_000, price_li=35)
    bill.w(lambda tx: update_key(tx, key.app_key, "callback_url", "http://127.0.0.1:9/hook"))
    data = await bill.send(key, numbers(5))
    a, b, c, d, e = (int(m["id"]) for m in data["accepted"])
    now = now_ms() + 2 * HOUR  # the sweep's clock: two hours after the messages were created and submitted
    for mid in (a, b, d, e):
        _submit(bill, mid, now - 2 * HOUR)
    _submit(bill, c, now - 10_000)  # recent: its receipt may still come
    bill.w(lambda tx: apply_receipts(tx, [Receipt("ch", f"c{a}", "DELIVRD", "000", now - HOUR)]))  # a is final

    # bounded: one message per transaction here (by id); the rule decides the refund
    assert bill.w(lambda tx: expire_unreceipted(tx, HOUR, limit=1, now=now)) == 1
    bill.w(lambda tx: billing.add_refund_rule(tx, "err", "RECEIPT_TIMEOUT"))
    assert bill.w(lambda tx: expire_unreceipted(tx, HOUR, limit=10, now=now)) == 2
    assert bill.w(lambda tx: expire_unreceipted(tx, HOUR, limit=10, now=now)) == 0  # nothing left, nothing twice

    expired = [m for m in (b, d, e) if _row(bill, m)[0] == "expired"]
    assert sorted(expired) == sorted((b, d, e))
    for mid in expired:
        assert _row(bill, mid) == ("expired", "RECEIPT_TIMEOUT", None, 0, now)
    assert _row(bill, a)[0] == "delivered" and _row(bill, c)[:2] == ("submitted", None)
    # refunded: the two expired after the rule existed, not the first one, exactly once
    assert bill.balance(key.account_id) == 10_000 - 5 * 35 + 2 * 35
    assert bill.verify()["ok"]
    # one webhook event per expired message
    payloads = [orjson.loads(r[0]) for r in bill.r(lambda tx: tx.all("SELECT payload FROM webhook_outbox"))]
    timeouts = {int(p["id"]): p for p in payloads if p["error_code"] == "RECEIPT_TIMEOUT"}
    assert set(timeouts) == {b, d, e}
    assert all(p["status"] == "expired" and p["carrier_stat"] is None for p in timeouts.values())
    # a receipt arriving after the timeout changes nothing
    assert bill.w(lambda tx: apply_receipts(tx, [Receipt("ch", f"c{b}", "DELIVRD", "000", now)]))[0] == 0
    assert _row(bill, b)[0] == "expired"
    assert bill.balance(key.account_id) == 10_000 - 3 * 35


def test_the_sweep_walks_the_primary_key_and_no_index_on_status_is_left(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'i.db'}"
    migrate(url)
    db = Database(url)
    try:
        # every status change used to maintain ix_messages_awaiting_receipt (migration 0022_writer drops it)
        partial = db.read_sync(
            lambda tx: tx.all("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages'")
        )
        assert not [n for n, sql in partial if sql and "submitted" in sql], partial
        plan = db.read_sync(
            lambda tx: tx.all(
                "EXPLAIN QUERY PLAN SELECT id, status, submitted_at FROM messages WHERE id >= ? AND id < ?"
                " ORDER BY id LIMIT ?",
                (1, 10, 10),
            )
        )
        assert any("INTEGER PRIMARY KEY" in str(r[-1]) for r in plan), plan
    finally:
        db.close()


def _sweep_state(bill: Bill) -> tuple[int, list[tuple[int, int]]]:
    mark = bill.one("SELECT next_id FROM receipt_sweep WHERE name = 'messages'")
    watch = bill.r(lambda tx: tx.all("SELECT message_id, due_at FROM receipt_watch ORDER BY message_id"))
    return (int(mark[0]) if mark else -1), [(int(m), int(d)) for m, d in watch]


async def test_the_mark_moves_past_final_messages_and_late_submits_still_expire(bill: Bill) -> None:
    key = await bill.account(balance_li=10_000, price_li=35)
    data = await bill.send(key, numbers(3))
    a, b, c = (int(m["id"]) for m in data["accepted"])
    t0 = now_ms()
    bill.receipt(a, "DELIVRD")  # final before the sweep reaches it

    # two hours later (timeout one hour): the walk passes all three; b and c were never submitted, so
    # they are watched (a whole timeout from now), a is left behind for good
    assert bill.w(lambda tx: expire_unreceipted(tx, HOUR, limit=10, now=t0 + 2 * HOUR)) == 0
    mark, watch = _sweep_state(bill)
    assert mark == first_id_at(t0 + HOUR) and mark > max(a, b, c)
    assert watch == [(b, t0 + 3 * HOUR), (c, t0 + 3 * HOUR)]

    # b is submitted at +3 h (scheduled, held …): long after it was created, below the mark
    _submit(bill, b, t0 + 3 * HOUR)
    bill.w(lambda tx: apply_receipts(tx, [Receipt("ch", "x", "DELIVRD", "000", t0)]))  # unrelated, unmatched
    assert bill.w(lambda tx: expire_unreceipted(tx, HOUR, limit=10, now=t0 + 3 * HOUR + 1)) == 0  # not overdue
    assert _sweep_state(bill)[1] == [(b, t0 + 4 * HOUR), (c, t0 + 4 * HOUR + 1)]
    assert bill.w(lambda tx: expire_unreceipted(tx, HOUR, limit=10, now=t0 + 4 * HOUR + 2)) == 1
    assert _row(bill, b)[:2] == ("expired", "RECEIPT_TIMEOUT")
    assert _row(bill, c)[0] == "queued"
    assert _sweep_state(bill)[1] == [(c, t0 + 5 * HOUR + 2)]
    assert bill.w(lambda tx: expire_unreceipted(tx, HOUR, limit=10, now=t0 + 4 * HOUR + 3)) == 0  # nothing twice
    assert bill.verify()["ok"]


async def test_a_final_message_never_goes_back_to_submitted(bill: Bill) -> None:
    key = await bill.account()
    data = await bill.send(key, numbers(1))
    mid = int(data["accepted"][0]["id"])
    bill.receipt(mid, "DELIVRD")
    # submitted again (its lease ran out while the first submit's outcome was on its way): the carrier ids
    # are recorded, the message stays delivered — the sweep may already have walked past it
    _submit(bill, mid, now_ms())
    assert _row(bill, mid)[0] == "delivered"
    assert bill.one("SELECT COUNT(*) FROM submits WHERE message_id = ?", (mid,))[0] == 2
    assert bill.r(stats.verify)["ok"]


async def test_a_long_walk_goes_in_bounded_steps_and_says_when_more_is_left(
    bill: Bill, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(receipts, "SWEEP_PAGE", 2)
    monkeypatch.setattr(receipts, "SWEEP_SCAN_MAX", 2)
    key = await bill.account()
    data = await bill.send(key, numbers(3))
    ids_ = [int(m["id"]) for m in data["accepted"]]
    t0 = now_ms()
    for mid in ids_:
        _submit(bill, mid, t0)
    later = t0 + 2 * HOUR
    assert bill.w(lambda tx: receipts.expire_step(tx, HOUR, limit=10, now=later)) == (2, True)  # 2 walked
    assert bill.w(lambda tx: receipts.expire_step(tx, HOUR, limit=10, now=later)) == (1, False)  # at the cutoff
    assert bill.w(lambda tx: receipts.expire_step(tx, HOUR, limit=10, now=later)) == (0, False)
    assert {_row(bill, m)[0] for m in ids_} == {"expired"}
