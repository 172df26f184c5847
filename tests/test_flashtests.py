"""Interception tests (闪测) over the four embedded simulators (CMPP, SGIP, SMGP, SMPP on real TCP), one of
them set to refuse the draft: the report shows which channels would carry the campaign."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_COMPLIANCE, Running, start_running
from test_admin import staff_client

from qixin.settings import Settings

CHANNELS = ("sim-cmpp", "sim-sgip", "sim-smgp", "smpp-sim")


@pytest.fixture
async def running4(tmp_path: Path) -> AsyncIterator[Running]:
    settings = Settings(data_dir=tmp_path, sim_receipt_delay=(0.01, 0.05), compliance=TEST_COMPLIANCE)
    r, server, task = await start_running(settings)
    try:
        yield r
    finally:
        for c in r.clients:
            await c.aclose()
        server.should_exit = True
        await task
        await r.runtime.stop()


async def _report(api: Any, test_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        out: dict[str, Any] = (await api.get(f"/v1/flash-tests/{test_id}")).json()
        if out["status"] == "done":
            return out
        assert asyncio.get_running_loop().time() < deadline, out
        await asyncio.sleep(0.05)


async def test_flash_test_over_four_simulators_shows_the_one_that_refuses(running4: Running) -> None:
    r = running4
    manager = r.platform.channels
    deadline = asyncio.get_running_loop().time() + 20
    while not all(name in manager.active and manager.active[name].up for name in CHANNELS):
        assert asyncio.get_running_loop().time() < deadline, "channels not up"
        await asyncio.sleep(0.05)
    sims = r.runtime.simulators
    for sim in sims.values():  # every receipt a delivery, so the report is deterministic
        sim._stats_list, sim._cum = ("DELIVRD",), [1.0]
    sims["sim-sgip"].config.submit_error_rate = 1.0  # China Unicom's gateway refuses the draft
    api = r.account(balance_li=100_000, price_li=35)
    before = (await api.get("/v1/account")).json()

    made = await api.request("POST", "/v1/flash-tests", {"content": "您的会员积分已到账，请查收", "signature": "企信"})
    assert made.status_code == 201, made.text
    test = made.json()
    assert sorted(test["channels"]) == sorted(CHANNELS)
    report = await _report(api, test["id"])
    by_channel = {c["channel"]: c for c in report["channels"]}
    assert sorted(report["carrying_channels"]) == ["sim-cmpp", "sim-smgp", "smpp-sim"]
    sgip = by_channel["sim-sgip"]
    assert sgip["carries"] is False
    assert [(c["carrier"], c["refused"], c["delivered"]) for c in sgip["carriers"]] == [("cucc", 1, 0)]
    assert sgip["carriers"][0]["seeds"][0]["code"] == "SUBMIT_REJECTED"  # pinned: no failover to another channel
    cmpp = by_channel["sim-cmpp"]["carriers"]
    assert [(c["carrier"], c["delivered"]) for c in cmpp] == [("cmcc", 1)] and cmpp[0]["latency_ms"] is not None
    smpp = by_channel["smpp-sim"]["carriers"]  # the fallback channel carries every carrier: all four seeds
    assert sorted(c["carrier"] for c in smpp) == ["cbn", "cmcc", "ctcc", "cucc"] and all(c["carries"] for c in smpp)
    assert all("****" in s["number"] for c in smpp for s in c["seeds"])  # seeds masked to customers
    # charged as ordinary messages to the seeds: 7 messages at 35 厘, the one refused by the channel refunded
    after = (await api.get("/v1/account")).json()
    assert before["balance_li"] - after["balance_li"] == 6 * 35

    async with staff_client(r, "admin") as admin:
        staff_view = (await admin.get(f"/admin/flash-tests/{test['id']}")).json()
        assert "13800138000" in str(staff_view)  # admin may read numbers
        added = await admin.post("/admin/flash-tests/seeds", json={"number": "13900000001"})
        assert added.json() == {"number": "13900000001", "carrier": "cmcc"}
        assert (await admin.get("/admin/flash-tests/seeds")).json()["seeds"] == [
            {"number": "13900000001", "carrier": "cmcc"}
        ]
    other = r.account(name="别人")
    assert (await other.get(f"/v1/flash-tests/{test['id']}")).json()["code"] == "NOT_FOUND"
