"""Retention purge: a month of old messages (N rows, with their batches and submitted parts) purged on
SQLite and PostgreSQL, with a probe measuring how long the shared writer is held.

Usage (from the repository root):

    .venv/bin/python bench/bench_retention.py --rows 200000 [--db sqlite|postgresql|both] [--pg URL]

Reports rows/s of the purge, the number of chunks, the longest chunk transaction (its statements, as
the purge measures it) and the longest wait of a one-row write job submitted every 5 ms while the purge
runs (what a send request would wait for the writer). Rows are generated directly in the tables (no
platform): 1,000 batches, one submitted part per message, every message delivered, 200 days old.
Bounded: at most 1,000,000 rows.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import PostgresDb, machine

from qixin import ids
from qixin.services.actor import Actor
from qixin.services.retention import Retention
from qixin.store.db import Database, Tx, now_ms
from qixin.store.migrate import migrate

DAY_MS = 86_400_000
MSG_COLS = ("id", "batch_id", "account_id", "number", "carrier", "province", "type", "parts", "fee_li", "status",
            "channel", "receipts_pending", "carrier_stat", "carrier_err", "refunded", "created_at", "submitted_at",
            "done_at")  # fmt: skip
BATCH_COLS = ("id", "account_id", "type", "signature", "content", "total", "accepted", "rejected", "fee_li",
              "created_at")  # fmt: skip
SUBMIT_COLS = ("channel", "carrier_msg_id", "message_id", "part_no", "stat", "submitted_at")


def generate(db: Database, rows: int, age_days: int = 200) -> None:
    """``rows`` delivered messages spread over one month ending ``age_days`` ago."""
    end = now_ms() - age_days * DAY_MS
    start = end - 30 * DAY_MS
    n_batches = 1000
    per_batch = max(rows // n_batches, 1)
    made = 0
    db.write_sync(
        lambda tx: tx.execute(
            "INSERT INTO accounts (id, name, balance_li, price_li, created_at) VALUES (1, 'bench', 0, 35, ?)", (start,)
        )
    )
    for b in range(n_batches):
        if made >= rows:
            break
        at = start + (end - start) * b // n_batches
        bid = ((at - ids.EPOCH_MS) << 22) | (b & 0xFFF)
        count = min(per_batch, rows - made) if b < n_batches - 1 else rows - made
        msgs, subs = [], []
        for i in range(count):
            mid = ((at - ids.EPOCH_MS + 1 + i // 4096) << 22) | (1 << 12) | (i % 4096)
            msgs.append((mid, bid, 1, f"139{(made + i) % 10**8:08d}", "cmcc", "北京", "notification", 1, 35,
                         "delivered", "smpp-sim", 0, "DELIVRD", "000", False, at, at + 10, at + 900))  # fmt: skip
            subs.append(("smpp-sim", f"c{mid}", mid, 1, "DELIVRD", at + 10))

        def job(tx: Tx, msgs: list = msgs, subs: list = subs, bid: int = bid, at: int = at, count: int = count) -> None:  # type: ignore[type-arg]
            tx.bulk_insert("batches", BATCH_COLS, [(bid, 1, "notification", "企信", "您的订单已发货", count, count, 0,
                                                    35 * count, at)])  # fmt: skip
            tx.bulk_insert("messages", MSG_COLS, msgs)
            tx.bulk_insert("submits", SUBMIT_COLS, subs)

        db.write_sync(job)
        made += count


async def measure(url: str, rows: int) -> dict[str, object]:
    migrate(url)
    db = Database(url)
    db.start()
    t0 = time.perf_counter()
    generate(db, rows)
    gen_s = time.perf_counter() - t0
    if db.is_pg:  # as autovacuum would have done for a month-old table: current planner statistics
        db.write_sync(lambda tx: tx.execute("ANALYZE"))
    retention = Retention(db, days=183)
    waits: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            t = time.perf_counter()
            await db.write(lambda tx: tx.one("SELECT 1"))
            waits.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.005)

    task = asyncio.create_task(probe())
    t1 = time.perf_counter()
    out = await retention.purge(Actor.cli())
    elapsed = time.perf_counter() - t1
    done.set()
    await task
    left = db.read_sync(lambda tx: tx.one("SELECT COUNT(*) FROM messages")[0])
    db.close()
    purged = out["purged"]
    assert isinstance(purged, dict) and purged["messages"] == rows and left == 0, (out, left)
    waits.sort()
    return {
        "rows": rows,
        "generate_s": round(gen_s, 1),
        "purge_s": round(elapsed, 2),
        "rows_per_s": int(rows / elapsed),
        "chunks": out["chunks"],
        "longest_chunk_ms": out["longest_chunk_ms"],
        "longest_chunk_commit_ms": out["longest_chunk_commit_ms"],
        "chunk_p90_commit_ms": out["chunk_p90_commit_ms"],
        "probe_writes": len(waits),
        "probe_p99_ms": round(waits[int(len(waits) * 0.99) - 1], 1) if waits else None,
        "probe_max_ms": round(waits[-1], 1) if waits else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    args = ap.parse_args()
    rows = min(args.rows, 1_000_000)
    print(f"# bench_retention: {rows} rows; {machine()}")
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as d:
            print("sqlite    ", asyncio.run(measure(f"sqlite:///{d}/qixin.db", rows)))
    if args.db in ("postgresql", "both"):
        with PostgresDb(args.pg) as pg:
            print("postgresql", asyncio.run(measure(pg.url, rows)))


if __name__ == "__main__":
    main()
