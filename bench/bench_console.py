"""Console page times with many messages stored for one account (docs/console.md, "Speed").

The embedded platform (one SMPP simulator channel) runs in this process behind real loopback HTTP, on
SQLite (or PostgreSQL with ``--pg``). One account gets ``-n`` messages (batches of up to 100,000 numbers
through ``POST /v1/sms``, scheduled a day ahead so the dispatcher leaves them alone); a console owner logs
in (password + the SMS code read from what the simulator received); then each page is requested
``--rounds`` times on a keep-alive connection and the median and best wall times are printed (server work
plus loopback HTTP).

    .venv/bin/python bench/bench_console.py [-n 100000] [--rounds 5] [--pg [postgresql://postgres@127.0.0.1:5432]]

Target (issue 11): every console page <= 200 ms server time.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn
from _harness import PostgresDb, free_port, machine, random_numbers

from qixin.api.app import asgi_app
from qixin.api.server import server_config
from qixin.app import build, embedded
from qixin.domain.signing import signed_headers
from qixin.services.accounts import create_account
from qixin.services.actor import Actor
from qixin.settings import ComplianceSettings, Settings

PAGES = ("/", "/records", "/records?status=queued", "/billing", "/signatures", "/send")
PASSWORD = "Qixin-Pass-2026"
PHONE = "13900007777"
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
CODE_RE = re.compile(r"验证码是 (\d{6})")


async def login(base: str, runtime: Any) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=base, timeout=60)
    page = await http.get("/login")
    r = await http.post("/login", data={"csrf": CSRF_RE.search(page.text)[1], "phone": PHONE, "password": PASSWORD})  # type: ignore[index]
    assert r.status_code == 303, r.text
    code_page = await http.get("/login/code")
    deadline = time.monotonic() + 30
    code = None
    while code is None:
        texts = [t for sim in runtime.simulators.values() for t in sim.received(PHONE)]
        found = [m.group(1) for t in texts if (m := CODE_RE.search(t))]
        code = found[-1] if found else None
        if code is None:
            assert time.monotonic() < deadline, "no login code within 30 s"
            await asyncio.sleep(0.05)
    r = await http.post("/login/code", data={"csrf": CSRF_RE.search(code_page.text)[1], "code": code})  # type: ignore[index]
    assert r.status_code == 303, r.text
    if r.headers["location"] == "/password":
        form = await http.get("/password")
        new = "Console-Pass-2027"
        r = await http.post("/password", data={"csrf": CSRF_RE.search(form.text)[1], "old": PASSWORD, "new": new,  # type: ignore[index]
                                               "again": new})  # fmt: skip
        assert r.status_code == 303, r.text
    return http


async def run(n: int, rounds: int, database_url: str | None) -> dict[str, list[float]]:
    tmp = Path(tempfile.mkdtemp(prefix="qixin-bench-console-"))
    settings = Settings(data_dir=tmp, database_url=database_url or f"sqlite:///{tmp}/qixin.db",
                        sim_receipt_delay=(0.01, 0.05), simulators=("smpp",),
                        compliance=ComplianceSettings(sending_windows=False, max_number_run=0))  # fmt: skip
    platform = build(settings)
    runtime = embedded(platform)
    await runtime.start()
    port = free_port()
    server = uvicorn.Server(server_config(asgi_app(platform), "127.0.0.1", port, (), lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        base = f"http://127.0.0.1:{port}"
        acct = platform.db.write_sync(
            lambda tx: create_account(tx, "压测客户", "企信", 10**12, 1, box=platform.directory.box)
        )
        await platform.console_users.create_user(Actor.cli(), acct["account_id"], "压测", PHONE, "owner", PASSWORD)
        api = httpx.AsyncClient(base_url=base, timeout=300)
        send_at = time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() + 8 * 3600 + 86400))
        stored = 0
        t0 = time.perf_counter()
        while stored < n:
            k = min(100_000, n - stored)
            body = orjson.dumps({"to": random_numbers(k, 7000 + stored), "content": "您的账单已出，请查收。",
                                 "signature": "企信", "type": "notification", "send_at": send_at})  # fmt: skip
            h = signed_headers(acct["app_key"], acct["app_secret"], "POST", "/v1/sms", body)
            h["Content-Type"] = "application/json"
            r = await api.post("/v1/sms", content=body, headers=h)
            assert r.status_code == 200, r.text[:500]
            stored += int(r.json()["accepted_count"])
        await api.aclose()
        print(f"stored {stored} messages in {time.perf_counter() - t0:.1f} s")
        http = await login(base, runtime)
        out: dict[str, list[float]] = {}
        for path in PAGES:
            times = []
            for _ in range(rounds):
                s = time.perf_counter()
                r = await http.get(path)
                times.append(time.perf_counter() - s)
                assert r.status_code == 200, (path, r.status_code, r.text[:300])
            out[path] = times
        await http.aclose()
        return out
    finally:
        server.should_exit = True
        await task
        await runtime.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100_000, help="messages stored for the account (default 100,000)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--pg", nargs="?", const="postgresql://postgres@127.0.0.1:5432", default=None)
    a = ap.parse_args()
    print(machine())
    if a.pg:
        with PostgresDb(a.pg) as pg:
            results = asyncio.run(run(a.n, a.rounds, pg.url))
    else:
        results = asyncio.run(run(a.n, a.rounds, None))
    print(f"{'page':<28} {'median ms':>10} {'best ms':>9}   ({a.rounds} requests, {a.n} messages)")
    for path, times in results.items():
        print(f"{path:<28} {statistics.median(times) * 1000:10.1f} {min(times) * 1000:9.1f}")


if __name__ == "__main__":
    main()
