"""Crash test of the distributed mode (invariants I1, I2, I3): PostgreSQL, the roles as separate processes on
loopback as docs/deploy.md runs them — ``qixin api``, two ``qixin dispatcher --no-workers``, ``qixin worker``
— and three faults during traffic: SIGKILL of the API process while requests are being accepted, every
PostgreSQL connection of the platform cut (``pg_terminate_backend``) while messages are dispatched, and
SIGKILL of a dispatcher with messages in flight. A killed role is started again (what an orchestrator does);
the roles whose connections were cut must recover by themselves.

The customer resends a request whose answer it lost, with its idempotency key. After the last fault: every
accepted message is final and none was accepted twice (messages == numbers sent), the queue is empty, the
carrier saw each message at least once and at most ``INFLIGHT_CAP`` more per fault, ``billing verify`` and
``stats verify`` are clean, balance == ledger == the charge for every message, and no role died of the cut
connections.

The carrier (the SMPP simulator) runs in this test process, not as a ``qixin simulator`` process: it is the
party outside the platform that survives its faults, and its counters (submits carried, receipts owed) are
what the duplicates are measured on.

Sizes: CI (``test_pg_roles_three_faults_ci``) 3,000 messages; soak (``-m soak``) ``QIXIN_SOAK_PG_N``,
100,000 by default (figures in bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import free_port, need, redis_available
from test_faults_crash import PRICE_LI, Client, _until

from qixin.gateway.simulators.smpp import SimulatorConfig, SmppSimulator

REDIS = "redis://127.0.0.1:6379/0"
CLI = [sys.executable, "-m", "qixin.cli"]
SECRET_KEY = "Y3Jhc2gtcGctcm9sZXMta2V5LTMyLWJ5dGVzLWxvbmc="  # base64 of 32 bytes, shared by every role
INFLIGHT_CAP = 200
FINAL = "('delivered','undelivered','failed','rejected','expired','cancelled')"


def _dsn(pg_url: str) -> str:
    return "postgresql://" + pg_url.split("://", 1)[1]


async def _scalar(pg_url: str, sql: str) -> int:
    import psycopg

    async with await psycopg.AsyncConnection.connect(_dsn(pg_url)) as conn:
        row = await (await conn.execute(sql)).fetchone()
    assert row is not None
    return int(row[0] or 0)


async def _cut_connections(pg_url: str) -> int:
    """``pg_terminate_backend`` of every other connection to the platform's database: how many were cut."""
    import psycopg

    name = pg_url.rsplit("/", 1)[1]
    async with await psycopg.AsyncConnection.connect(_dsn(pg_url), autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT COUNT(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


class Roles:
    """The platform's processes; each role's log in ``logs/<role>-<n>.log`` (n: how many times it started)."""

    def __init__(self, env: dict[str, str], data: Path, logs: Path) -> None:
        self.env, self.data, self.logs = env, data, logs
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.starts: dict[str, int] = {}
        self.http_port = free_port()
        self.metrics = {"dispatcher-0": free_port(), "dispatcher-1": free_port(), "worker": free_port()}

    async def start(self, role: str) -> None:
        n = self.starts[role] = self.starts.get(role, 0) + 1
        if role == "api":
            argv = ["api", "--port", str(self.http_port)]
        elif role.startswith("dispatcher"):
            argv = ["dispatcher", "--no-workers"]
        else:
            argv = ["worker"]
        env = self.env | ({"QIXIN_METRICS_PORT": str(self.metrics[role])} if role in self.metrics else {})
        log = open(self.logs / f"{role}-{n}.log", "wb")  # noqa: SIM115, ASYNC230 - closed below; a local file
        self.procs[role] = await asyncio.create_subprocess_exec(
            *CLI, *argv, "--data-dir", str(self.data), env=env, stdout=log, stderr=log
        )
        log.close()
        if role == "api":
            await self._api_up()

    async def _api_up(self) -> None:
        deadline = time.monotonic() + 90
        async with httpx.AsyncClient() as http:
            while True:
                try:
                    if (await http.get(f"{self.base}/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert self.procs["api"].returncode is None, self.tail("api")
                assert time.monotonic() < deadline, "the API process did not start"
                await asyncio.sleep(0.1)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    async def kill(self, role: str) -> None:
        self.procs[role].send_signal(signal.SIGKILL)
        await self.procs[role].wait()

    def dead(self) -> list[str]:
        return [r for r, p in self.procs.items() if p.returncode is not None]

    def tail(self, role: str) -> str:
        path = self.logs / f"{role}-{self.starts[role]}.log"
        return f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"

    async def stop(self) -> list[int | None]:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for proc in self.procs.values():
            try:
                codes.append(await asyncio.wait_for(proc.wait(), 30))
            except TimeoutError:
                proc.kill()
                codes.append(None)
        return codes


def _cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run([*CLI, *args, "--json"], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode in (0, 1), out.stderr[-2000:]
    return json.loads(out.stdout)  # type: ignore[no-any-return]


async def crash_run_pg(pg_url: str, tmp_path: Path, n: int, throttle: int | None, wait: float) -> dict[str, Any]:
    need(redis_available(REDIS))
    tag = uuid.uuid4().hex[:8]
    data, logs = tmp_path / "data", tmp_path / "logs"
    logs.mkdir()
    sim = SmppSimulator("127.0.0.1", 0, SimulatorConfig(receipt_delay=(0.2, 1.0), throttle_tps=throttle), seed=13)
    smpp_port = await sim.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIXIN_")} | {
        "QIXIN_DATABASE_URL": pg_url, "QIXIN_REDIS_URL": REDIS, "QIXIN_SECRET_KEY": SECRET_KEY,
        "QIXIN_FLOW_PREFIX": f"qixin-flow-crash-{tag}", "QIXIN_LIMITS_PREFIX": f"qixin-limits-crash-{tag}",
        "QIXIN_SMPP_PORT": str(smpp_port), "QIXIN_SENDING_WINDOWS": "off", "QIXIN_MAX_NUMBER_RUN": "0",
        "QIXIN_LEASE_SECONDS": "2", "QIXIN_INFLIGHT_CAP": str(INFLIGHT_CAP),
        "QIXIN_SMPP_SERVER_PORT": "0", "QIXIN_CMPP_SERVER_PORT": "0", "QIXIN_SGIP_SERVER_PORT": "0",
        "QIXIN_SMGP_SERVER_PORT": "0",
    }  # fmt: skip
    balance_yuan = n * PRICE_LI // 1000 + 100
    acct = await asyncio.to_thread(
        _cli, env, "account", "create", "--name", "分布式崩溃测试", "--signature", "企信", "--balance",
        str(balance_yuan), "--price", "0.035", "--data-dir", str(data),
    )  # fmt: skip
    roles = Roles(env, data, logs)
    client = Client(acct["app_key"], acct["app_secret"], n)
    faults: list[dict[str, Any]] = []
    t0 = time.monotonic()

    def carried() -> int:  # submits the carrier accepted (throttled ones are answered, not carried)
        return int(sim.stats.submit_resps[0])

    try:
        for role in ("worker", "dispatcher-0", "dispatcher-1", "api"):
            await roles.start(role)
        await _until(lambda: sim.stats.binds >= 2, wait, "both dispatchers bound")

        # fault 1: SIGKILL of the API process during accept, once a third of the requests are answered
        requests_total = len(client.pending)
        sending = asyncio.create_task(client.run(roles.base, retry_5xx=True))
        await _until(lambda: client.answered >= requests_total // 3 or sending.done(), wait, "a third answered")
        await roles.kill("api")
        await sending
        faults.append({"fault": "kill api", "at": round(time.monotonic() - t0, 1), "answered": client.answered,
                       "unanswered": len(client.pending)})  # fmt: skip
        assert client.pending, "the kill during accept came after the last request"
        await roles.start("api")

        async def resend() -> None:  # the client retries what went unanswered
            while client.pending:
                await client.run(roles.base, retry_5xx=True)
                if client.pending:
                    await asyncio.sleep(0.2)  # the client's retry pause while the API is down

        sending = asyncio.create_task(resend())

        # fault 2: every database connection of the platform cut while messages are dispatched
        start = carried()
        await _until(lambda: carried() >= start + max((n - start) // 4, 1), wait, "dispatch under way")
        cut = await _cut_connections(pg_url)
        faults.append({"fault": "pg_terminate_backend", "at": round(time.monotonic() - t0, 1), "connections": cut,
                       "carried": carried()})  # fmt: skip
        assert cut > 0

        # fault 3: SIGKILL of a dispatcher with messages in flight
        start = carried()
        await _until(lambda: carried() >= start + max((n - start) // 3, 1), wait, "dispatch goes on")
        await roles.kill("dispatcher-0")
        faults.append({"fault": "kill dispatcher", "at": round(time.monotonic() - t0, 1), "carried": carried()})
        assert carried() < n, "the kill during dispatch came after the last submit"
        await roles.start("dispatcher-0")

        await asyncio.wait_for(sending, wait)
        assert client.accepted == n, (client.accepted, n)
        assert await _scalar(pg_url, "SELECT COUNT(*) FROM messages") == n  # none accepted twice

        deadline = time.monotonic() + wait
        while (final := await _scalar(pg_url, f"SELECT COUNT(*) FROM messages WHERE status IN {FINAL}")) < n:
            assert not roles.dead(), "\n".join(roles.tail(r) for r in roles.dead())
            assert time.monotonic() < deadline, f"only {final} of {n} final"
            await asyncio.sleep(0.3)
        elapsed = time.monotonic() - t0
        assert not roles.dead(), "a role died of the cut connections:\n" + "\n".join(
            roles.tail(r) for r in roles.dead()
        )
        assert await _scalar(pg_url, "SELECT COUNT(*) FROM messages") == n
        assert await _scalar(pg_url, "SELECT COUNT(*) FROM dispatch_queue") == 0
        extra = carried() - n
        assert 0 <= extra <= len(faults) * INFLIGHT_CAP, extra
        account = acct["account_id"]
        balance = await _scalar(pg_url, f"SELECT balance_li FROM accounts WHERE id = {account}")
        ledger = await _scalar(pg_url, f"SELECT SUM(amount_li) FROM ledger WHERE account_id = {account}")
        assert balance == ledger == balance_yuan * 1000 - n * PRICE_LI, (balance, ledger)
        billing = await asyncio.to_thread(_cli, env, "billing", "verify", "--data-dir", str(data))
        assert billing["ok"], billing
        stats = await asyncio.to_thread(_cli, env, "stats", "verify", "--data-dir", str(data))
        assert stats["ok"], stats["mismatches"][:5]
        figures = {
            "n": n, "requests": requests_total, "replayed": client.replayed, "faults": faults,
            "server_errors": client.server_errors, "duplicates": extra, "bound": len(faults) * INFLIGHT_CAP,
            "seconds": round(elapsed, 1),
        }  # fmt: skip
        print(f"\npg roles crash run: {figures}")
        return figures
    finally:
        codes = await roles.stop()
        await sim.stop()
        print(f"exit codes on SIGTERM: {codes}")


@pytest.mark.pg
@pytest.mark.slow
@pytest.mark.timeout(400)
async def test_pg_roles_three_faults_ci(pg_url: str, tmp_path: Path) -> None:
    await crash_run_pg(pg_url, tmp_path, 3_000, throttle=400, wait=120)


@pytest.mark.pg
@pytest.mark.soak
@pytest.mark.timeout(4 * 3600)
async def test_pg_roles_three_faults_soak(pg_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if "soak" not in (request.config.getoption("-m") or ""):
        pytest.skip("full scale: run with -m soak (QIXIN_SOAK_PG_N messages, default 100,000)")
    await crash_run_pg(pg_url, tmp_path, int(os.environ.get("QIXIN_SOAK_PG_N", "100000")), throttle=None, wait=3600)
