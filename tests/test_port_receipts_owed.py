"""Receipts owed to customer ports become ready in the transaction that makes their message final
(services/receipts.py ``_owe_receipts``): a final receipt, a submit failure, a receipt timeout — with the
stat and err the pump's scan (``PortDesk.finalise``, the safety net) would give them. Only a failures-only
receipt of a delivered message is left to that scan, which drops it."""

from __future__ import annotations

from typing import Any

from qixin.gateway.ports.base import FINALISE_BATCH, FINALISE_ROUNDS, Pump
from qixin.services.ports import finalise_waiting
from qixin.services.receipts import (
    Failed,
    Receipt,
    Submitted,
    apply_receipts,
    expire_step,
    receipt_stat,
    record_failures,
    record_submits,
)
from qixin.store import connections as port_store
from qixin.store.db import Database, Tx, now_ms
from qixin.store.migrate import migrate

# message id -> what becomes of it
CASES = {11: "delivered", 12: "undelivered", 13: "failed", 14: "expired", 15: "still submitted"}


def _setup(tx: Tx) -> None:
    tx.execute(
        "INSERT INTO accounts (id, name, status, balance_li, price_li, allow_free_text, created_at)"
        " VALUES (1, 'a', 'active', 0, 0, ?, 0)",
        (True,),
    )
    for mid in CASES:
        tx.execute(
            "INSERT INTO batches (id, account_id, type, signature, total, accepted, rejected, fee_li, created_at)"
            " VALUES (?, 1, 'notification', 's', 1, 1, 0, 0, 0)",
            (mid,),
        )
        tx.execute(
            "INSERT INTO messages (id, batch_id, account_id, number, carrier, type, parts, fee_li, status,"
            " created_at, refunded, receipts_pending) VALUES (?, ?, 1, '13800138000', 'cmcc', 'notification', 1, 0,"
            " 'queued', 0, ?, 0)",
            (mid, mid, False),
        )
        # one receipt always wanted, one for failures only (SMPP registered_delivery 2), per message
        port_store.insert_events(
            tx,
            [
                (1, 5, "receipt", "waiting", only, mid, f"c{mid}-{int(only)}", "1069", "13800138000", "hi", None,
                 None, 100, None, 0)
                for only in (False, True)
            ],
        )  # fmt: skip


def _events(db: Database) -> dict[str, tuple[Any, ...]]:
    rows = db.read_sync(lambda tx: tx.all("SELECT customer_id, state, stat, err, done_at FROM port_events"))
    return {r[0]: (r[1], r[2], r[3], None if r[4] is None else int(r[4])) for r in rows}


def test_receipts_become_ready_with_the_message_final_status(db_url: str) -> None:
    migrate(db_url)
    db = Database(db_url)
    try:
        db.write_sync(_setup)
        submitted = [Submitted(mid, "ch", [f"x{mid}"], 1_000) for mid in (11, 12, 14, 15)]
        db.write_sync(lambda tx: record_submits(tx, submitted))
        db.write_sync(lambda tx: record_failures(tx, [Failed(13, "SUBMIT_REJECTED", "0x00000045", 1_500)]))
        receipts = [Receipt("ch", "x11", "DELIVRD", "000", 2_000), Receipt("ch", "x12", "UNDELIV", "013", 2_100)]
        assert db.write_sync(lambda tx: apply_receipts(tx, receipts)) == (2, [])
        # the receipt timeout: 14 was submitted long ago, 15 just now (it stays submitted)
        now = now_ms()
        db.write_sync(lambda tx: tx.execute("UPDATE messages SET submitted_at = ? WHERE id = 15", (now,)))
        assert db.write_sync(lambda tx: expire_step(tx, 5_000, 100, now=now))[0] == 1

        got = _events(db)
        states = {mid: db.read_sync(lambda tx, m=mid: tx.one("SELECT status, carrier_stat, carrier_err, error_code,"
                                                              " done_at FROM messages WHERE id = ?", (m,)))
                  for mid in CASES}  # fmt: skip
        assert states[15][0] == "submitted" and states[14][0] == "expired" and states[13][0] == "failed"
        for mid, (status, cstat, cerr, code, done_at) in states.items():
            if status == "submitted":  # not final: both still wait
                assert got[f"c{mid}-0"][0] == got[f"c{mid}-1"][0] == "waiting"
                continue
            stat, err = receipt_stat(status, cstat, cerr, code)
            assert got[f"c{mid}-0"] == ("ready", stat, err, int(done_at)), mid
            if status == "delivered":  # the failures-only one is owed nothing: left to the scan, which drops it
                assert got[f"c{mid}-1"][0] == "waiting"
            else:
                assert got[f"c{mid}-1"] == ("ready", stat, err, int(done_at)), mid
        assert got["c11-0"][1:3] == ("DELIVRD", "000") and got["c12-0"][1:3] == ("UNDELIV", "013")
        # the pump's scan finds only that one, and deletes it; the other rows stay as they are
        assert db.write_sync(lambda tx: finalise_waiting(tx, 100)) == 1
        after = _events(db)
        assert "c11-1" not in after and after == {k: v for k, v in got.items() if k != "c11-1"}
    finally:
        db.close()


class _Desk:
    """A PortDesk stand-in whose scan finds a backlog of ``batches`` full transactions, then a few rows."""

    def __init__(self, batches: int) -> None:
        self.left = batches
        self.calls: list[int] = []

    async def finalise(self, limit: int = 2000) -> int:
        self.calls.append(limit)
        if self.left:
            self.left -= 1
            return limit
        return 3


async def test_the_pump_scan_drains_a_backlog_in_one_round_and_then_waits() -> None:
    desk = _Desk(batches=3)
    pump = Pump(desk, [], finalise_every=30.0)  # type: ignore[arg-type]
    await pump.run_once()
    assert desk.calls == [FINALISE_BATCH] * 4  # three full transactions, then one that found few: done
    await pump.run_once()
    assert len(desk.calls) == 4  # the next scan is 30 s away
    never_empty = _Desk(batches=10_000)
    await Pump(never_empty, [], finalise_every=30.0).run_once()  # type: ignore[arg-type]
    assert len(never_empty.calls) == FINALISE_ROUNDS  # bounded: the rest waits for the next scan
