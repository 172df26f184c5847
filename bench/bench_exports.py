"""Export jobs: one account's N messages exported by a job (services/exports.py) as CSV or XLSX; rows/s
and the process's peak RSS (memory must stay flat whatever N).

Usage (from the repository root):

    .venv/bin/python bench/bench_exports.py --rows 1000000 [--format csv|xlsx] [--db sqlite|postgresql] [--pg URL]
        [--mode job|stream]

``--mode job`` (default) runs one export job (``POST /v1/exports``'s use case) to its file; ``--mode stream``
reads the streamed export (``GET /v1/exports/messages?format=csv``'s use case, ``MessageSearch.export_csv``)
to its end in process, counting the bytes (no HTTP: the route only hands the chunks on). ``cpu_s`` is the
process's CPU time (every thread) of the export: on the shared machine a steadier figure than the wall
clock.

Rows are generated in SQL (a recursive CTE on SQLite, generate_series on PostgreSQL: no Python rows, so
the RSS measured is the export's): 1,000 batches, every message delivered. The peak RSS is the process's
maximum (ru_maxrss) after the export, next to the RSS before it. Bounded: at most 2,000,000 rows.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import PostgresDb, machine

from qixin import ids
from qixin.services.actor import Actor
from qixin.services.exports import ExportJobs
from qixin.services.queries import MessageFilter, MessageSearch
from qixin.store.db import Database, Tx, now_ms
from qixin.store.migrate import migrate


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def generate(db: Database, rows: int) -> None:
    start = now_ms() - 10 * 86_400_000
    span = 9 * 86_400_000
    e = ids.EPOCH_MS
    series = (
        f"WITH RECURSIVE s(g) AS (SELECT 0 UNION ALL SELECT g + 1 FROM s WHERE g < {rows - 1}) " if not db.is_pg else ""
    )
    source = "s" if not db.is_pg else f"generate_series(0::bigint, {rows - 1}) AS s(g)"
    bseries = "WITH RECURSIVE s(g) AS (SELECT 0 UNION ALL SELECT g + 1 FROM s WHERE g < 999) " if not db.is_pg else ""
    bsource = "s" if not db.is_pg else "generate_series(0::bigint, 999) AS s(g)"

    def job(tx: Tx) -> None:
        tx.execute(
            "INSERT INTO accounts (id, name, balance_li, price_li, created_at) VALUES (1, 'bench', 0, 35, ?)", (start,)
        )
        tx.execute(
            f"{bseries}INSERT INTO batches (id, account_id, type, signature, content, total, accepted, rejected,"
            f" fee_li, created_at) SELECT ((({start} + g * {span} / 1000) - {e}) * 4194304) + 4095, 1, 'notification',"
            f" '企信', '您的订单已发货', 1000, 1000, 0, 35000, {start} + g * {span} / 1000 FROM {bsource}"
        )
        tx.execute(
            f"{series}INSERT INTO messages (id, batch_id, account_id, number, carrier, province, type, parts, fee_li,"
            " status, channel, receipts_pending, carrier_stat, carrier_err, refunded, created_at, submitted_at,"
            f" done_at) SELECT ((({start} + g * {span} / {rows}) - {e}) * 4194304) + (g % 4096),"
            f" ((({start} + (g * 1000 / {rows}) * {span} / 1000) - {e}) * 4194304) + 4095, 1,"
            f" '139' || substr('00000000' || (g % 100000000), -8, 8), 'cmcc', '北京', 'notification', 1, 35,"
            f" 'delivered', 'smpp-sim', 0, 'DELIVRD', '000', false, {start} + g * {span} / {rows},"
            f" {start} + g * {span} / {rows} + 10, {start} + g * {span} / {rows} + 900 FROM {source}"
        )

    db.write_sync(job)


async def measure(url: str, data_dir: Path, rows: int, fmt: str, mode: str = "job") -> dict[str, object]:
    migrate(url)
    db = Database(url)
    db.start()
    t0 = time.perf_counter()
    generate(db, rows)
    gen_s = time.perf_counter() - t0
    if db.is_pg:
        db.write_sync(lambda tx: tx.execute("ANALYZE"))
    search = MessageSearch(db)
    jobs = ExportJobs(db, search, data_dir)
    actor = Actor.customer(1, "bench")
    rss_before = _rss_mib()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if mode == "job":
        job = await jobs.create(actor, MessageFilter(), fmt)
        t1, c1 = time.perf_counter(), time.process_time()
        assert await jobs.run_pending() == 1
        elapsed, cpu = time.perf_counter() - t1, time.process_time() - c1
        done = await jobs.progress(actor, job["id"])
        assert done["status"] == "done" and done["rows_written"] == rows, done
        size = int(done["size"])
    else:
        assert fmt == "csv", "--mode stream: CSV (the XLSX answer is a file written first)"
        size = lines = 0
        t1, c1 = time.perf_counter(), time.process_time()
        async for chunk in search.export_csv(actor, MessageFilter()):
            size += len(chunk)
            lines += len(re.findall(rb"\r\n", chunk))
        elapsed, cpu = time.perf_counter() - t1, time.process_time() - c1
        assert lines == rows + 1, lines  # no cell holds a line break here
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    db.close()
    return {
        "rows": rows,
        "format": fmt,
        "mode": mode,
        "generate_s": round(gen_s, 1),
        "export_s": round(elapsed, 2),
        "rows_per_s": int(rows / elapsed),
        "cpu_s": round(cpu, 2),
        "rows_per_cpu_s": int(rows / cpu),
        "file_mib": round(size / 2**20, 1),
        "rss_before_mib": round(rss_before, 1),
        "peak_rss_before_mib": round(peak_before, 1),
        "peak_rss_after_mib": round(peak, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--mode", choices=("job", "stream"), default="job")
    args = ap.parse_args()
    rows = min(args.rows, 2_000_000)
    print(f"# bench_exports: {rows} rows, {args.format}, {args.db}, {args.mode}; {machine()}")
    with tempfile.TemporaryDirectory() as d:
        if args.db == "sqlite":
            print(asyncio.run(measure(f"sqlite:///{d}/qixin.db", Path(d), rows, args.format, args.mode)))
        else:
            with PostgresDb(args.pg) as pg:
                print(asyncio.run(measure(pg.url, Path(d), rows, args.format, args.mode)))


if __name__ == "__main__":
    main()
