"""Single-send API accept rate: signed one-number POST /v1/sms at 64 concurrent clients.

The platform runs embedded (SQLite, built-in SMPP simulator as its channel, dispatcher running) in its
own process (``qixin run``); this process is the load client: 64 raw HTTP/1.1 keep-alive connections
on uvloop, every request pre-built and pre-signed before the clock starts (distinct numbers and nonces),
so the client spends its time only writing bytes and reading answers.

    .venv/bin/python bench/bench_api.py [-n 20000] [-c 64] [--warmup 1000] [--profile /tmp/api.txt]

Prints req/s and p50/p95/p99/max latency. Targets: >= 2,000 req/s, p99 < 50 ms.
``--profile`` records the platform process with py-spy (``pip install py-spy`` into .venv) and prints
the hottest functions; profiling slows the platform, so take figures from runs without it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time

import orjson
from _harness import (
    HttpConn,
    PlatformProcess,
    PostgresDb,
    cpu_seconds,
    machine,
    percentile,
    random_numbers,
    signed_request,
    summarize_profile,
    thread_cpu,
    thread_split,
    use_uvloop,
)

CONTENT = "您的验证码是 {code}，5 分钟内有效。"


def build_requests(account: dict[str, object], n: int, start: int) -> list[bytes]:
    out = []
    nums = random_numbers(start + n, 42)
    for i in range(start, start + n):
        body = orjson.dumps(
            {
                "to": nums[i],
                "content": CONTENT.format(code=f"{i % 1_000_000:06d}"),
                "signature": "企信",
                "type": "verification",
            }
        )
        out.append(signed_request(account, "POST", "/v1/sms", body))
    return out


async def run_load(port: int, requests: list[bytes], concurrency: int, max_seconds: float) -> dict[str, float]:
    conns = [await HttpConn.open(port) for _ in range(concurrency)]
    latencies: list[float] = []
    errors: dict[int, int] = {}
    it = iter(requests)
    deadline = time.perf_counter() + max_seconds

    async def worker(conn: HttpConn) -> None:
        for raw in it:
            t = time.perf_counter()
            status, body = await conn.roundtrip(raw)
            latencies.append(time.perf_counter() - t)
            if status != 200:
                errors[status] = errors.get(status, 0) + 1
                if len(errors) == 1 and errors[status] == 1:
                    print(f"  first error {status}: {body[:200]!r}")
            if t > deadline:
                return

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - t0
    for c in conns:
        await c.close()
    latencies.sort()
    return {
        "n": len(latencies),
        "errors": sum(errors.values()),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50": percentile(latencies, 50) * 1000,
        "p95": percentile(latencies, 95) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "max": latencies[-1] * 1000 if latencies else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=20_000, help="timed requests (default 20,000)")
    ap.add_argument("-c", "--concurrency", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=1_000, help="untimed requests first")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="stop the timed run after this")
    ap.add_argument("--profile", help="py-spy output of the platform during the timed run (.txt raw or .svg)")
    ap.add_argument(
        "--split",
        action="store_true",
        help="distributed roles: `qixin api` (measured) and `qixin dispatcher` as two processes on one database",
    )
    ap.add_argument("--pg", nargs="?", const="postgresql://postgres@127.0.0.1:5432", help="PostgreSQL server")
    args = ap.parse_args()

    loop_name = use_uvloop()
    print(f"bench_api: {machine()}; client loop {loop_name}, client pid {os.getpid()}")
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(PostgresDb(args.pg)) if args.pg else None
        plat = stack.enter_context(
            PlatformProcess(profile=args.profile, split=args.split, database_url=pg.url if pg else None)
        )
        print(f"platform pid {plat.proc.pid if plat.proc else '?'} on port {plat.port} (SQLite, simulator channel)")
        t = time.perf_counter()
        warm = build_requests(plat.account, args.warmup, 0)
        timed = build_requests(plat.account, args.n, args.warmup)
        print(f"pre-built and signed {len(warm) + len(timed)} requests in {time.perf_counter() - t:.2f}s")
        if warm:
            asyncio.run(run_load(plat.port, warm, args.concurrency, args.max_seconds))
        plat.start_profile()
        pid = plat.proc.pid if plat.proc else 0
        cpu0 = cpu_seconds(pid) if pid else 0.0
        threads0 = thread_cpu(pid) if pid else {}
        r = asyncio.run(run_load(plat.port, timed, args.concurrency, args.max_seconds))
        cpu = cpu_seconds(pid) - cpu0 if pid else float("nan")
        split = thread_split(pid, threads0, max(int(r["n"]), 1)) if pid else ""
        plat.stop_profile()
        h = plat.health()
    print(
        f"{int(r['n'])} requests ({int(r['errors'])} errors) at {args.concurrency} concurrent in {r['seconds']:.2f}s:"
        f" {r['rps']:,.0f} req/s; latency p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms, p99 {r['p99']:.1f} ms,"
        f" max {r['max']:.1f} ms"
    )
    print(
        f"platform process CPU during the timed run: {cpu:.2f} s = {cpu / max(r['n'], 1) * 1e6:,.0f} µs per request"
        " (accept plus whatever dispatch and receipts it did meanwhile)"
    )
    print(split.replace("per unit", "per request"))
    print(f"platform after the run: dispatch {h.get('dispatch')}")
    ok = r["rps"] >= 2000 and r["p99"] < 50
    print(f"target >= 2,000 req/s and p99 < 50 ms: {'MET' if ok else 'NOT MET'}")
    if args.profile and args.profile.endswith(".txt") and os.path.exists(args.profile):
        print(summarize_profile(args.profile))


if __name__ == "__main__":
    main()
