"""End to end over SMPP: accept → queue → submit_sm → receipt → final status, for 200,000 messages.

Three processes on loopback: the SMSC simulator (``qixin simulator smpp``, receipts after 0.05–0.2 s),
the platform (``qixin run`` with QIXIN_SMPP_PORT pointing at it; SQLite, or PostgreSQL with ``--pg``),
and this load client, which accepts the messages as batches (default 200 × 1,000, pre-built and
pre-signed, ``--concurrency`` requests in flight) and polls the platform's /admin/health counters until every
message has its receipt, then confirms the count of final messages in the database (the SQLite file
opened read-only; on PostgreSQL a plain SELECT).

    .venv/bin/python bench/bench_e2e.py [-n 200000] [--batch 1000] [--concurrency 4] [--profile /tmp/e2e.txt]
                                        [--pg [postgresql://postgres@127.0.0.1:5432]]

Prints: accept time and rate; dispatch throughput (submits/s between 10% and 90% of the submits);
receipt throughput; time until all messages are final and the sustained end-to-end msg/s
(messages / time from the first request to the last final status). Target: >= 5,000 msg/s sustained.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import time
from typing import Any

import orjson
from _harness import (
    FINAL_SQL,
    HttpConn,
    PlatformProcess,
    PostgresDb,
    SimulatorProcess,
    cpu_seconds,
    machine,
    random_numbers,
    signed_request,
    summarize_profile,
    thread_cpu,
    thread_split,
    use_uvloop,
)

CONTENT = "您的订单已发货，请留意查收。"


def build(account: dict[str, Any], n: int, batch: int) -> list[bytes]:
    out = []
    everyone = random_numbers(n, 7)
    for start in range(0, n, batch):
        nums = everyone[start : start + batch]
        body = orjson.dumps({"to": nums, "content": CONTENT, "signature": "企信", "type": "notification"})
        out.append(signed_request(account, "POST", "/v1/sms", body))
    return out


async def accept_all(port: int, requests: list[bytes], concurrency: int) -> tuple[float, float, int]:
    """Send every batch; returns (start, end, accepted) in perf_counter time."""
    conns = [await HttpConn.open(port) for _ in range(concurrency)]
    accepted = 0
    it = iter(requests)

    async def worker(conn: HttpConn) -> None:
        nonlocal accepted
        for raw in it:
            status, body = await conn.roundtrip(raw)
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
            accepted += orjson.loads(body)["accepted_count"]

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    t1 = time.perf_counter()
    for c in conns:
        await c.close()
    return t0, t1, accepted


async def watch(
    plat: PlatformProcess, n: int, t0: float, deadline: float, samples: list[tuple[float, int, int]]
) -> None:
    """Poll /admin/health until submitted + failed and receipts + failed reach n (or the deadline)."""
    import httpx

    async with httpx.AsyncClient(base_url=plat.base, timeout=10) as http:
        while time.perf_counter() < deadline:
            d = (await http.get("/admin/health", headers=plat.staff_headers)).json()["dispatch"]
            now = time.perf_counter() - t0
            samples.append((now, d["submitted"] + d["failed"], d["receipts"] + d["failed"]))
            if samples[-1][2] >= n:
                return
            await asyncio.sleep(0.2)


def count_final(plat: PlatformProcess, database_url: str | None) -> int:
    if database_url:
        import psycopg

        from qixin.store.db import pg_dsn

        with psycopg.connect(pg_dsn(database_url)) as c:
            return int(c.execute(FINAL_SQL).fetchone()[0])  # type: ignore[index]
    conn = sqlite3.connect(f"file:{plat.sqlite_path}?mode=ro", uri=True, timeout=10)
    try:
        return int(conn.execute(FINAL_SQL).fetchone()[0])
    finally:
        conn.close()


def crossing(samples: list[tuple[float, int, int]], idx: int, value: float) -> float:
    """First sample time at which column ``idx`` reached ``value`` (linear between samples)."""
    prev = (0.0, 0, 0)
    for s in samples:
        if s[idx] >= value:
            if s[idx] == prev[idx]:
                return s[0]
            return prev[0] + (s[0] - prev[0]) * (value - prev[idx]) / (s[idx] - prev[idx])
        prev = s
    return float("nan")


async def run(plat: PlatformProcess, requests: list[bytes], n: int, args: argparse.Namespace) -> dict[str, float]:
    samples: list[tuple[float, int, int]] = []
    t0 = time.perf_counter()
    deadline = t0 + args.max_seconds
    watcher = asyncio.create_task(watch(plat, n, t0, deadline, samples))
    a0, a1, accepted = await accept_all(plat.port, requests, args.concurrency)
    await watcher
    t_all_receipts = samples[-1][0] if samples else float("nan")
    # the counters say every receipt arrived; the database must agree (the flush lands within ms)
    final = 0
    while time.perf_counter() < deadline + 30:
        final = await asyncio.to_thread(count_final, plat, args.pg_url)
        if final >= n:
            break
        await asyncio.sleep(0.5)
    t_final = time.perf_counter() - t0
    s10, s90 = crossing(samples, 1, 0.1 * n), crossing(samples, 1, 0.9 * n)
    r10, r90 = crossing(samples, 2, 0.1 * n), crossing(samples, 2, 0.9 * n)
    return {
        "accepted": accepted,
        "accept_s": a1 - a0,
        "all_submitted_s": crossing(samples, 1, n),
        "all_receipts_s": t_all_receipts,
        "final": final,
        "final_s": t_final,
        "dispatch_rate": 0.8 * n / (s90 - s10) if s90 > s10 else float("nan"),
        "receipt_rate": 0.8 * n / (r90 - r10) if r90 > r10 else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=200_000, help="messages (default 200,000)")
    ap.add_argument("--batch", type=int, default=1_000, help="numbers per request (default 1,000)")
    ap.add_argument("--concurrency", type=int, default=4, help="accept requests in flight (default 4)")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="give up after this")
    ap.add_argument("--delay-min", type=float, default=0.05)
    ap.add_argument("--delay-max", type=float, default=0.2)
    ap.add_argument("--pg", nargs="?", const="postgresql://postgres@127.0.0.1:5432", help="PostgreSQL server")
    ap.add_argument("--profile", help="py-spy output of the platform during the run (.txt raw or .svg)")
    ap.add_argument(
        "--four",
        action="store_true",
        help="the embedded default instead: four carrier simulators (CMPP, SGIP, SMGP, SMPP) inside the platform,"
        " numbers spread over the carriers, all four channels busy",
    )
    args = ap.parse_args()
    loop_name = use_uvloop()
    print(f"bench_e2e: {machine()}; client loop {loop_name}, pid {os.getpid()}; {args.n:,} messages")
    pg = PostgresDb(args.pg) if args.pg else None
    if pg:
        pg.__enter__()
    args.pg_url = pg.url if pg else None
    try:
        with contextlib.ExitStack() as stack:
            sim = None if args.four else stack.enter_context(SimulatorProcess(args.delay_min, args.delay_max))
            plat = stack.enter_context(
                PlatformProcess(database_url=args.pg_url, smpp_port=sim.port if sim else None, profile=args.profile)
            )
            db = "PostgreSQL" if pg else "SQLite"
            pid = plat.proc.pid if plat.proc else "?"
            if sim is None:
                print(f"platform pid {pid} ({db}) with its four embedded carrier simulators")
            else:
                print(f"simulator pid {sim.proc.pid if sim.proc else '?'} port {sim.port}; platform pid {pid} ({db})")
            t = time.perf_counter()
            requests = build(plat.account, args.n, args.batch)
            print(f"pre-built and signed {len(requests)} requests in {time.perf_counter() - t:.2f}s")
            plat.start_profile()
            cpu0 = cpu_seconds(plat.proc.pid) if plat.proc else 0.0
            threads0 = thread_cpu(plat.proc.pid) if plat.proc else {}
            r = asyncio.run(run(plat, requests, args.n, args))
            cpu = cpu_seconds(plat.proc.pid) - cpu0 if plat.proc else float("nan")
            split = thread_split(plat.proc.pid, threads0, args.n) if plat.proc else ""
            plat.stop_profile()
    finally:
        if pg:
            pg.__exit__(None, None, None)
    n = args.n
    print(f"accepted {int(r['accepted']):,} in {r['accept_s']:.2f}s: {r['accepted'] / r['accept_s']:,.0f} msg/s accept")
    print(
        f"dispatch: all submitted at {r['all_submitted_s']:.2f}s; {r['dispatch_rate']:,.0f} submits/s (10–90%);"
        f" receipts {r['receipt_rate']:,.0f}/s (10–90%); all receipts at {r['all_receipts_s']:.2f}s"
    )
    print(
        f"{int(r['final']):,} of {n:,} final at {r['final_s']:.2f}s:"
        f" {r['final'] / r['final_s']:,.0f} msg/s sustained end to end"
    )
    print(f"platform process CPU: {cpu:.2f} s = {cpu / max(n, 1) * 1e6:,.0f} µs per message (accept to final)")
    print(split.replace("per unit", "per message"))
    ok = r["final"] >= n and n / r["final_s"] >= 5000
    print(f"target >= 5,000 msg/s sustained: {'MET' if ok else 'NOT MET'}")
    if args.profile and args.profile.endswith(".txt") and os.path.exists(args.profile):
        print(summarize_profile(args.profile))


if __name__ == "__main__":
    main()
