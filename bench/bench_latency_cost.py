"""The cost of keeping receipt-latency histograms, in process: what ``latency.record_final`` adds to the
flush that makes messages final (counting into ``Tx.count`` plus the upserts at commit).

Usage (from the repository root):

    .venv/bin/python bench/bench_latency_cost.py [--finals 200000] [--flush 500] [--db sqlite|postgresql]

Runs flush-sized write jobs of ``--flush`` finals each (latencies drawn log-normally around 2 s, over 4
channels and ``--accounts`` accounts), with and without the histogram counting,
and reports the extra µs per final message and its share of the 200 µs a message may take at the
5,000 msg/s end-to-end target. The end-to-end before/after figure is bench_e2e.py's, measured by the
integrator on a quiet machine.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import PostgresDb, machine

from qixin.services import latency
from qixin.store import latency as store
from qixin.store.db import Database, Tx, now_ms
from qixin.store.migrate import migrate


def run(url: str, finals: int, flush: int, accounts: int) -> dict[str, float]:
    migrate(url)
    db = Database(url)
    db.start()
    rng = random.Random(1)
    now = now_ms()
    samples = [
        (f"ch-{rng.randrange(4)}", rng.randrange(1, accounts + 1), now - 5_000, int(rng.lognormvariate(7.6, 0.8)))
        for _ in range(flush)
    ]

    def job(record: bool) -> None:
        def body(tx: Tx) -> None:
            # the flush's own work (a write transaction that commits) stands for itself: one row of the
            # same table, so that both variants pay one write commit and only the difference is measured
            tx.count(store.add, (0, "baseline", 0, 0), (1, 1))
            if record:
                for channel, account, created, lat in samples:
                    latency.record_final(tx, channel, account, created, None, created + 100, created + 100 + lat)

        db.write_sync(body)

    out: dict[str, float] = {}
    for record in (False, True, False, True):  # interleaved, the second round counts
        t0 = time.perf_counter()
        for _ in range(finals // flush):
            job(record)
        out["with" if record else "without"] = (time.perf_counter() - t0) / finals * 1e6
    db.close()
    extra = out["with"] - out["without"]
    return {"us_per_final_without": round(out["without"], 2), "us_per_final_with": round(out["with"], 2),
            "extra_us_per_final": round(extra, 2), "share_of_200us": round(extra / 200 * 100, 2)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--finals", type=int, default=200_000)
    ap.add_argument("--flush", type=int, default=500)
    ap.add_argument("--accounts", type=int, default=1, help="distinct accounts among the finals (bench_e2e: 1)")
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    args = ap.parse_args()
    finals = min(args.finals, 2_000_000)
    print(f"# bench_latency_cost: {finals} finals in flushes of {args.flush}, {args.accounts} accounts; {machine()}")
    if args.db == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            print("sqlite    ", run(f"sqlite:///{d}/qixin.db", finals, args.flush, args.accounts))
    else:
        with PostgresDb(args.pg) as pg:
            print("postgresql", run(pg.url, finals, args.flush, args.accounts))


if __name__ == "__main__":
    main()
