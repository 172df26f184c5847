"""Crash at scale (invariants I1, I2, I3): messages accepted as batches and single sends mixed, the
platform (``qixin run``, SQLite) killed with SIGKILL three times in one run — during accept, during
dispatch, during receipt flushing — and restarted each time.

Requests whose answer was lost with the process are sent again with their idempotency key, as a client
does. After the last restart: every accepted message is final and none was accepted twice (messages ==
numbers sent), the queue is empty, the carrier saw each message at least once and at most
``inflight_cap`` more per kill (only those in flight at a kill repeat), ``billing verify`` and
``stats verify`` are clean, balance == ledger == the charge for every message.

The SMSC simulator runs in this test process, so its counters and the receipts it still owes survive
the platform's deaths, as a carrier's would.

Sizes: the CI variant (``test_three_kills_ci``) 6,000 messages; the soak variant (``-m soak``,
``test_three_kills_soak``) ``QIXIN_SOAK_N`` messages, 1,000,000 by default (figures in bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from conftest import free_port
from test_crash_recovery import FINAL, INFLIGHT_CAP, _count, _start, _stats_verified

from qixin.domain.signing import signed_headers
from qixin.gateway.simulators.smpp import SimulatorConfig, SmppSimulator

PRICE_LI = 35


class Client:
    """The customer: a list of requests, each sent until answered (with its idempotency key)."""

    def __init__(self, app_key: str, secret: str, n: int) -> None:
        self.app_key, self.secret = app_key, secret
        batch = min(100_000, max(n // 10, 1))
        singles = min(n // 10, 20_000)
        numbers = [f"137{i:08d}" for i in range(n)]
        self.pending: list[tuple[str, Any]] = []
        at = 0
        while at < n - singles:
            chunk = numbers[at : min(at + batch, n - singles)]
            self.pending.append((f"batch-{at}", chunk))
            at += len(chunk)
        self.pending += [(f"single-{i}", numbers[i]) for i in range(at, n)]
        # interleave: singles between the batches, as real traffic comes
        batches = [r for r in self.pending if r[0].startswith("batch")]
        single = [r for r in self.pending if r[0].startswith("single")]
        step = max(len(single) // max(len(batches), 1), 1)
        self.pending = []
        for i, b in enumerate(batches):
            self.pending.append(b)
            self.pending += single[i * step : (i + 1) * step]
        self.pending += single[len(batches) * step :]
        self.accepted = 0
        self.answered = 0
        self.replayed = 0
        self.server_errors = 0

    async def run(self, base: str, concurrency: int = 8, retry_5xx: bool = False) -> None:
        """Send what is pending until done or the platform goes away (what failed stays pending). With
        ``retry_5xx`` a 5xx answer is counted and its request sent again later (its transaction was lost)."""
        todo = list(self.pending)
        self.pending = []
        failed: list[tuple[str, Any]] = []

        async def worker(http: httpx.AsyncClient) -> None:
            while todo:
                key, to = todo.pop(0)
                body = orjson.dumps({"to": to, "content": "崩溃恢复测试", "signature": "企信", "idempotency_key": key})
                headers = signed_headers(self.app_key, self.secret, "POST", "/v1/sms", body)
                try:
                    resp = await http.post(f"{base}/v1/sms", content=body, headers=headers)
                except httpx.TransportError:
                    failed.append((key, to))
                    failed.extend(todo)
                    todo.clear()
                    return
                if retry_5xx and resp.status_code >= 500:
                    self.server_errors += 1
                    failed.append((key, to))
                    continue
                assert resp.status_code == 200, resp.text[:300]
                data = resp.json()
                # a replayed answer is the stored answer of a request committed before a kill whose
                # answer was lost: its messages are counted now, once (the first answer never came)
                self.accepted += data["accepted_count"]
                self.replayed += 1 if data.get("replayed") else 0
                self.answered += 1

        async with httpx.AsyncClient(timeout=120) as http:
            await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        self.pending = failed


async def _until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"not in time: {what}"
        await asyncio.sleep(0.02)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    await proc.wait()


async def crash_run(tmp_path: Path, n: int, throttle: int | None, wait: float) -> dict[str, Any]:
    """One run of ``n`` messages; ``wait`` bounds each phase (seconds)."""
    data = tmp_path / "data"
    balance_yuan = n * PRICE_LI // 1000 + 100
    acct = _account(data, balance=str(balance_yuan))
    db = data / "qixin.db"
    sim = SmppSimulator("127.0.0.1", 0, SimulatorConfig(receipt_delay=(0.2, 1.0), throttle_tps=throttle), seed=11)
    smpp_port = await sim.start()
    http_port = free_port()
    base = f"http://127.0.0.1:{http_port}"
    client = Client(acct["app_key"], acct["app_secret"], n)
    kills: list[dict[str, Any]] = []
    t0 = time.monotonic()
    proc = await _start(data, http_port, smpp_port)
    try:
        # kill 1: during accept, once a third of the requests are answered
        requests_total = len(client.pending)
        sending = asyncio.create_task(client.run(base))
        await _until(lambda: client.answered >= requests_total // 3 or sending.done(), wait, "a third answered")
        await _kill(proc)
        await sending
        print(f"\nkill 1 at {time.monotonic() - t0:.1f}s", flush=True)
        kills.append({"phase": "accept", "answered": client.answered, "unanswered": len(client.pending)})
        assert client.pending, "the kill during accept came after the last request"
        proc = await _start(data, http_port, smpp_port)

        async def resend() -> None:  # the client retries what went unanswered, through the next kill too
            while client.pending:
                await client.run(base)
                if client.pending:
                    await asyncio.sleep(0.2)  # the client's retry pause while the platform is down

        sending = asyncio.create_task(resend())

        # kill 2: during dispatch (the client may still be sending)
        def carried() -> int:  # submits the carrier accepted (throttled ones are answered, not carried)
            return int(sim.stats.submit_resps[0])

        start = carried()
        await _until(lambda: carried() >= start + max((n - start) // 3, 1), wait, "dispatch under way")
        await _kill(proc)
        print(f"kill 2 at {time.monotonic() - t0:.1f}s", flush=True)
        kills.append({"phase": "dispatch", "carried": carried(), "accepted_so_far": client.accepted})
        assert carried() < n, "the kill during dispatch came after the last submit"
        proc = await _start(data, http_port, smpp_port)
        await asyncio.wait_for(sending, wait)
        assert client.accepted == n, (client.accepted, n)
        assert _count(db, "SELECT COUNT(*) FROM messages") == n  # none accepted twice

        # kill 3: while receipts flow back (every message submitted, receipts still owed)
        await _until(lambda: carried() >= n, wait, "every message submitted")
        await _until(lambda: sim.stats.receipts_sent > 0, wait, "receipts flowing")
        await _kill(proc)
        print(f"kill 3 at {time.monotonic() - t0:.1f}s", flush=True)
        kills.append({"phase": "receipts", "receipts_pending": sim.stats.receipts_pending})
        proc = await _start(data, http_port, smpp_port)

        final = 0
        deadline = time.monotonic() + wait
        while final < n:
            assert time.monotonic() < deadline, f"only {final} of {n} final after the last restart"
            await asyncio.sleep(0.2)
            final = _count(db, f"SELECT COUNT(*) FROM messages WHERE status IN {FINAL}")
        elapsed = time.monotonic() - t0
        assert _count(db, "SELECT COUNT(*) FROM messages") == n
        assert _count(db, "SELECT COUNT(*) FROM dispatch_queue") == 0
        extra = sim.stats.submit_resps[0] - n
        assert 0 <= extra <= 3 * INFLIGHT_CAP, extra
        balance = _count(db, f"SELECT balance_li FROM accounts WHERE id = {acct['account_id']}")
        ledger = _count(db, f"SELECT SUM(amount_li) FROM ledger WHERE account_id = {acct['account_id']}")
        assert balance == ledger == balance_yuan * 1000 - n * PRICE_LI, (balance, ledger)
        assert _billing_verified(data)
        assert _stats_verified(data)
        figures = {"n": n, "requests": requests_total, "replayed": client.replayed, "kills": kills,
                   "duplicates": extra, "seconds": round(elapsed, 1)}  # fmt: skip
        print(f"\ncrash run: {figures}")
        return figures
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
        await sim.stop()


def _account(data: Path, balance: str) -> dict[str, Any]:
    created = subprocess.run(
        [sys.executable, "-m", "qixin.cli", "account", "create", "--name", "崩溃测试", "--signature", "企信",
         "--balance", balance, "--price", "0.035", "--data-dir", str(data), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(created.stdout)  # type: ignore[no-any-return]


def _billing_verified(data: Path) -> bool:
    out = subprocess.run(
        [sys.executable, "-m", "qixin.cli", "billing", "verify", "--data-dir", str(data), "--json"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode in (0, 1), out.stderr
    report = json.loads(out.stdout)
    assert report["ok"], report
    return bool(report["ok"])


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_three_kills_ci(tmp_path: Path) -> None:
    await crash_run(tmp_path, 6_000, throttle=500, wait=90)


@pytest.mark.soak
@pytest.mark.timeout(4 * 3600)
async def test_three_kills_soak(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if "soak" not in (request.config.getoption("-m") or ""):
        pytest.skip("full scale: run with -m soak (QIXIN_SOAK_N messages, default 1,000,000)")
    await crash_run(tmp_path, int(os.environ.get("QIXIN_SOAK_N", "1000000")), throttle=None, wait=3600)
