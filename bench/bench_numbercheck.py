"""Number status check (空号检测): 100,000 numbers from the platform's own evidence, and single checks/s.

Seeds a real database with the platform's own evidence for 100,000 distinct numbers — 200,000 message
rows (deliveries recent and old, empty-number receipts, switched-off receipts), a 5,000-number
blacklist and 2,000 complaints — then times, in process (no HTTP):

- ``batch``: ``NumberChecks.check`` of all 100,000 numbers in one call (evidence read with one query per
  source and chunk, classes, the fee debited and the 100,000 results stored in one transaction);
  upstream provider off, so every class comes from the own evidence. Target ≤ 2 s.
- ``evidence``: one number's own evidence read 300 times one after another, as one statement (a single
  check) and as the four per-source queries (a batch, per chunk).
- ``single``: ``--singles`` checks of one number each, ``--concurrency`` at a time (each one a read,
  the classes, a write with its ledger row and audit row, group-committed). Target ≥ 2,000/s.

    .venv/bin/python bench/bench_numbercheck.py [--numbers 100000] [--singles 5000] [--pg URL]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qixin.services.accounts import create_account
from qixin.services.actor import Actor
from qixin.services.numbercheck import NumberChecks, read_evidence
from qixin.services.pricing import create_plan
from qixin.store import numbercheck as store
from qixin.store.db import Database, now_ms
from qixin.store.migrate import migrate

DAY = 86_400_000


def numbers(rng: random.Random, n: int) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        out.add(str(13_800_000_000 + rng.randrange(10**8)))
    return list(out)


def seed(db: Database, acct: int, nums: list[str], rng: random.Random) -> None:
    now = now_ms()
    db.write_sync(
        lambda tx: tx.execute(
            "INSERT INTO channels (name, protocol, host, port, username, secret, created_at, updated_at)"
            " VALUES ('bench-cmpp', 'cmpp3', '127.0.0.1', 1, 'u', 's', 0, 0)"
        )
    )
    rows = []
    mid = 1
    for n in nums:
        for _ in range(2):
            r = rng.random()
            if r < 0.6:
                status, stat, age = "delivered", "DELIVRD", rng.randrange(200)
            elif r < 0.8:
                status, stat, age = "undelivered", "MK:0001", rng.randrange(30)
            else:
                status, stat, age = "undelivered", "MK:0013", rng.randrange(30)
            at = now - age * DAY
            rows.append((mid, 1, acct, n, "cmcc", "notification", 1, 35, status, "bench-cmpp", stat, "", at, at, at))
            mid += 1
    cols = ("id", "batch_id", "account_id", "number", "carrier", "type", "parts", "fee_li", "status", "channel",
            "carrier_stat", "carrier_err", "created_at", "submitted_at", "done_at")  # fmt: skip
    for i in range(0, len(rows), 50_000):
        part = rows[i : i + 50_000]
        db.write_sync(lambda tx, p=part: tx.bulk_insert("messages", cols, p))
    black = [(n, "", "staff", now) for n in nums[:5_000]]
    db.write_sync(lambda tx: tx.bulk_insert("blacklist", ("number", "reason", "source", "created_at"), black))
    compl = [(n, "staff", now) for n in nums[5_000:7_000]]
    db.write_sync(lambda tx: tx.bulk_insert("complaints", ("number", "actor", "created_at"), compl))
    if db.is_pg:  # fresh tables have no planner statistics yet (autovacuum would gather them in production)
        db.write_sync(lambda tx: tx.execute("ANALYZE"))


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(14)
    url = args.pg or f"sqlite:///{Path(tempfile.mkdtemp(prefix='qixin-bench-')) / 'n.db'}"
    migrate(url)
    db = Database(url)
    db.start()
    acct = int(db.write_sync(lambda tx: create_account(tx, "压测", "企信", 10**12, 35))["account_id"])
    db.write_sync(lambda tx: create_plan(tx, acct, "numcheck", 10))
    nums = numbers(rng, args.numbers)
    t0 = time.perf_counter()
    seed(db, acct, nums, rng)
    print(f"seeded {2 * len(nums):,} messages for {len(nums):,} numbers in {time.perf_counter() - t0:.1f} s")
    actor = Actor.customer(acct, "bench")
    checks = NumberChecks(db, provider=None, max_inline=len(nums))
    await checks.unit_price(acct)
    for round_ in range(args.rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        out = await checks.check_many(actor, nums)
        took, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"batch round {round_ + 1}: {len(nums):,} numbers in {took:.2f} s, CPU {cpu:.2f} s "
              f"(all threads; {len(nums) / took:,.0f}/s) "
              f"counts {out['counts']} fee {out['fee_li']} 厘")  # fmt: skip

    # one number's own evidence, read one after another: one statement (what a single check does) against
    # the four per-source queries (what a batch does per chunk)
    sample = nums[:300]
    protocols = db.read_sync(store.channel_protocols)
    for label, read in (
        ("one statement", lambda tx, n: store.evidence_small(tx, [n])),
        ("four queries", lambda tx, n: (store.history(tx, [n]), store.blacklisted(tx, [n]),
                                        store.complaint_counts(tx, [n]), store.ported(tx, [n]))),
        ("read_evidence", lambda tx, n: read_evidence(tx, [n], protocols)),
    ):  # fmt: skip
        t0 = time.perf_counter()
        for n in sample:
            db.read_sync(lambda tx, n=n, read=read: read(tx, n))
        print(f"evidence of one number, {label}: {(time.perf_counter() - t0) / len(sample) * 1e6:,.0f} µs")

    singles = nums[: args.singles]
    sem = asyncio.Semaphore(args.concurrency)
    lat: list[float] = []

    async def one(n: str) -> None:
        async with sem:
            s = time.perf_counter()
            await checks.check(actor, [n])
            lat.append(time.perf_counter() - s)

    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(n) for n in singles))
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    lat.sort()
    p50, p99 = lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99) - 1] * 1000
    print(f"single checks: {len(singles):,} in {took:.2f} s = {len(singles) / took:,.0f}/s "
          f"(CPU {cpu:.2f} s; concurrency {args.concurrency}), p50 {p50:.1f} ms, p99 {p99:.1f} ms")  # fmt: skip
    db.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--numbers", type=int, default=100_000)
    p.add_argument("--singles", type=int, default=5_000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pg", default="")
    asyncio.run(run(p.parse_args()))
