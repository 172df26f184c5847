"""Receipt timeout: a submitted message whose final receipt never comes expires after ``receipt_timeout``
(error RECEIPT_TIMEOUT), refunded only as the refund rules say, with its webhook event; bounded batches."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from _billing import Bill, numbers

from qixin.services import billing
from qixin.services.receipts import Receipt, Submitted, apply_receipts, expire_unreceipted, record_submits
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
    now = now_ms()
    for mid in (a, b, d, e):
        _submit(bill, mid, now - 2 * HOUR)
    _submit(bill, c, now - 10_000)  # recent: its receipt may still come
    bill.w(lambda tx: apply_receipts(tx, [Receipt("ch", f"c{a}", "DELIVRD", "000", now - HOUR)]))  # a is final

    # bounded: one message per transaction here, oldest first; the rule decides the refund
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


def test_the_sweep_reads_the_partial_index(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'i.db'}"
    migrate(url)
    db = Database(url)
    try:
        plan = db.read_sync(
            lambda tx: tx.all(
                "EXPLAIN QUERY PLAN SELECT id FROM messages WHERE status = 'submitted' AND submitted_at < ?"
                " ORDER BY submitted_at LIMIT ?",
                (1, 10),
            )
        )
        assert any("ix_messages_awaiting_receipt" in str(r[-1]) for r in plan), plan
    finally:
        db.close()
