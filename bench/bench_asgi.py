#!/usr/bin/env python3
"""The send route's own cost, without sockets: ``POST /v1/sms`` requests (pre-signed, one number each) are
handed straight to the platform's ASGI application in this process, 64 at a time, with only the ``Core``
role running (writer, no dispatcher, no simulators). It prints the process CPU per request and its split
between the event loop and the writer thread: a steadier figure than req/s over HTTP on a shared
machine, for comparing changes to the accept path (auth, prepare, screening, the accept transaction).

    .venv/bin/python bench/bench_asgi.py [-n 20000] [-c 64] [--rounds 3] [--pg URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from _harness import machine, random_numbers, thread_cpu, use_uvloop

from qixin.api.app import asgi_app
from qixin.app import Core, Runtime, build
from qixin.domain.signing import signed_headers
from qixin.services.accounts import create_account
from qixin.settings import Settings

CONTENT = "您的验证码是 {code}，5 分钟内有效。"


def scopes(app_key: str, secret: str, n: int, start: int) -> list[tuple[dict[str, Any], bytes]]:
    nums = random_numbers(start + n, 7)
    out = []
    for i in range(start, start + n):
        body = orjson.dumps(
            {"to": nums[i], "content": CONTENT.format(code=f"{i % 1_000_000:06d}"), "signature": "企信",
             "type": "verification"}
        )  # fmt: skip
        h = signed_headers(app_key, secret, "POST", "/v1/sms", body)
        headers = [(b"host", b"x"), (b"content-type", b"application/json")]
        headers.append((b"content-length", str(len(body)).encode()))
        headers += [(k.lower().encode(), v.encode()) for k, v in h.items()]
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/v1/sms", "raw_path": b"/v1/sms", "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 40000 + i % 20000), "server": ("127.0.0.1", 8080),
        }  # fmt: skip
        out.append((scope, body))
    return out


async def drive(app: Any, reqs: list[tuple[dict[str, Any], bytes]], concurrency: int) -> tuple[int, int]:
    it = iter(reqs)
    ok = bad = 0

    async def one(scope: dict[str, Any], body: bytes) -> int:
        sent = False
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # never: the route reads the body once
            return {}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    async def worker() -> None:
        nonlocal ok, bad
        for scope, body in it:
            if await one(scope, body) == 200:
                ok += 1
            else:
                bad += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok, bad


async def main_async(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="qixin-bench-asgi-"))
    settings = Settings(data_dir=tmp, database_url=args.pg or f"sqlite:///{tmp / 'qixin.db'}")
    services = build(settings)
    runtime = Runtime(services, [Core(services)])
    await runtime.start()
    try:
        acct = services.db.write_sync(
            lambda tx: create_account(tx, "压测客户", "企信", 10**12, 35, box=services.directory.box)
        )
        app = asgi_app(services)
        start = 0
        warm = scopes(acct["app_key"], acct["app_secret"], 500, start)
        start += 500
        await drive(app, warm, args.concurrency)
        pid = os.getpid()
        for r in range(args.rounds):
            reqs = scopes(acct["app_key"], acct["app_secret"], args.n, start)
            start += args.n
            cpu0 = time.process_time()
            th0 = thread_cpu(pid)
            t0 = time.perf_counter()
            ok, bad = await drive(app, reqs, args.concurrency)
            wall = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            th1 = thread_cpu(pid)
            main = th1[pid][1] - th0[pid][1]
            per = 1e6 / args.n
            print(
                f"round {r + 1}: {ok} accepted, {bad} refused, {ok / wall:,.0f} req/s in-process;"
                f" CPU {cpu * per:,.0f} µs per request (event loop {main * per:,.0f},"
                f" other threads {(cpu - main) * per:,.0f})"
            )
    finally:
        await runtime.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=20_000)
    ap.add_argument("-c", "--concurrency", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pg", help="a PostgreSQL URL instead of a fresh SQLite file")
    args = ap.parse_args()
    print(f"bench_asgi: {machine()}")
    use_uvloop()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
