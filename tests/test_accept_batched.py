"""Concurrent single sends are written together (services/accept.py ``persist_many``, store/db.py
``Batched``), on SQLite and PostgreSQL: one call for the group, and every send's outcome as it would have
been alone in some order — exact money per account, a refused send writes nothing but its guard."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _billing import Bill

from qixin.errors import QxError
from qixin.services import accept as accept_mod
from qixin.store.db import Batched, Tx

PRICE_LI = 35


@pytest.fixture
def bill(db_url: str) -> Iterator[Bill]:
    b = Bill(db_url, writers=1)  # one writer (PostgreSQL has four by default): the gate holds all of them
    yield b
    b.close()


class _Gate:
    """Holds the only writer while sends queue up behind it, so that they reach it as ONE group; counts
    the Batched jobs queued, so the test opens the gate when all of them are (a condition, not a sleep)."""

    def __init__(self, bill: Bill) -> None:
        self.bill, self.open, self.entered = bill, threading.Event(), threading.Event()
        self.queued = 0
        self.cond = threading.Condition()
        self._submit = bill.db.submit

    def __enter__(self) -> _Gate:
        def hold(tx: Tx) -> None:
            self.entered.set()
            assert self.open.wait(20), "gate never opened"

        self.first = self._submit(hold)
        assert self.entered.wait(10)

        def counting(job: Any) -> Any:
            fut = self._submit(job)
            if isinstance(job, Batched):
                with self.cond:
                    self.queued += 1
                    self.cond.notify_all()
            return fut

        self.bill.db.submit = counting  # type: ignore[method-assign]
        return self

    async def release_when(self, n: int) -> None:
        def wait() -> bool:
            with self.cond:
                return self.cond.wait_for(lambda: self.queued >= n, timeout=20)

        assert await asyncio.to_thread(wait), f"only {self.queued} of {n} sends reached the writer"
        self.open.set()

    def __exit__(self, *exc: Any) -> None:
        self.open.set()
        self.bill.db.submit = self._submit  # type: ignore[method-assign]
        self.first.result(timeout=10)


async def _outcome(coro: Any) -> Any:
    try:
        return await coro
    except QxError as e:
        return e


async def test_concurrent_sends_are_one_write_with_each_outcome_exact(
    bill: Bill, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await bill.account(balance_li=3 * PRICE_LI, price_li=PRICE_LI)  # pays for three sends
    b = await bill.account(balance_li=100_000, price_li=PRICE_LI)
    calls: list[int] = []
    real = accept_mod.persist_many

    def recording(tx: Tx, items: list[Any]) -> list[Any]:
        calls.append(len(items))
        return real(tx, items)

    monkeypatch.setattr(accept_mod, "persist_many", recording)
    with _Gate(bill) as gate:
        sends = [bill.send(a, f"1390000{i:04d}") for i in range(5)]
        sends += [bill.send(b, f"1380000{i:04d}") for i in range(3)]
        sends.append(bill.send(a, "13700000001", idempotency_key="k-1"))  # not plain: persisted alone, first
        sends.append(bill.send(b, ["13600000001", "13600000002"]))  # two numbers, still small: merged
        tasks = [asyncio.ensure_future(_outcome(s)) for s in sends]
        await gate.release_when(len(tasks))
        out = await asyncio.gather(*tasks)
    assert calls[0] == len(tasks), calls  # the whole group in one call

    a_out = [*out[:5], out[8]]
    ok_a = [o for o in a_out if not isinstance(o, QxError)]
    refused_a = [o for o in a_out if isinstance(o, QxError)]
    assert len(ok_a) == 3 and [e.code for e in refused_a] == ["INSUFFICIENT_BALANCE"] * 3
    assert all(e.detail["required_li"] == PRICE_LI for e in refused_a)
    assert not isinstance(out[8], QxError)  # the idempotent send went first (alone, before the plain ones)
    assert all(o["accepted_count"] == 1 and o["total_fee_li"] == PRICE_LI for o in ok_a)
    b_out = [*out[5:8], out[9]]
    assert not any(isinstance(o, QxError) for o in b_out)
    assert [o["accepted_count"] for o in b_out] == [1, 1, 1, 2] and out[9]["total_fee_li"] == 2 * PRICE_LI

    assert bill.balance(a.account_id) == 0
    assert bill.balance(b.account_id) == 100_000 - 5 * PRICE_LI
    ledger = bill.r(
        lambda tx: tx.all(
            "SELECT amount_li, balance_after_li, ref FROM ledger WHERE account_id = ? AND kind = 'charge' ORDER BY id",
            (a.account_id,),
        )
    )
    assert [(int(x), int(y)) for x, y, _ in ledger] == [(-35, 70), (-35, 35), (-35, 0)]
    assert sorted(r for _, _, r in ledger) == sorted(f"batch:{o['batch_id']}" for o in ok_a)
    for acct, batches, messages in ((a, ok_a, 3), (b, b_out, 5)):
        ids = [int(m["id"]) for o in batches for m in o["accepted"]]
        rows = bill.r(
            lambda tx, acct=acct: tx.all(
                "SELECT m.id, m.batch_id, m.fee_li, m.status, q.priority FROM messages m"
                " JOIN dispatch_queue q ON q.message_id = m.id WHERE m.account_id = ? ORDER BY m.id",
                (acct.account_id,),
            )
        )
        assert sorted(ids) == [int(r[0]) for r in rows] and len(rows) == messages
        assert {int(r[2]) for r in rows} == {PRICE_LI} and {r[3] for r in rows} == {"queued"}
        n_batches = bill.one("SELECT COUNT(*) FROM batches WHERE account_id = ?", (acct.account_id,))[0]
        assert int(n_batches) == len(batches)
    assert bill.verify()["ok"], bill.verify()


class _Guard:
    """A request guard that writes a row (as the API's nonce does) or refuses."""

    def __init__(self, name: str, refuse: bool = False) -> None:
        self.name, self.refuse, self.spent = name, refuse, False

    def __call__(self, tx: Tx) -> None:
        if self.refuse:
            raise QxError("NONCE_REPLAYED")
        tx.execute("INSERT INTO api_nonces (app_key, nonce, expires_at) VALUES ('t', ?, 0)", (self.name,))

    def committed(self) -> None:
        self.spent = True


async def test_a_guard_refused_or_a_send_refused_in_the_group_leaves_the_others_whole(bill: Bill) -> None:
    a = await bill.account(balance_li=PRICE_LI, price_li=PRICE_LI)  # one send's worth
    guards = [_Guard("g0"), _Guard("g1", refuse=True), _Guard("g2"), _Guard("g3")]
    body = {"content": "您的验证码是 123456", "signature": "企信"}
    with _Gate(bill) as gate:
        tasks = []
        for i, g in enumerate(guards):
            one = body | {"to": f"1390000{i:04d}"}
            raw = accept_mod.orjson.dumps(one)
            tasks.append(asyncio.ensure_future(_outcome(bill.accept.accept(a, one, raw, guard=g))))
        await gate.release_when(len(tasks))
        out = await asyncio.gather(*tasks)
    assert isinstance(out[1], QxError) and out[1].code == "NONCE_REPLAYED" and not guards[1].spent
    others = [out[0], out[2], out[3]]  # the balance pays for one of them: whichever reached the writer first
    assert [o["accepted_count"] for o in others if not isinstance(o, QxError)] == [1]
    assert sorted(o.code for o in others if isinstance(o, QxError)) == ["INSUFFICIENT_BALANCE"] * 2
    assert [g.spent for g in guards] == [True, False, True, True]  # a refused send still spends its guard
    nonces = bill.r(lambda tx: tx.all("SELECT nonce FROM api_nonces WHERE app_key = 't' ORDER BY nonce"))
    assert [r[0] for r in nonces] == ["g0", "g2", "g3"]
    assert int(bill.one("SELECT COUNT(*) FROM messages WHERE account_id = ?", (a.account_id,))[0]) == 1
    assert int(bill.one("SELECT COUNT(*) FROM batches WHERE account_id = ?", (a.account_id,))[0]) == 1
    assert bill.balance(a.account_id) == 0 and bill.verify()["ok"]


async def test_a_send_refused_after_writing_by_on_persist_leaves_nothing_beside_its_neighbours(bill: Bill) -> None:
    """``on_persist`` (a customer port's receipt rows and daily cap) may refuse after the messages are
    written: that send alone is undone, in a group with neighbours and alone."""
    a = await bill.account(balance_li=100_000, price_li=PRICE_LI)

    def refuse(tx: Tx, p: Any) -> None:
        raise QxError("DAILY_CAP_EXCEEDED")

    def send(to: str, on_persist: Any = None) -> Any:
        one = {"to": to, "content": "您的验证码是 123456", "signature": "企信"}
        return asyncio.ensure_future(
            _outcome(bill.accept.accept(a, one, accept_mod.orjson.dumps(one), on_persist=on_persist))
        )

    with _Gate(bill) as gate:
        tasks = [send("13900000001"), send("13900000002", refuse), send("13900000003", lambda tx, p: None)]
        await gate.release_when(len(tasks))
        out = await asyncio.gather(*tasks)
    assert isinstance(out[1], QxError) and out[1].code == "DAILY_CAP_EXCEEDED"
    assert out[0]["accepted_count"] == 1 and out[2]["accepted_count"] == 1
    alone = {"to": "13900000004", "content": "您的验证码是 123456", "signature": "企信"}
    alone = await _outcome(bill.accept.accept(a, alone, accept_mod.orjson.dumps(alone), on_persist=refuse))
    assert isinstance(alone, QxError) and alone.code == "DAILY_CAP_EXCEEDED"
    numbers = bill.r(
        lambda tx: tx.all("SELECT number FROM messages WHERE account_id = ? ORDER BY number", (a.account_id,))
    )
    assert [r[0] for r in numbers] == ["13900000001", "13900000003"]
    assert int(bill.one("SELECT COUNT(*) FROM batches WHERE account_id = ?", (a.account_id,))[0]) == 2
    assert bill.balance(a.account_id) == 100_000 - 2 * PRICE_LI and bill.verify()["ok"]
