"""One 100,000-number batch request: POST /v1/sms with ``to`` = 100,000 distinct numbers.

Part 1 (HTTP): the platform runs embedded in its own process (``qixin run``; SQLite, or PostgreSQL with
``--pg``), dispatcher and simulator channel running. For each round this process encodes the body,
signs it, sends it on a keep-alive connection and reads the answer, and prints the split: client JSON
encode + signing, request → first byte of the answer (server work), first byte → last byte (the answer
is ~7 MB: one entry per accepted message), and the client's parse of the answer.

Part 2 (in process): the same request through ``AcceptService.prepare`` and ``persist`` on a fresh
database, timed step by step: server JSON parse and body hash, number parsing, prefix lookups, id
allocation, the whole ``prepare``, each SQL statement of the accept transaction, commit, and the
response (``response_of`` + orjson).

    .venv/bin/python bench/bench_batch.py [-n 100000] [--rounds 3] [--pg [postgresql://postgres@127.0.0.1:5432]]

Target: <= 2 s from send to response (REQUIREMENTS aims at <= 1 s).
With ``--pg`` a fresh database is created on that server for each part and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
from _harness import HttpConn, PlatformProcess, PostgresDb, machine, random_numbers, signed_request, use_uvloop

from qixin.app import api_only, build
from qixin.domain.numbers import parse_numbers, prefix_table
from qixin.ids import ids
from qixin.services.accept import persist, response_of
from qixin.services.accounts import create_account
from qixin.settings import load_settings
from qixin.store.db import Tx

CONTENT = "尊敬的客户，您本月账单已出，请登录 App 查看。"


def numbers(n: int, seed: int) -> list[str]:
    return random_numbers(n, 1000 + seed)


def body_of(nums: list[str]) -> dict[str, Any]:
    return {"to": nums, "content": CONTENT, "signature": "企信", "type": "notification"}


# -- part 1: over HTTP ----------------------------------------------------------------------------------


async def http_round(plat: PlatformProcess, n: int, seed: int) -> dict[str, float]:
    conn = await HttpConn.open(plat.port)
    payload = body_of(numbers(n, seed))
    t0 = time.perf_counter()
    body = orjson.dumps(payload)
    t1 = time.perf_counter()
    raw = signed_request(plat.account, "POST", "/v1/sms", body)
    t2 = time.perf_counter()
    status, answer = await conn.roundtrip(raw)
    t3 = time.perf_counter()
    first = conn.first_byte
    parsed = orjson.loads(answer)
    t4 = time.perf_counter()
    await conn.close()
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {answer[:300]!r}")
    return {
        "accepted": parsed["accepted_count"],
        "body_mb": len(body) / 1e6,
        "answer_mb": len(answer) / 1e6,
        "encode": t1 - t0,
        "sign": t2 - t1,
        "to_first_byte": first - t2,
        "transfer": t3 - first,
        "send_to_response": t3 - t2,
        "client_parse": t4 - t3,
        "total": t4 - t0,
    }


def part_http(n: int, rounds: int, database_url: str | None) -> list[dict[str, float]]:
    results = []
    with PlatformProcess(database_url=database_url) as plat:
        db = "PostgreSQL" if database_url else "SQLite"
        print(f"[http] platform pid {plat.proc.pid if plat.proc else '?'} ({db}, simulator channel, dispatcher on)")
        for r in range(rounds):
            res = asyncio.run(http_round(plat, n, r))
            results.append(res)
            print(
                f"[http] round {r + 1}: {int(res['accepted'])} accepted; body {res['body_mb']:.1f} MB,"
                f" answer {res['answer_mb']:.1f} MB | client encode {res['encode'] * 1000:.0f} ms,"
                f" sign {res['sign'] * 1000:.0f} ms | send→first byte {res['to_first_byte'] * 1000:.0f} ms,"
                f" transfer {res['transfer'] * 1000:.0f} ms => send→response {res['send_to_response']:.2f} s"
                f" | client parse {res['client_parse'] * 1000:.0f} ms"
            )
            time.sleep(1.0)  # let the dispatcher catch its breath between rounds (it is busy sending)
    return results


# -- part 2: in process ---------------------------------------------------------------------------------


class TimedTx:
    """Wraps a Tx and adds up the time spent in each statement (keyed by its first words)."""

    def __init__(self, tx: Tx, times: dict[str, float]) -> None:
        self._tx = tx
        self.is_pg = tx.is_pg
        self.times = times

    def _timed(self, label: str, fn: Callable[..., Any], *a: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*a)
        finally:
            self.times[label] = self.times.get(label, 0.0) + time.perf_counter() - t

    @staticmethod
    def _label(sql: str) -> str:
        return " ".join(sql.split()[:3])[:40]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._timed(self._label(sql), self._tx.execute, sql, params)

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._timed(self._label(sql), self._tx.one, sql, params)

    def all(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._timed(self._label(sql), self._tx.all, sql, params)

    def executemany(self, sql: str, rows: Any) -> None:
        self._timed(self._label(sql), self._tx.executemany, sql, rows)

    def bulk_insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self._timed(f"bulk_insert {table}", self._tx.bulk_insert, table, columns, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


def part_inprocess(n: int, rounds: int, database_url: str | None) -> list[dict[str, float]]:
    return asyncio.run(_inprocess(n, rounds, database_url))


async def _inprocess(n: int, rounds: int, database_url: str | None) -> list[dict[str, float]]:
    tmp = Path(tempfile.mkdtemp(prefix="qixin-bench-batch-"))
    settings = load_settings(tmp, database_url=database_url or None)
    settings = settings.with_(compliance=settings.compliance.model_copy(update={"sending_windows": False}))
    platform = build(settings)  # the composition root: the same screener and pricer as `qixin run`
    runtime = api_only(platform)  # no dispatcher: accept alone is measured
    await runtime.start()
    db = platform.db
    try:
        acct = await db.write(lambda tx: create_account(tx, "压测客户", "企信", 10**12, 1))
        directory = platform.directory
        svc = platform.accept
        table = prefix_table()
        out = []

        async def one_round(seed: int) -> dict[str, float]:
            key = await directory.key(acct["app_key"])
            assert key is not None
            raw = orjson.dumps(body_of(numbers(n, seed)))
            t: dict[str, float] = {}
            s = time.perf_counter()
            body = orjson.loads(raw)
            t["server json parse"] = time.perf_counter() - s
            s = time.perf_counter()
            hashlib.sha256(raw).hexdigest()
            t["body sha256 (x2: auth + request_hash)"] = 2 * (time.perf_counter() - s)
            # the steps prepare() does, timed alone (prepare itself is timed as a whole below)
            s = time.perf_counter()
            parsed = parse_numbers(body["to"])
            t["  parse_numbers"] = time.perf_counter() - s
            s = time.perf_counter()
            lookup = table.lookup
            infos = [lookup(x) for x in parsed.valid]
            t["  prefix lookups"] = time.perf_counter() - s
            s = time.perf_counter()
            new_ids = ids.take(len(parsed.valid) + 1)
            t["  ids.take"] = time.perf_counter() - s
            s = time.perf_counter()
            _ = [(m, i.number, i.carrier, i.province) for m, i in zip(new_ids[1:], infos, strict=True)]
            t["  build rows (tuples)"] = time.perf_counter() - s
            screen = svc.screener.screen
            screen_time = [0.0]

            async def timed_screen(*a: Any, **kw: Any) -> Any:
                ss = time.perf_counter()
                try:
                    return await screen(*a, **kw)
                finally:
                    screen_time[0] = time.perf_counter() - ss

            svc.screener.screen = timed_screen  # type: ignore[method-assign]
            s = time.perf_counter()
            try:
                p = await svc.prepare(key, body, raw)
            finally:
                svc.screener.screen = screen  # type: ignore[method-assign]
            t["  compliance screening (inside prepare)"] = screen_time[0]
            t["prepare() total"] = time.perf_counter() - s
            sql: dict[str, float] = {}
            job_time = [0.0]

            def job(tx: Tx) -> dict[str, Any]:
                js = time.perf_counter()
                try:
                    return persist(TimedTx(tx, sql), p)  # type: ignore[arg-type]
                finally:
                    job_time[0] = time.perf_counter() - js

            s = time.perf_counter()
            resp = await db.write(job)
            write_total = time.perf_counter() - s
            for label, v in sql.items():
                t[f"  sql: {label}"] = v
            t["  persist() python outside sql (incl. response_of)"] = job_time[0] - sum(sql.values())
            t["persist() job total"] = job_time[0]
            t["commit + writer hand-off"] = write_total - job_time[0]
            s = time.perf_counter()
            response_of(p)
            t["  response_of() alone"] = time.perf_counter() - s
            s = time.perf_counter()
            orjson.dumps(resp)
            t["response orjson.dumps"] = time.perf_counter() - s
            t["TOTAL server-side (parse+hash+prepare+write+dumps)"] = (
                t["server json parse"]
                + t["body sha256 (x2: auth + request_hash)"]
                + t["prepare() total"]
                + write_total
                + t["response orjson.dumps"]
            )
            return t

        for r in range(rounds):
            out.append(await one_round(r))
        return out
    finally:
        await runtime.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def print_inprocess(results: list[dict[str, float]], label: str) -> None:
    print(f"[in-process, {label}] best of {len(results)} rounds (ms), spread in brackets:")
    for k in results[0]:
        vals = [r[k] * 1000 for r in results]
        print(f"  {k:<55} {min(vals):8.1f}   [{min(vals):.0f}–{max(vals):.0f}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100_000, help="numbers in the batch (default 100,000)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--pg", nargs="?", const="postgresql://postgres@127.0.0.1:5432", help="also run on this PostgreSQL server"
    )
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--skip-inprocess", action="store_true")
    args = ap.parse_args()
    loop_name = use_uvloop()
    print(f"bench_batch: {machine()}; client loop {loop_name}, pid {os.getpid()}; {args.n:,} numbers per request")

    targets = [("SQLite", None)]
    if args.pg:
        targets.append(("PostgreSQL", args.pg))
    for label, server in targets:
        if not args.skip_inprocess:
            if server:
                with PostgresDb(server) as pg:
                    print_inprocess(part_inprocess(args.n, args.rounds, pg.url), label)
            else:
                print_inprocess(part_inprocess(args.n, args.rounds, None), label)
        if not args.skip_http:
            if server:
                with PostgresDb(server) as pg:
                    res = part_http(args.n, args.rounds, pg.url)
            else:
                res = part_http(args.n, args.rounds, None)
            best = min(r["send_to_response"] for r in res)
            worst = max(r["send_to_response"] for r in res)
            verdict = "MET" if best <= 2.0 else "NOT MET"
            print(
                f"[http, {label}] send→response best {best:.2f} s (spread {best:.2f}–{worst:.2f});"
                f" target ≤ 2 s: {verdict}"
            )


if __name__ == "__main__":
    main()
