"""Receipts that arrive before their submit is stored are parked durably and matched later."""

from __future__ import annotations

from qixin.services.receipts import Receipt, Submitted, park_receipts, record_submits, retry_parked
from qixin.store.db import Database, Tx
from qixin.store.migrate import migrate


def _message(tx: Tx, mid: int) -> None:
    tx.execute(
        "INSERT INTO accounts (id, name, status, balance_li, price_li, allow_free_text, created_at)"
        " VALUES (1, 'a', 'active', 0, 0, ?, 0)",
        (True,),
    )
    tx.execute(
        "INSERT INTO batches (id, account_id, type, signature, total, accepted, rejected, fee_li, created_at)"
        " VALUES (?, 1, 'notification', 's', 1, 1, 0, 0, 0)",
        (mid,),
    )
    tx.execute(
        "INSERT INTO messages (id, batch_id, account_id, number, carrier, type, parts, fee_li, status, created_at,"
        " refunded, receipts_pending) VALUES (?, ?, 1, '13800138000', 'cmcc', 'notification', 1, 0, 'queued', 0,"
        " ?, 0)",
        (mid, mid, False),
    )


def test_parked_receipt_matches_once_the_submit_is_stored(db_url: str) -> None:
    migrate(db_url)
    db = Database(db_url)
    try:
        db.write_sync(lambda tx: _message(tx, 7))
        early = Receipt("ch", "abc", "DELIVRD", "000", 1_000)
        orphan = Receipt("ch", "never", "DELIVRD", "000", 1_000)
        db.write_sync(lambda tx: park_receipts(tx, [early, orphan]))
        # nothing to match yet: both stay parked
        assert db.write_sync(lambda tx: retry_parked(tx, 100, stale_before=0)) == (0, 0, 0)
        db.write_sync(lambda tx: record_submits(tx, [Submitted(7, "ch", ["abc"], 900)]))
        # now the early one matches and finalises the message; the other is older than the cut-off
        assert db.write_sync(lambda tx: retry_parked(tx, 100, stale_before=2_000)) == (1, 1, 1)
        status = db.read_sync(lambda tx: tx.one("SELECT status FROM messages WHERE id = 7")[0])
        assert status == "delivered"
        assert db.read_sync(lambda tx: tx.one("SELECT COUNT(*) FROM receipt_inbox")[0]) == 0
    finally:
        db.close()
