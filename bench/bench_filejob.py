"""A file job of N numbers (default 1,000,000) in one XLSX: preview time and accept-in-full time.

In process, on the embedded default (SQLite under a fresh data directory, the default compliance rules:
frequency limits in memory, number-run check, sending windows), through the use cases every entry point
calls (``services/filejobs.FileJobs``): ``preview`` (read the XLSX, dedupe, ``AcceptService.prepare``
per chunk as a dry run: frequency limits checked by ``RateGate.peek``, nothing counted) and ``create`` +
``run`` (read again, one accept transaction per chunk of 100,000 numbers; the file read by the preview
is reused), then a second job the same way without a preview (the file read again), then the preview
again with the frequency-limit counters holding both jobs. The XLSX itself is written before the clock
starts.

    .venv/bin/python bench/bench_filejob.py [-n 1000000] [--pg [postgresql://postgres@127.0.0.1:5432]]

Targets (issue 11): preview <= 15 s and accept in full <= 60 s for 1,000,000 numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import tempfile
import time
from pathlib import Path

from _harness import PostgresDb, machine, random_numbers

from qixin.app import api_only, build
from qixin.domain.numberfile import read_number_file
from qixin.services.accounts import create_account
from qixin.services.actor import Actor
from qixin.services.filejobs import JobOptions, make_plan
from qixin.settings import load_settings


def make_xlsx(numbers: list[str]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(["手机号"])
    for n in numbers:
        ws.append([int(n)])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


async def run(n: int, db_url: str | None) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="qixin-bench-filejob-"))
    try:
        t = time.perf_counter()
        nums = random_numbers(n, 4242)
        data = make_xlsx(nums)
        print(f"setup: {n:,} numbers, XLSX {len(data) / 1e6:.1f} MB written in {time.perf_counter() - t:.1f} s")

        t, c = time.perf_counter(), time.process_time()
        f = read_number_file(data, "bench.xlsx", max_numbers=max(n, 1_000_000))
        t_read, c_read = time.perf_counter() - t, time.process_time() - c
        t = time.perf_counter()
        make_plan(f, 100_000)
        t_plan = time.perf_counter() - t
        print(f"read XLSX: {t_read:.2f} s (CPU {c_read:.2f} s); dedupe + chunking: {t_plan:.2f} s")

        overrides: dict[str, object] = {"filejob_max_numbers": max(n, 1_000_000)}
        if db_url:
            overrides["database_url"] = db_url
        s = build(load_settings(data_dir, **overrides))
        runtime = api_only(s)
        await runtime.start()
        try:
            acct = s.db.write_sync(lambda tx: create_account(tx, "压测客户", "企信", 10**12, 35, box=s.directory.box))
            opts = JobOptions(signature="企信", content="尊敬的客户，您本月账单已出，请登录 App 查看。")
            t, c = time.perf_counter(), time.process_time()
            pv = await s.filejobs.preview(Actor.cli(), acct["account_id"], data, "bench.xlsx", opts)
            t_preview, c_preview = time.perf_counter() - t, time.process_time() - c
            print(f"preview: {t_preview:.2f} s, CPU {c_preview:.2f} s (valid {pv['valid']:,}, refused {pv['refused']}, "
                  f"fee {pv['total_fee']} yuan, {pv['chunks']} chunks)")  # fmt: skip
            t, c = time.perf_counter(), time.process_time()
            job = await s.filejobs.create(Actor.cli(), acct["account_id"], data, "bench.xlsx", opts)
            t_create = time.perf_counter() - t
            await s.filejobs.run(int(job["job_id"]))
            t_all, c_all = time.perf_counter() - t, time.process_time() - c
            done = await s.filejobs.progress(Actor.cli(), int(job["job_id"]))
            print(f"accept in full: {t_all:.2f} s, CPU {c_all:.2f} s (create {t_create:.2f} s, "
                  f"then {done['chunks']} chunks); status {done['status']}, accepted {done['accepted']:,}, "
                  f"refused {done['refused']}")  # fmt: skip
            s.filejobs._parsed.clear()  # a create without its preview (e.g. POST /v1/batches alone) reads the file
            t, c = time.perf_counter(), time.process_time()
            job = await s.filejobs.create(Actor.cli(), acct["account_id"], data, "bench.xlsx", opts)
            await s.filejobs.run(int(job["job_id"]))
            t_cold, c_cold = time.perf_counter() - t, time.process_time() - c
            done = await s.filejobs.progress(Actor.cli(), int(job["job_id"]))
            print(f"accept in full without a preview first (file read again): {t_cold:.2f} s, CPU {c_cold:.2f} s; "
                  f"status {done['status']}, accepted {done['accepted']:,}")  # fmt: skip
            s.filejobs._parsed.clear()  # read the file again, as the first preview did
            t, c = time.perf_counter(), time.process_time()  # every number now counted twice per limit
            pv = await s.filejobs.preview(Actor.cli(), acct["account_id"], data, "bench.xlsx", opts)
            t_again, c_again = time.perf_counter() - t, time.process_time() - c
            print(f"preview again, the counters holding both jobs: {t_again:.2f} s, CPU {c_again:.2f} s "
                  f"(valid {pv['valid']:,}, refused {pv['refused']})")  # fmt: skip
            print(f"targets for 1,000,000: preview <= 15 s, accept in full <= 60 s (this run: {n:,} numbers)")
        finally:
            await runtime.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("--pg", nargs="?", const=os.environ.get("QIXIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432"))
    args = ap.parse_args()
    print(machine())
    if args.pg:
        with PostgresDb(args.pg) as pg:
            asyncio.run(run(args.n, pg.url))
    else:
        asyncio.run(run(args.n, None))


if __name__ == "__main__":
    main()
