#!/usr/bin/env python3
"""CPU seconds of this process for one 100,000-number accept, in-process (the accept use case on a fresh
SQLite file: prepare, screening, the persist job and its commit), several rounds. Process CPU is far less
disturbed than wall time when other work shares the machine; run it from a tree's root to compare commits
(``cd /work/base && .venv/bin/python /path/to/bench_batch_cpu.py``: it imports the qixin of the current
directory).

    .venv/bin/python bench/bench_batch_cpu.py --rounds 4
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time

sys.path[:0] = [os.getcwd(), os.path.join(os.getcwd(), "tests")]

from _billing import Bill  # noqa: E402  (the tests' in-process accept path)


async def main(n: int, rounds: int) -> None:
    bill = Bill(f"sqlite:///{tempfile.mkdtemp(prefix='qixin-batchcpu-')}/q.db")
    try:
        key = await bill.account(balance_li=10**12, price_li=35)
        out = []
        for r in range(rounds):
            numbers = [f"13{(r * n + i) % 10**9:09d}" for i in range(n)]
            t = time.process_time()
            data = await bill.send(key, numbers, content="您的订单已发货，请注意查收。")
            out.append((time.process_time() - t, len(data["accepted"])))
    finally:
        bill.close()
    print(f"{os.getcwd()}: CPU per {n:,}-number accept: " + " / ".join(f"{s:.2f} s ({a:,})" for s, a in out))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=4)
    a = ap.parse_args()
    asyncio.run(main(a.n, a.rounds))
