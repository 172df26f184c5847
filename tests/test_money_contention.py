"""Money under contention, on SQLite and PostgreSQL: many concurrent single sends against a small balance and
a few small packages, while top-ups, refunds (platform failures of accepted messages, some reported twice)
and package grants and expiries run at the same time, through the real accept path and writer.

Never negative (polled during the run, and the refusals are INSUFFICIENT_BALANCE only), balance == ledger,
each package's counter == its ledger entries (``billing.verify``), and the money adds up exactly: final
balance = initial + top-ups − what the accepted messages were charged + what was refunded; package parts
used by accepted messages = granted − remaining − expired + returned.

Sizes: CI 1,000 sends per database; soak (``-m soak``) ``QIXIN_SOAK_MONEY_N``, 10,000 by default."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Iterator
from typing import Any

import pytest
from _billing import Bill

from qixin.errors import QxError
from qixin.services import billing
from qixin.services.receipts import Failed, record_failures
from qixin.store.db import Tx, now_ms

PRICE_LI = 35


@pytest.fixture
def bill(db_url: str) -> Iterator[Bill]:
    b = Bill(db_url)
    yield b
    b.close()


async def contend(bill: Bill, n: int, concurrency: int = 64) -> dict[str, Any]:
    start_li = 40 * PRICE_LI  # a small balance: 40 messages
    key = await bill.account(balance_li=start_li, price_li=PRICE_LI)
    acct = key.account_id
    rng = random.Random(9)
    accepted: list[dict[str, Any]] = []
    refused: list[str] = []
    topped = refunded_ids = 0
    negative: list[int] = []
    done = asyncio.Event()
    answered = asyncio.Event()  # set at each send's answer (and at the end)
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            try:
                data = await bill.send(key, f"139{i:08d}", content="并发扣费")
            except QxError as e:
                refused.append(e.code)
                return
            finally:
                answered.set()
            accepted.append(data)

    async def after(sends: int) -> bool:
        """Wait until ``sends`` sends have their answer (False: the run is over). The side tasks are paced by
        the sends, not by the clock, so that on any machine's speed the money they bring in stays below what
        the sends take (per 100 sends about 650 厘 of top-ups and 350 of refunds, 42 package parts, against
        3,500 厘 of sends): the balance runs out, refusals come, and top-ups keep letting some through."""
        while len(accepted) + len(refused) < sends and not done.is_set():
            answered.clear()
            await answered.wait()
        return not done.is_set()

    async def topups() -> None:
        nonlocal topped
        i = 0
        while await after(20 * (i + 1)):
            amount = rng.choice((7, 35, 350))
            await bill.db.write(lambda tx, a=amount, i=i: billing.topup(tx, acct, a, f"t-{i}", operator=True))
            topped += amount
            i += 1

    refunded: set[int] = set()

    async def refunds() -> None:
        i = 0
        while await after(10 * (i + 1)):
            i += 1
            if not accepted:
                continue
            data = rng.choice(accepted)
            mid = int(data["accepted"][0]["id"])
            # a platform failure refunds; reported twice at times, refunded once
            fails = [Failed(mid, "SUBMIT_REJECTED", "", now_ms())] * rng.choice((1, 2))
            await bill.db.write(lambda tx, f=fails: record_failures(tx, f))
            refunded.add(mid)

    async def packages() -> None:
        i = 0
        while await after(25 * (i + 1)):
            pkg = await bill.db.write(
                lambda tx, i=i: billing.grant_package(tx, acct, "term", rng.randint(1, 20), f"p-{i}", months=1)
            )
            await asyncio.sleep(0.05)
            # this package's validity ends (the billing worker's sweep at its expiry time), sends still running
            await bill.db.write(lambda tx, at=pkg["expires_at"]: billing.expire_due(tx, at))
            i += 1

    async def watch() -> None:
        while not done.is_set():
            bal = await bill.db.read(lambda tx: tx.one("SELECT balance_li FROM accounts WHERE id = ?", (acct,))[0])
            if int(bal) < 0:
                negative.append(int(bal))
            await asyncio.sleep(0.005)

    side = [asyncio.create_task(t()) for t in (topups, refunds, packages, watch)]
    try:
        await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        done.set()
        answered.set()
        await asyncio.gather(*side)
    refunded_ids = len(refunded)

    def state(tx: Tx) -> dict[str, Any]:
        q = tx.one
        return {
            "balance": int(q("SELECT balance_li FROM accounts WHERE id = ?", (acct,))[0]),
            "ledger": int(q("SELECT SUM(amount_li) FROM ledger WHERE account_id = ?", (acct,))[0]),
            "refunds": int(
                q("SELECT COALESCE(SUM(amount_li), 0) FROM ledger WHERE account_id = ? AND kind = 'refund'", (acct,))[0]
            ),
            "min_after": int(q("SELECT MIN(balance_after_li) FROM ledger WHERE account_id = ?", (acct,))[0]),
            "pkg": {
                k: int(v or 0)
                for k, v in tx.all(
                    "SELECT kind, SUM(parts) FROM package_ledger WHERE account_id = ? GROUP BY kind", (acct,)
                )
            },
            "remaining": int(
                q("SELECT COALESCE(SUM(remaining_parts), 0) FROM packages WHERE account_id = ?", (acct,))[0]
            ),
            "verify": billing.verify(tx),
        }

    s = await bill.db.read(state)
    charged = sum(int(d["total_fee_li"]) for d in accepted)
    parts_used = sum(int(d["package_parts"]) for d in accepted)
    assert not negative, negative[:5]
    assert s["min_after"] >= 0
    assert set(refused) <= {"INSUFFICIENT_BALANCE"}, set(refused)
    assert len(accepted) + len(refused) == n
    assert s["verify"]["ok"], s["verify"]
    assert s["balance"] == s["ledger"] == start_li + topped - charged + s["refunds"], (s, topped, charged)
    assert s["balance"] >= 0
    pk = s["pkg"]
    assert -pk.get("use", 0) == parts_used  # every package part an accepted message took is a ledger entry
    assert pk.get("grant", 0) + pk.get("use", 0) + pk.get("expire", 0) + pk.get("return", 0) == s["remaining"]
    figures = {"n": n, "accepted": len(accepted), "refused": len(refused), "topped_li": topped, "charged_li": charged,
               "refunded_messages": refunded_ids, "package_parts": parts_used, "balance_li": s["balance"]}  # fmt: skip
    print(f"\nmoney under contention: {figures}")
    return figures


async def test_money_under_contention_ci(bill: Bill) -> None:
    figures = await contend(bill, 1_000)
    assert figures["refused"] > 0 and figures["accepted"] > 40  # the balance ran out and top-ups came in


@pytest.mark.soak
@pytest.mark.timeout(3600)
async def test_money_under_contention_soak(bill: Bill, request: pytest.FixtureRequest) -> None:
    if "soak" not in (request.config.getoption("-m") or ""):
        pytest.skip("full scale: run with -m soak (QIXIN_SOAK_MONEY_N sends, default 10,000)")
    await contend(bill, int(os.environ.get("QIXIN_SOAK_MONEY_N", "10000")), concurrency=256)
