"""Scale-out of the distributed mode on PostgreSQL: 1, 2 and 4 processes of each role.

For each count k (``--counts``, default 1 2 4): a fresh PostgreSQL database, ``qixin api --workers k`` (k API
processes on one port, SO_REUSEPORT) and k × ``qixin dispatcher --no-workers`` on it, Redis for nonces and
flow control, one SMPP simulator process (``qixin simulator smpp``) as the channel. This process is the load
client: ``-c`` keep-alive connections (opened fresh, so the kernel spreads them over the API processes),
``-n`` pre-signed one-number ``POST /v1/sms`` after an untimed warm-up, then it waits until every message is
final (submitted, receipt stored).

    .venv/bin/python bench/bench_scale.py [--counts 1 2 4] [-n 6000] [-c 48] [--pg postgresql://postgres@127.0.0.1:5432]

Prints per k: accepted msg/s and HTTP p50/p99 (send phase), end to end msg/s (first send → last final), and
CPU µs per message of each API process, each dispatcher, the simulator, the database backends of this
database (their pids from pg_stat_activity) and the load client; then the idle CPU of each role (measured
for ``--idle-seconds`` before the load: polling loops) and the CPU per message above it. On a shared 2-core
machine the rates say little about more cores; the CPU per message and per role is what predicts a bigger box.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from _harness import (
    FINAL_SQL,
    PY,
    ROOT,
    HttpConn,
    PostgresDb,
    SimulatorProcess,
    cpu_seconds,
    free_port,
    machine,
    percentile,
    random_numbers,
    signed_request,
    use_uvloop,
)

CONTENT = "您的验证码是 {code}，5 分钟内有效。"
REDIS = "redis://127.0.0.1:6379/0"


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (the API processes of ``qixin api --workers k``), from /proc."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def listeners(port: int) -> int:
    """Sockets listening on ``port`` (each SO_REUSEPORT listener is a line of its own in /proc/net/tcp)."""
    hexport = f":{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[1].endswith(hexport) and line.split()[3] == "0A")


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Cluster:
    """``qixin api --workers k`` + k dispatchers on one fresh database, stopped on exit."""

    def __init__(self, k: int, db_url: str, smpp_port: int, tmp: Path) -> None:
        self.k, self.tmp = k, tmp
        self.port = free_port()
        tag = uuid.uuid4().hex[:8]
        self.env = {kv: v for kv, v in os.environ.items() if not kv.startswith("QIXIN_")} | {
            "QIXIN_DATABASE_URL": db_url,
            "QIXIN_REDIS_URL": REDIS,
            "QIXIN_FLOW_PREFIX": f"qixin-flow-bench-{tag}",
            "QIXIN_LIMITS_PREFIX": f"qixin-limits-bench-{tag}",
            "QIXIN_SECRET_KEY": "YmVuY2gtc2NhbGUta2V5LTMyLWJ5dGVzLWxvbmchISE=",
            "QIXIN_SMPP_PORT": str(smpp_port),
            "QIXIN_SMPP_SERVER_PORT": "0",
            "QIXIN_CMPP_SERVER_PORT": "0",
            "QIXIN_SENDING_WINDOWS": "off",  # night in Beijing must not defer the bench's messages
            "QIXIN_NODE_ID": "0",
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        self.account: dict[str, Any] = {}

    def _cli(self, *args: str) -> bytes:
        return subprocess.run(
            [PY, "-m", "qixin.cli", *args, "--data-dir", str(self.tmp)],
            env=self.env, cwd=ROOT, capture_output=True, check=True, timeout=120,
        ).stdout  # fmt: skip

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([PY, "-m", "qixin.cli", *args, "--data-dir", str(self.tmp)], env=self.env,
                                cwd=ROOT, stdout=log, stderr=log)  # fmt: skip
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        self.account = orjson.loads(
            self._cli(
                "account",
                "create",
                "--name",
                "扩展压测",
                "--signature",
                "企信",
                "--balance",
                "100000000",
                "--price",
                "0.001",
                "--json",
            )
        )
        self.dispatchers = [self._spawn(f"dispatcher-{i}", "dispatcher", "--no-workers") for i in range(self.k)]
        self.api = self._spawn("api", "api", "--port", str(self.port), "--workers", str(self.k))
        deadline = time.monotonic() + 120
        while True:  # every process said it is up
            logs = [(self.tmp / f"dispatcher-{i}.log").read_text(errors="replace") for i in range(self.k)]
            api_log = (self.tmp / "api.log").read_text(errors="replace")
            if all("调度进程已启动" in t for t in logs) and listeners(self.port) >= self.k:
                break
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"cluster did not start: {api_log[-1500:]}")
            time.sleep(0.2)
        self.api_pids = children(self.api.pid) if self.k > 1 else [self.api.pid]  # --workers 1: no supervisor
        assert len(self.api_pids) == self.k, self.api_pids

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def requests_for(account: dict[str, Any], numbers: list[str], start: int) -> list[bytes]:
    return [
        signed_request(account, "POST", "/v1/sms", orjson.dumps({
            "to": num, "content": CONTENT.format(code=f"{(start + i) % 1_000_000:06d}"), "signature": "企信",
            "type": "verification"}))
        for i, num in enumerate(numbers)
    ]  # fmt: skip


async def send(port: int, reqs: list[bytes], concurrency: int) -> dict[str, float]:
    conns = [await HttpConn.open(port) for _ in range(concurrency)]
    lat: list[float] = []
    errors = 0
    it = iter(reqs)

    async def worker(conn: HttpConn) -> None:
        nonlocal errors
        for raw in it:
            t = time.perf_counter()
            status, body = await conn.roundtrip(raw)
            lat.append(time.perf_counter() - t)
            if status != 200:
                errors += 1
                if errors == 1:
                    print(f"  first error {status}: {body[:200]!r}")

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    seconds = time.perf_counter() - t0
    for c in conns:
        await c.close()
    lat.sort()
    return {"seconds": seconds, "errors": errors, "p50": percentile(lat, 50) * 1e3, "p99": percentile(lat, 99) * 1e3}


async def wait_final(dsn: str, total: int, timeout: float) -> float:
    """Seconds until ``total`` messages are final (polled every 20 ms), or raise."""
    import psycopg

    t0 = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        while True:
            row = await (await conn.execute(FINAL_SQL)).fetchone()
            if row and row[0] >= total:
                return time.perf_counter() - t0
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"only {row[0] if row else 0} of {total} final after {timeout:.0f} s")
            await asyncio.sleep(0.02)


def backends(dsn: str, name: str) -> list[int]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
        ).fetchall()
    return [int(r[0]) for r in rows]


def cpu_of(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            out[pid] = cpu_seconds(pid)
        except OSError:  # gone meanwhile (a backend that disconnected)
            continue
    return out


async def one_count(k: int, args: argparse.Namespace, sim: SimulatorProcess) -> dict[str, Any]:
    import tempfile

    with PostgresDb(args.pg) as pg:
        dsn = "postgresql://" + pg.url.split("://", 1)[1]
        tmp = Path(tempfile.mkdtemp(prefix=f"qixin-scale-{k}-", dir=args.tmp))
        cluster = Cluster(k, pg.url, sim.port, tmp)
        try:
            cluster.start()
            nums = random_numbers(args.warmup + args.n, 7 + k)
            warm = requests_for(cluster.account, nums[: args.warmup], 0)
            timed = requests_for(cluster.account, nums[args.warmup :], args.warmup)
            await send(cluster.port, warm, args.concurrency)
            await wait_final(dsn, args.warmup, 120)
            roles = {"api": cluster.api_pids, "dispatcher": [p.pid for p in cluster.dispatchers],
                     "simulator": [sim.proc.pid] if sim.proc else []}  # fmt: skip
            db_pids = backends(dsn, pg.name)
            # idle: what the processes burn with nothing to do (polling loops), per second
            idle0, db_idle0 = {r: cpu_of(p) for r, p in roles.items()}, cpu_of(db_pids)
            await asyncio.sleep(args.idle_seconds)  # the quiet interval itself is what is measured
            idle = {r: sum(v - idle0[r].get(pid, v) for pid, v in cpu_of(p).items()) / args.idle_seconds
                    for r, p in roles.items()}  # fmt: skip
            idle["db"] = sum(v - db_idle0.get(pid, v) for pid, v in cpu_of(db_pids).items()) / args.idle_seconds
            before = {r: cpu_of(p) for r, p in roles.items()}
            db_before, me_before = cpu_of(db_pids), self_cpu()
            t0 = time.perf_counter()
            sent = await send(cluster.port, timed, args.concurrency)
            await wait_final(dsn, args.warmup + args.n, args.max_seconds)
            e2e = time.perf_counter() - t0
            me = self_cpu() - me_before
            db_after = cpu_of(sorted({*db_pids, *backends(dsn, pg.name)}))
            db = sum(v - db_before.get(pid, 0.0) for pid, v in db_after.items())
            per = {r: [cpu_of([pid]).get(pid, 0.0) - before[r].get(pid, 0.0) for pid in p] for r, p in roles.items()}
        finally:
            cluster.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    n = args.n
    us = 1e6 / n

    def marginal(role: str, used: float) -> float:
        """µs of CPU per message above what the role burns idle over the same time."""
        return max(0.0, used - idle[role] * e2e) * us

    return {
        "k": k, "accept": n / sent["seconds"], "p50": sent["p50"], "p99": sent["p99"], "errors": sent["errors"],
        "e2e": n / e2e, "seconds": e2e,
        "api_us": [c * us for c in per["api"]], "disp_us": [c * us for c in per["dispatcher"]],
        "sim_us": sum(per["simulator"]) * us, "db_us": db * us, "db_backends": len(db_after), "client_us": me * us,
        "api_m": marginal("api", sum(per["api"])), "disp_m": marginal("dispatcher", sum(per["dispatcher"])),
        "db_m": marginal("db", db), "sim_m": marginal("simulator", sum(per["simulator"])),
        "idle_api": idle["api"] / k * 100, "idle_disp": idle["dispatcher"] / k * 100, "idle_db": idle["db"] * 100,
    }  # fmt: skip


def row(r: dict[str, Any]) -> str:
    def each(values: list[float]) -> str:
        return " + ".join(f"{v:,.0f}" for v in values) + f" = {sum(values):,.0f}"

    total = sum(r["api_us"]) + sum(r["disp_us"]) + r["sim_us"] + r["db_us"] + r["client_us"]
    return (
        f"| {r['k']} × {r['k']} | {r['accept']:,.0f} | {r['p50']:.1f} / {r['p99']:.1f} | {r['e2e']:,.0f} |"
        f" {each(r['api_us'])} | {each(r['disp_us'])} | {r['db_us']:,.0f} ({r['db_backends']}) | {r['sim_us']:,.0f}"
        f" | {r['client_us']:,.0f} | {total:,.0f} |"
    )


def marginal_row(r: dict[str, Any]) -> str:
    total = r["api_m"] + r["disp_m"] + r["db_m"] + r["sim_m"] + r["client_us"]
    return (
        f"| {r['k']} × {r['k']} | {r['idle_api']:.1f} % | {r['idle_disp']:.1f} % | {r['idle_db']:.1f} % |"
        f" {r['api_m']:,.0f} | {r['disp_m']:,.0f} | {r['db_m']:,.0f} | {r['sim_m']:,.0f} | {total:,.0f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4], help="processes of each role (1 2 4)")
    ap.add_argument("-n", type=int, default=6_000, help="timed one-number requests per count (default 6,000)")
    ap.add_argument("-c", "--concurrency", type=int, default=48, help="client connections (default 48)")
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--idle-seconds", type=float, default=5.0, help="idle CPU measured over this, before the load")
    ap.add_argument("--max-seconds", type=float, default=180.0, help="give up waiting for final statuses")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432", help="PostgreSQL server")
    ap.add_argument("--tmp", default=None, help="parent of the data directories (default: the system's)")
    args = ap.parse_args()
    loop = use_uvloop()
    print(f"machine: {machine()}, client loop {loop}; n={args.n:,}, c={args.concurrency}")
    results = []
    with SimulatorProcess(delay_min=0.01, delay_max=0.05) as sim:
        for k in args.counts:
            r = asyncio.run(one_count(k, args, sim))
            results.append(r)
            print(f"k={k}: accept {r['accept']:,.0f} msg/s, e2e {r['e2e']:,.0f} msg/s, errors {r['errors']}")
    print(f"\nmachine after: {machine()}\n")
    print("| API × dispatchers | accepted msg/s | HTTP p50 / p99 ms | end to end msg/s | API µs CPU/msg (each = sum) |"
          " dispatcher µs CPU/msg (each = sum) | PostgreSQL backends µs/msg (count) | simulator µs/msg |"
          " client µs/msg | total µs/msg |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(row(r))
    print("\nIdle CPU (% of one core, per process; the database: all its backends) and CPU per message above idle:\n")
    print("| API × dispatchers | idle per API process | idle per dispatcher | idle PostgreSQL | API µs/msg |"
          " dispatchers µs/msg | PostgreSQL µs/msg | simulator µs/msg | total µs/msg (with client) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(marginal_row(r))


if __name__ == "__main__":
    main()
