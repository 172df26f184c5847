"""Retention purge: a month of old messages (N rows, with their batches and submitted parts) purged on
SQLite and PostgreSQL, with a probe measuring how long the shared writer is held.

Usage (from the repository root):

    .venv/bin/python bench/bench_retention.py --rows 200000 [--db sqlite|postgresql|both] [--pg URL]
    .venv/bin/python bench/bench_retention.py --partition --rows 10000000 [--pg URL]
    .venv/bin/python bench/bench_retention.py --migration --rows 2000000 [--pg URL]

``--partition`` (PostgreSQL): the month's rows are generated in SQL (generate_series, no Python rows)
into the month partition of 8 months ago (messages and one submitted part each, 1,000 batches, one
message kept as open-complaint evidence); the purge detaches and drops the month. Reports the time of
the detach transaction (the parents' exclusive lock, commit included), of the drop of the detached
tables (no lock on the parents), the whole purge (its read-only scan of the month first: counts and the
rows to keep), and the longest wait of a probe write job that reads ``messages`` every 5 ms (it waits
for the parent's lock).

``--migration`` (PostgreSQL): the tables as they were before migration 0022_retention2 are given N
messages and parts (SQL), then the migration runs: how long converting a table with rows takes (it
becomes the legacy partition; submits gets its new primary key). Bounded: at most 20,000,000 rows.

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
from typing import Any

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


async def probed_purge(
    db: Database, retention: Retention, probe_sql: str
) -> tuple[dict[str, Any], float, list[float], int]:
    """Run the purge while a probe writes ``probe_sql`` every 5 ms: (the purge's answer, its seconds, the
    probe's waits in ms sorted, messages left); closes ``db``."""
    waits: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            t = time.perf_counter()
            await db.write(lambda tx: tx.one(probe_sql))
            waits.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.005)

    task = asyncio.create_task(probe())
    t1 = time.perf_counter()
    out = await retention.purge(Actor.cli())
    elapsed = time.perf_counter() - t1
    if await retention.files_freed() is not None:  # PostgreSQL: the dropped months' files, in the background
        out["files_freed_after_s"] = round(time.perf_counter() - t1, 2)
    done.set()
    await task
    left = db.read_sync(lambda tx: tx.one("SELECT COUNT(*) FROM messages")[0])
    db.close()
    waits.sort()
    return out, elapsed, waits, int(left)


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
    out, elapsed, waits, left = await probed_purge(db, retention, "SELECT 1")
    purged = out["purged"]
    assert isinstance(purged, dict) and purged["messages"] == rows and left == 0, (out, left)
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


def generate_sql(db: Database, rows: int, months_ago: int = 8) -> tuple[int, int]:
    """``rows`` delivered messages spread over one Beijing month ``months_ago`` months back, made by
    generate_series in chunks of 1,000,000 (messages, then their submits); returns the month."""
    from qixin.store import partitions

    year, month = partitions.month_of(now_ms())
    for _ in range(months_ago):
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    start, end = partitions.month_start(year, month), partitions.month_start(year, month + 1)
    span = end - start - 3_600_000  # an hour of margin at the end
    db.write_sync(lambda tx: partitions.create_month(tx, year, month))
    db.write_sync(
        lambda tx: tx.execute(
            "INSERT INTO accounts (id, name, balance_li, price_li, created_at) VALUES (1, 'bench', 0, 35, ?)", (start,)
        )
    )
    e = ids.EPOCH_MS

    def batches(tx: Tx) -> None:
        tx.execute(
            "INSERT INTO batches (id, account_id, type, signature, content, total, accepted, rejected, fee_li,"
            f" created_at) SELECT ((({start} + b * {span} / 1000) - {e}) << 22) + 4095, 1, 'notification', '企信',"
            " '您的订单已发货',"
            f" {rows // 1000}, {rows // 1000}, 0, 35, {start} + b * {span} / 1000 FROM generate_series(0, 999) b"
        )

    db.write_sync(batches)
    step = 1_000_000
    for low in range(0, rows, step):
        high = min(low + step, rows)

        def chunk(tx: Tx, low: int = low, high: int = high) -> None:
            tx.execute(
                "INSERT INTO messages (id, batch_id, account_id, number, carrier, province, type, parts, fee_li,"
                " status, channel, receipts_pending, carrier_stat, carrier_err, refunded, created_at, submitted_at,"
                " done_at)"
                f" SELECT ((ms - {e}) << 22) + (g % 4096), ((({start} + b * {span} / 1000) - {e}) << 22) + 4095, 1,"
                " '139' || lpad((g % 100000000)::text, 8, '0'), 'cmcc', '北京', 'notification', 1, 35, 'delivered',"
                " 'smpp-sim', 0, 'DELIVRD', '000', false, ms, ms + 10, ms + 900"
                f" FROM (SELECT g, {start} + g * {span} / {rows} AS ms, g * 1000 / {rows} AS b"
                f" FROM generate_series({low}::bigint, {high - 1}::bigint) g) s"
            )
            tx.execute(
                "INSERT INTO submits (channel, carrier_msg_id, message_id, part_no, stat, submitted_at)"
                f" SELECT 'smpp-sim', 'c' || (((ms - {e}) << 22) + (g % 4096)), ((ms - {e}) << 22) + (g % 4096), 1,"
                " 'DELIVRD', ms + 10"
                f" FROM (SELECT g, {start} + g * {span} / {rows} AS ms FROM generate_series({low}::bigint,"
                f" {high - 1}::bigint) g) s"
            )

        db.write_sync(chunk)
    return year, month


async def measure_partition(url: str, rows: int, seal: bool = True) -> dict[str, object]:
    from qixin.store import partitions

    migrate(url)
    db = Database(url)
    db.start()
    t0 = time.perf_counter()
    year, month = generate_sql(db, rows)
    gen_s = time.perf_counter() - t0
    name = partitions.month_name("messages", year, month)
    # one open complaint about one of the month's numbers: that message is written back, not dropped
    evidence = db.read_sync(lambda tx: tx.one(f"SELECT number FROM {name} ORDER BY id LIMIT 1")[0])
    db.write_sync(
        lambda tx: tx.execute(
            "INSERT INTO complaints (number, message_id, note, actor, created_at) VALUES (?, NULL, '', 'bench', ?)",
            (evidence, now_ms()),
        )
    )
    db.write_sync(lambda tx: tx.execute("ANALYZE"))
    have = db.read_sync(lambda tx: tx.one(f"SELECT COUNT(*) FROM {name}")[0])
    assert have == rows, (have, rows)
    retention = Retention(db, days=183)
    # the seal: the daily worker counts a month once, a day after it ended (months before its purge)
    t0 = time.perf_counter()
    sealed = await retention.seal() if seal else []
    seal_s = time.perf_counter() - t0
    assert sealed == ([name] if seal else []), sealed
    # the probe's read of messages locks the partitioned parent: it waits while a month is detached
    out, elapsed, waits, left = await probed_purge(db, retention, "SELECT COUNT(*) FROM messages WHERE id = -1")
    purged = out["purged"]
    assert isinstance(purged, dict) and purged["messages"] == rows - 1 and left == 1, (out, left)
    assert out.get("partitions_dropped") == [name], out
    return {
        "rows": rows,
        "generate_s": round(gen_s, 1),
        "seal_s": round(seal_s, 2) if seal else None,
        "detach_ms": out["longest_detach_ms"],
        "drop_steps_ms": retention.last_drop_steps,
        "purge_s": round(elapsed, 2),
        "files_freed_after_s": out.get("files_freed_after_s"),
        "submits_purged": purged["submits"],
        "batches_purged": purged["batches"],
        "kept_evidence": out["kept"]["complaint_evidence"],
        "probe_writes": len(waits),
        "probe_max_ms": round(waits[-1], 1) if waits else None,
    }


def measure_migration(server: str, rows: int) -> dict[str, object]:
    """PostgreSQL: migration 0022_retention2 on tables that hold ``rows`` messages (and one submitted part
    each) generated in SQL before it: how long the conversion (the legacy partition) takes."""
    from alembic import command

    from qixin.store.migrate import alembic_config
    from qixin.store.partitions import id_at

    with PostgresDb(server) as pg:
        cfg = alembic_config(pg.url)
        for head in ("0020_numbers2", "0020_ports2", "0020_review", "0021_console2"):
            command.upgrade(cfg, head)
        db = Database(pg.url)
        start = now_ms() - 20 * DAY_MS
        span = 19 * DAY_MS
        low = id_at(start)
        t0 = time.perf_counter()
        for a in range(0, rows, 1_000_000):
            b = min(a + 1_000_000, rows)

            def chunk(tx: Tx, a: int = a, b: int = b) -> None:
                tx.execute(
                    "INSERT INTO messages (id, batch_id, account_id, number, carrier, province, type, parts, fee_li,"
                    " status, channel, receipts_pending, refunded, created_at)"
                    f" SELECT {low} + g * 4096, 1, 1, '139' || lpad((g % 100000000)::text, 8, '0'), 'cmcc', '北京',"
                    f" 'notification', 1, 35, 'delivered', 'smpp-sim', 0, false, {start} + g * {span} / {rows}"
                    f" FROM generate_series({a}::bigint, {b - 1}::bigint) g"
                )
                tx.execute(
                    "INSERT INTO submits (channel, carrier_msg_id, message_id, part_no, stat, submitted_at)"
                    f" SELECT 'smpp-sim', 'c' || g, {low} + g * 4096, 1, 'DELIVRD', {start}"
                    f" FROM generate_series({a}::bigint, {b - 1}::bigint) g"
                )

            db.write_sync(chunk)
        db.write_sync(lambda tx: tx.execute("ANALYZE"))
        db.close()
        gen_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        command.upgrade(cfg, "heads")
        took = time.perf_counter() - t1
        db = Database(pg.url)
        n = db.read_sync(lambda tx: tx.one("SELECT COUNT(*) FROM messages_legacy")[0])
        db.close()
        assert n == rows, n
    return {"rows": rows, "generate_s": round(gen_s, 1), "migration_s": round(took, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--partition", action="store_true", help="PostgreSQL: drop a partitioned month")
    ap.add_argument("--migration", action="store_true", help="PostgreSQL: migration 0022 on a table with rows")
    ap.add_argument("--no-seal", action="store_true", help="--partition: purge a month never sealed (a full scan)")
    args = ap.parse_args()
    if args.migration:
        rows = min(args.rows, 20_000_000)
        print(f"# bench_retention --migration: {rows} rows; {machine()}")
        print("postgresql", measure_migration(args.pg, rows))
        return
    if args.partition:
        rows = min(args.rows, 20_000_000)
        print(f"# bench_retention --partition: {rows} rows; {machine()}")
        with PostgresDb(args.pg) as pg:
            print("postgresql", asyncio.run(measure_partition(pg.url, rows, seal=not args.no_seal)))
        return
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
