"""The embedded default end to end: one simulator per carrier, each over its own protocol on real TCP.

China Mobile → CMPP 3.0, China Unicom → SGIP 1.2, China Telecom → SMGP 3.0, China Broadnet (and
anything else) → SMPP 3.4. Receipts come back through each protocol; an MO reply sent by a simulator
reaches the account that owns the extension code, on its webhook.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import TEST_COMPLIANCE, Receiver, Running, start_running

from qixin.services.channels import extension_of
from qixin.settings import Settings

NUMBERS = {"13800138000": "sim-cmpp", "18612345678": "sim-sgip", "18912345678": "sim-smgp", "19212345678": "smpp-sim"}


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


async def _until(pred, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        assert asyncio.get_running_loop().time() < deadline, "not in time"
        await asyncio.sleep(0.05)


async def test_each_carrier_through_its_protocol(running4: Running, receiver: tuple[Receiver, str]) -> None:
    r = running4
    rec, url = receiver
    events = rec.events
    api = r.account(balance_li=100_000, callback_url=url)
    other = r.account(name="别的客户", callback_url=url + "/other")
    rec.secrets[api.app_key] = api.secret
    rec.secrets[other.app_key] = other.secret
    manager = r.platform.channels
    await _until(lambda: all(manager.active[name].up for name in NUMBERS.values()))

    data = (await api.send(to=list(NUMBERS), content="三网合一测试")).json()
    assert data["accepted_count"] == 4, data
    await r.wait_final(4)
    for m in data["accepted"]:
        got = (await api.get(f"/v1/sms/{m['id']}")).json()
        assert got["channel"] == NUMBERS[got["to"]], got
        assert got["status"] in ("delivered", "undelivered", "expired", "rejected"), got
        assert got["carrier_stat"], got
    for name in NUMBERS.values():
        assert r.runtime.simulators[name].stats.submits >= 1, name
    await _until(lambda: len([e for e in events if e["type"] == "receipt"]) >= 4)

    # an MO reply over CMPP, to the service code + the account's extension, reaches that account only
    ext = r.platform.db.write_sync(lambda tx: extension_of(tx, api.account_id))
    await r.runtime.simulators["sim-cmpp"].send_mo("13800138000", "1065800" + ext, "收到，谢谢")
    await _until(lambda: any(e["type"] == "mo" for e in events))
    mo = next(e for e in events if e["type"] == "mo")
    assert mo["from"] == "13800138000" and mo["content"] == "收到，谢谢" and mo["to"] == "1065800" + ext
    rows = await r.platform.db.read(lambda tx: tx.all("SELECT account_id FROM mo_messages"))
    assert rows == [(api.account_id,)] and other.account_id != api.account_id
    assert rec.bad_signatures == 0


async def test_ported_number_is_learned_from_a_receipt_and_routed_to_its_new_carrier(running4: Running) -> None:
    """携号转网: 138… is a China Mobile prefix, but the number moved to China Telecom. The CMPP gateway's
    receipt says so (stat PT:CTCC); the next message to it goes through the Telecom channel."""
    r = running4
    r.runtime.simulators["sim-cmpp"].config.ported["13800138000"] = "ctcc"
    api = r.account(balance_li=100_000)
    manager = r.platform.channels
    await _until(lambda: all(manager.active[name].up for name in NUMBERS.values()))
    first = (await api.send(to="13800138000", content="第一条")).json()["accepted"][0]["id"]
    await r.wait_final(1)
    got = (await api.get(f"/v1/sms/{first}")).json()
    assert got["channel"] == "sim-cmpp" and got["carrier_stat"] == "PT:CTCC" and got["status"] == "undelivered"
    learned = await r.platform.db.read(lambda tx: tx.all("SELECT number, carrier FROM ported_numbers"))
    assert learned == [("13800138000", "ctcc")]
    r.platform.accept.ported.invalidate()
    second = (await api.send(to="13800138000", content="第二条")).json()["accepted"][0]["id"]
    await r.wait_final(2)
    got = (await api.get(f"/v1/sms/{second}")).json()
    assert got["carrier"] == "ctcc" and got["channel"] == "sim-smgp", got
