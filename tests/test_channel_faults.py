"""Channel faults through the whole platform (CMPP 3.0 channel to the China Mobile simulator):
a gateway that drops the connection mid-window, one that answers flow-control errors, one that stops
answering. No message is lost, none is submitted twice beyond the window, the channel recovers alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import TEST_COMPLIANCE, Running, start_running

from qixin.settings import Settings

N = 1500


@pytest.fixture
async def cmpp_platform(tmp_path: Path) -> AsyncIterator[Running]:
    settings = Settings(
        data_dir=tmp_path, sim_receipt_delay=(0.01, 0.05), compliance=TEST_COMPLIANCE, simulators=("cmpp3",),
        lease_seconds=3.0,
    )  # fmt: skip
    r, server, task = await start_running(settings)
    try:
        await _until(lambda: r.platform.channels.active["sim-cmpp"].up)
        yield r
    finally:
        for c in r.clients:
            await c.aclose()
        server.should_exit = True
        await task
        await r.runtime.stop()


async def _until(pred, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        assert asyncio.get_running_loop().time() < deadline, "not in time"
        await asyncio.sleep(0.02)


async def _send(r: Running) -> None:
    api = r.account(balance_li=10_000_000)
    data = (await api.send(to=[f"1380{i:07d}" for i in range(N)], content="故障测试")).json()
    assert data["accepted_count"] == N


async def _not_failed(r: Running) -> int:
    return int(await r.platform.db.read(lambda tx: tx.one("SELECT COUNT(*) FROM messages WHERE status = 'failed'")[0]))


async def test_connection_dropped_mid_window(cmpp_platform: Running) -> None:
    r = cmpp_platform
    sim = r.runtime.simulators["sim-cmpp"]
    window = r.platform.channels.active["sim-cmpp"].channel.window
    await _send(r)
    drops = 0
    for threshold in (N // 4, N // 2):
        await _until(lambda t=threshold: sim.stats.submits >= t)
        sim.drop_connections()
        drops += 1
    await r.wait_final(N, timeout=60)
    assert await _not_failed(r) == 0
    assert N <= sim.stats.submits <= N + drops * window, sim.stats.submits


async def test_flow_control_answers_are_retried(cmpp_platform: Running) -> None:
    r = cmpp_platform
    sim = r.runtime.simulators["sim-cmpp"]
    sim.config.throttle_tps = 1000
    await _send(r)
    await r.wait_final(N, timeout=60)
    assert await _not_failed(r) == 0
    assert sum(n for res, n in sim.stats.submit_resps.items() if res == 8) > 0  # it did throttle
    assert sim.stats.submit_resps[0] == N


async def test_gateway_that_stops_answering(cmpp_platform: Running) -> None:
    r = cmpp_platform
    sim = r.runtime.simulators["sim-cmpp"]
    window = r.platform.channels.active["sim-cmpp"].channel.window
    await _send(r)
    await _until(lambda: sim.stats.submits >= N // 3)
    sim.config.never_answer = True
    await _until(lambda: sim.stats.unanswered >= window)  # the gateway has swallowed a full window
    sim.config.never_answer = False
    await r.wait_final(N, timeout=90)
    assert await _not_failed(r) == 0
    # what was swallowed is resubmitted, nothing else
    assert N <= sim.stats.submits <= N + sim.stats.unanswered + window, (sim.stats.submits, sim.stats.unanswered)
