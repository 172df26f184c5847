"""Crash test (invariants I1, I2): N messages accepted, the platform killed with SIGKILL in the
middle of dispatch, restarted. Every message reaches a final state, none is lost, and the simulator
sees at most ``inflight_cap`` submits beyond N (only messages in flight at the crash repeat).
``make test`` runs it with 5,000 messages (2,000 for the embedded variant); the full scale (20,000 and
5,000) is marked ``soak`` and runs with ``make soak``.

The platform runs as a real ``qixin run`` process; the SMSC simulator runs in this test process, so its
counters and its queue of undelivered receipts survive the platform's death (as a carrier's would).

The embedded variant keeps the default: the simulators run INSIDE the killed process, so the receipts
they owed die with it. With a short receipt timeout, every message is final after the restart and none
stays ``submitted`` beyond the timeout: those whose receipt died are expired (RECEIPT_TIMEOUT).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from conftest import free_port, migrate_from_template

from qixin.domain.signing import signed_headers
from qixin.gateway.simulators.smpp import SimulatorConfig, SmppSimulator

INFLIGHT_CAP = 1000
FINAL = "('delivered','undelivered','failed','rejected','expired','cancelled')"


def _count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


async def _start(data: Path, http_port: int, smpp_port: int, **extra: str) -> asyncio.subprocess.Process:
    """``qixin run`` on ``data``; ``smpp_port`` 0 = the embedded default (the simulators in its process)."""
    env = dict(os.environ)
    env.update(
        QIXIN_SMPP_PORT=str(smpp_port),
        QIXIN_LEASE_SECONDS="2",
        QIXIN_INFLIGHT_CAP=str(INFLIGHT_CAP),
        QIXIN_SENDING_WINDOWS="off",  # must pass at any hour
        QIXIN_MAX_NUMBER_RUN="0",  # the batch is 20,000 consecutive numbers
    )
    env.update(extra)
    env.pop("QIXIN_DATABASE_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "qixin.cli", "run", "--port", str(http_port), "--data-dir", str(data),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                if (await http.get(f"http://127.0.0.1:{http_port}/health")).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError("platform did not start")


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("N", [5_000, pytest.param(20_000, marks=pytest.mark.soak)])
async def test_sigkill_mid_dispatch_loses_nothing(tmp_path: Path, N: int) -> None:
    data = tmp_path / "data"
    migrate_from_template(f"sqlite:///{data / 'qixin.db'}")  # the processes below find it migrated
    created = subprocess.run(  # noqa: ASYNC221 - a one-off CLI call before the loop has work
        [sys.executable, "-m", "qixin.cli", "account", "create", "--name", "崩溃测试", "--signature", "企信",
         "--balance", "10000", "--price", "0.035", "--data-dir", str(data), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    acct = json.loads(created.stdout)
    db = data / "qixin.db"

    sim = SmppSimulator("127.0.0.1", 0, SimulatorConfig(receipt_delay=(0.2, 1.5)), seed=7)
    smpp_port = await sim.start()
    http_port = free_port()
    proc = await _start(data, http_port, smpp_port)
    try:
        body = orjson.dumps({"to": [f"137{i:08d}" for i in range(N)], "content": "崩溃恢复测试", "signature": "企信"})
        headers = signed_headers(acct["app_key"], acct["app_secret"], "POST", "/v1/sms", body)
        async with httpx.AsyncClient(timeout=60) as http:
            resp = await http.post(f"http://127.0.0.1:{http_port}/v1/sms", content=body, headers=headers)
        assert resp.status_code == 200, resp.text
        assert resp.json()["accepted_count"] == N

        # kill it in the middle of dispatch
        for _ in range(600):
            if sim.stats.submits >= N // 4:
                break
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        at_kill = sim.stats.submits
        assert 0 < at_kill < N, f"kill came too late or too early: {at_kill} submits"
        assert _count(db, "SELECT COUNT(*) FROM messages") == N

        proc = await _start(data, http_port, smpp_port)
        final = 0
        for _ in range(1200):
            final = _count(db, f"SELECT COUNT(*) FROM messages WHERE status IN {FINAL}")
            if final == N:
                break
            await asyncio.sleep(0.1)
        assert final == N, f"only {final} of {N} final after restart"
        assert _count(db, "SELECT COUNT(*) FROM dispatch_queue") == 0
        extra = sim.stats.submits - N
        print(f"\nsubmits at kill: {at_kill}; total submits: {sim.stats.submits}; duplicates: {extra}")
        assert 0 <= extra <= INFLIGHT_CAP
        balance = _count(db, f"SELECT balance_li FROM accounts WHERE id = {acct['account_id']}")
        ledger = _count(db, f"SELECT SUM(amount_li) FROM ledger WHERE account_id = {acct['account_id']}")
        assert balance == ledger == 10_000_000 - N * 35
        assert _stats_verified(data)  # rollups == counts from the message rows, after the SIGKILL
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
        await sim.stop()


def _stats_verified(data: Path) -> bool:
    """``qixin stats verify``: the statistics rollups equal the counts of the message rows."""
    out = subprocess.run(
        [sys.executable, "-m", "qixin.cli", "stats", "verify", "--data-dir", str(data), "--json"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode in (0, 1), out.stderr
    report = json.loads(out.stdout)
    assert report["ok"], report["mismatches"][:5]
    return bool(report["ok"])


def _account(data: Path) -> dict:  # type: ignore[type-arg]
    migrate_from_template(f"sqlite:///{data / 'qixin.db'}")  # the processes below find it migrated
    created = subprocess.run(
        [sys.executable, "-m", "qixin.cli", "account", "create", "--name", "崩溃测试", "--signature", "企信",
         "--balance", "10000", "--price", "0.035", "--data-dir", str(data), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(created.stdout)  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("n", [2_000, pytest.param(5_000, marks=pytest.mark.soak)])
async def test_sigkill_with_embedded_simulators_leaves_nothing_submitted_for_ever(tmp_path: Path, n: int) -> None:
    timeout = 3
    data = tmp_path / "data"
    acct = _account(data)
    db = data / "qixin.db"
    http_port = free_port()
    embedded = {"QIXIN_RECEIPT_TIMEOUT": str(timeout)}
    proc = await _start(data, http_port, 0, **embedded)
    try:
        body = orjson.dumps({"to": [f"137{i:08d}" for i in range(n)], "content": "崩溃恢复测试", "signature": "企信"})
        headers = signed_headers(acct["app_key"], acct["app_secret"], "POST", "/v1/sms", body)
        async with httpx.AsyncClient(timeout=60) as http:
            resp = await http.post(f"http://127.0.0.1:{http_port}/v1/sms", content=body, headers=headers)
        assert resp.status_code == 200, resp.text
        assert resp.json()["accepted_count"] == n

        # kill it while receipts are owed: some messages submitted, their receipts still in the simulators
        submitted = 0
        for _ in range(3000):
            submitted = _count(db, "SELECT COUNT(*) FROM messages WHERE status = 'submitted'")
            if submitted >= 50:
                break
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        owed = _count(db, "SELECT COUNT(*) FROM messages WHERE status = 'submitted'")
        assert owed > 0, f"nothing was waiting for a receipt at the kill ({submitted} before)"

        proc = await _start(data, http_port, 0, **embedded)
        final = 0
        for _ in range(1200):
            final = _count(db, f"SELECT COUNT(*) FROM messages WHERE status IN {FINAL}")
            if final == n:
                break
            await asyncio.sleep(0.1)
        stuck = _count(db, "SELECT COUNT(*) FROM messages WHERE status = 'submitted'")
        assert final == n, f"only {final} of {n} final after restart; {stuck} still submitted"
        timed_out = _count(db, "SELECT COUNT(*) FROM messages WHERE error_code = 'RECEIPT_TIMEOUT'")
        assert timed_out > 0 and _count(db, "SELECT COUNT(*) FROM messages WHERE status = 'expired'") >= timed_out
        print(f"\nsubmitted, receipt owed at kill: {owed}; expired by receipt timeout: {timed_out}")
        assert _count(db, "SELECT COUNT(*) FROM dispatch_queue") == 0
        balance = _count(db, f"SELECT balance_li FROM accounts WHERE id = {acct['account_id']}")
        ledger = _count(db, f"SELECT SUM(amount_li) FROM ledger WHERE account_id = {acct['account_id']}")
        assert balance == ledger == 10_000_000 - n * 35  # no refund rule: timed-out messages stay charged
        assert _stats_verified(data)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
