"""Console page times with many messages stored for one account (docs/console.md, "Speed").

The embedded platform (one SMPP simulator channel) runs in this process behind real loopback HTTP, on
SQLite (or PostgreSQL with ``--pg``). One account gets ``-n`` messages (batches of up to 100,000 numbers
through ``POST /v1/sms``, scheduled a day ahead so the dispatcher leaves them alone); a console owner logs
in (password + the SMS code read from what the simulator received); then each page is requested
``--rounds`` times on a keep-alive connection and the median and best wall times are printed (server work
plus loopback HTTP). ``--grow N`` then copies the account's messages in SQL (new ids above every other
account's, same batches) until it has N — many millions without N API calls — and ``--failed-every K``
marks every K-th of them failed. The status pages: ``queued`` matches every loaded message (dense),
``delivered`` none (the records page reads its bounded window, services/queries.py), ``failed`` a few
(the partial index ix_messages_account_failed). ``--before`` drops ix_messages_account_failed and lifts
the records page's window (the status search as before migration 0022_console3). ``--without-index``
drops the records index (migration 0020_console2) first, to measure the page as it was; ``--analyze``
runs ANALYZE on PostgreSQL after the load (as autovacuum soon would); ``--explain`` prints the records
query's plan.

    .venv/bin/python bench/bench_console.py [-n 100000] [--others 100000] [--rounds 5] [--without-index]
        [--grow 10000000] [--failed-every 1000] [--before] [--explain] [--analyze]
        [--pg [postgresql://postgres@127.0.0.1:5432]]

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

import qixin.console.routes as console_routes
from qixin.api.app import asgi_app
from qixin.api.server import server_config
from qixin.app import build, embedded
from qixin.domain.signing import signed_headers
from qixin.services.accounts import create_account
from qixin.services.actor import Actor
from qixin.settings import ComplianceSettings, Settings
from qixin.store import reads, schema

PAGES = (
    "/", "/records", "/records?status=queued", "/records?status=delivered", "/records?status=failed",
    "/contacts", "/billing", "/signatures", "/send",
)  # fmt: skip
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


async def load(api: httpx.AsyncClient, acct: dict[str, Any], n: int, seed: int) -> int:
    """``n`` messages for ``acct`` by POST /v1/sms (batches of up to 100,000), scheduled a day ahead."""
    send_at = time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() + 8 * 3600 + 86400))
    stored = 0
    while stored < n:
        k = min(100_000, n - stored)
        body = orjson.dumps({"to": random_numbers(k, seed + stored), "content": "您的账单已出，请查收。",
                             "signature": "企信", "type": "notification", "send_at": send_at})  # fmt: skip
        h = signed_headers(acct["app_key"], acct["app_secret"], "POST", "/v1/sms", body)
        h["Content-Type"] = "application/json"
        r = await api.post("/v1/sms", content=body, headers=h)
        assert r.status_code == 200, r.text[:500]
        stored += int(r.json()["accepted_count"])
    return stored


def grow(tx: Any, account_id: int, target: int, failed_every: int) -> int:
    """Copy the account's messages (SQL, by id offset: the copies are newer than every stored message)
    until it has ``target``; every ``failed_every``-th copy is failed. Answers the account's count."""
    cols = [c.name for c in schema.messages.c]
    have = int(tx.one("SELECT COUNT(*) FROM messages WHERE account_id = ?", (account_id,))[0])
    while have < target:
        top = int(tx.one("SELECT MAX(id) FROM messages")[0])
        low = int(tx.one("SELECT MIN(id) FROM messages WHERE account_id = ?", (account_id,))[0])
        offset = top - low + 1
        take = min(have, target - have)
        picked = ", ".join(
            f"id + {offset}" if c == "id" else
            (f"CASE WHEN (id + {offset}) % {failed_every} = 0 THEN 'failed' ELSE status END"
             if c == "status" and failed_every else c)
            for c in cols
        )  # fmt: skip
        names = ", ".join(f'"{c}"' for c in cols)
        tx.execute(
            f"INSERT INTO messages ({names}) SELECT {picked} FROM messages WHERE account_id = ? AND id IN"
            " (SELECT id FROM messages WHERE account_id = ? ORDER BY id LIMIT ?)",
            (account_id, account_id, take),
        )
        have += take
    return have


class Recorder:
    """Stands in for a transaction: keeps the statement instead of running it."""

    sql = ""
    params: tuple[Any, ...] = ()

    def all(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        self.sql, self.params = sql, params
        return []


async def print_plan(platform: Any, account_id: int) -> None:
    """The database's plans for the records page's first page (store/reads.search_messages), unfiltered
    and with a status filter."""
    for filters in ({"account_id": account_id}, {"account_id": account_id, "status": "queued"},
                    {"account_id": account_id, "status": "failed"}):  # fmt: skip
        rec = Recorder()
        reads.search_messages(rec, filters, 51)  # type: ignore[arg-type]
        prefix = "EXPLAIN QUERY PLAN " if not platform.db.is_pg else "EXPLAIN ANALYZE "
        rows = await platform.db.read(lambda tx, sql=prefix + rec.sql, ps=rec.params: tx.all(sql, ps))
        print(f"plan of the records query {sorted(filters)}:")
        for r in rows:
            print("   ", r[-1])


async def run(
    n: int,
    others: int,
    rounds: int,
    database_url: str | None,
    explain: bool = False,
    analyze: bool = False,
    without_index: bool = False,
    grow_to: int = 0,
    failed_every: int = 0,
    before: bool = False,
) -> dict[str, list[float]]:
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
        other = platform.db.write_sync(
            lambda tx: create_account(tx, "其他客户", "企信", 10**12, 1, box=platform.directory.box)
        )
        if without_index:
            await platform.db.write(lambda tx: tx.execute("DROP INDEX ix_messages_account_id"))
        if before:  # the status search as before migration 0022_console3: no failed index, no window
            await platform.db.write(lambda tx: tx.execute("DROP INDEX ix_messages_account_failed"))
            console_routes.RECORDS_SCAN_WINDOW = None  # type: ignore[assignment]
        t0 = time.perf_counter()
        stored = await load(api, acct, n, 7000)
        # another account's messages, stored after: the measured account's are not simply the newest rows
        await load(api, other, others, 9_000_000)
        await api.aclose()
        print(f"stored {stored} + {others} (another account) messages in {time.perf_counter() - t0:.1f} s")
        if grow_to > stored:
            t0 = time.perf_counter()
            stored = await platform.db.write(lambda tx: grow(tx, acct["account_id"], grow_to, failed_every))
            print(f"grew the account to {stored} messages (SQL copies) in {time.perf_counter() - t0:.1f} s")
        if analyze and platform.db.is_pg:  # what autovacuum does to a live table soon after a bulk load
            await platform.db.write(lambda tx: tx.execute("ANALYZE messages"))
            print("ANALYZE messages done")
        if explain:
            await print_plan(platform, acct["account_id"])
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
    ap.add_argument("--others", type=int, default=100_000, help="messages of another account (default 100,000)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--grow", type=int, default=0, help="then copy the account's messages in SQL up to this many")
    ap.add_argument("--failed-every", type=int, default=0, help="with --grow: every K-th copy is failed")
    ap.add_argument("--before", action="store_true", help="status search as before 0022: no failed index, no window")
    ap.add_argument("--without-index", action="store_true", help="drop the records index first (as before)")
    ap.add_argument("--analyze", action="store_true", help="PostgreSQL: ANALYZE messages after the load")
    ap.add_argument("--explain", action="store_true", help="print the records query's plan")
    ap.add_argument("--pg", nargs="?", const="postgresql://postgres@127.0.0.1:5432", default=None)
    a = ap.parse_args()
    print(machine())
    if a.pg:
        with PostgresDb(a.pg) as pg:
            results = asyncio.run(run(a.n, a.others, a.rounds, pg.url, a.explain, a.analyze, a.without_index,
                                      a.grow, a.failed_every, a.before))  # fmt: skip
    else:
        results = asyncio.run(run(a.n, a.others, a.rounds, None, a.explain, False, a.without_index, a.grow,
                                  a.failed_every, a.before))  # fmt: skip
    total = max(a.n, a.grow)
    print(f"{'page':<28} {'median ms':>10} {'best ms':>9}   ({a.rounds} requests, {total} messages)")
    for path, times in results.items():
        print(f"{path:<28} {statistics.median(times) * 1000:10.1f} {min(times) * 1000:9.1f}")


if __name__ == "__main__":
    main()
