"""Interception tests (闪测) over the four embedded simulators (CMPP, SGIP, SMGP, SMPP on real TCP), one of
them set to refuse the draft: the report shows which channels would carry the campaign; and the periodic
probe of every channel (FlashProbe) with its alert kind flash_probe."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_COMPLIANCE, Running, start_running
from console_helpers import PASSWORD
from test_admin import staff_client
from test_console_pages import login

from qixin.domain import alerts as rules
from qixin.domain.alerts import Facts, FlashProbeFact, Rule, State
from qixin.services.actor import Actor
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


# -- the periodic 闪测 of every channel (FlashProbe, FlashProbeRole) and the alert kind flash_probe ----------


@pytest.fixture
async def probing(db_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    settings = Settings(
        data_dir=tmp_path, database_url=db_url, sim_receipt_delay=(0.01, 0.05), compliance=TEST_COMPLIANCE,
        alerts_interval=0, flash_probe_interval=0, flash_probe_timeout=5,
    )  # fmt: skip
    r, server, task = await start_running(settings)
    try:
        yield r
    finally:
        for c in r.clients:
            await c.aclose()
        server.should_exit = True
        await task
        await r.runtime.stop()


async def _channels_up(r: Running) -> None:
    manager = r.platform.channels
    deadline = asyncio.get_running_loop().time() + 20
    while not all(name in manager.active and manager.active[name].up for name in CHANNELS):
        assert asyncio.get_running_loop().time() < deadline, "channels not up"
        await asyncio.sleep(0.05)


def _flash_alerts(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in alerts if a["kind"] == "flash_probe"]


async def test_periodic_probe_alerts_on_a_channel_that_stops_delivering_and_resolves(probing: Running) -> None:
    r = probing
    await _channels_up(r)
    sims = r.runtime.simulators
    for sim in sims.values():  # every receipt a delivery, so the outcome is deterministic
        sim._stats_list, sim._cum = ("DELIVRD",), [1.0]
    probe, alerts = r.platform.flash_probe, r.platform.alerts
    assert not probe.running  # interval 0: off
    customer = r.account(balance_li=10_000, price_li=35)
    before = (await customer.get("/v1/account")).json()["balance_li"]

    first = await probe.round()
    assert first is not None
    assert {c["channel"]: c["outcome"] for c in first} == dict.fromkeys(CHANNELS, "delivered")
    assert all(c["latency_ms"] is not None for c in first)
    assert _flash_alerts((await alerts.evaluate_once())[0]) == []
    # the probes are ordinary messages of the platform's own probe account: 7 seeds over 4 channels
    acct = await probe.account()
    rows = await r.platform.db.read(
        lambda tx: tx.all("SELECT status, pin_channel FROM messages WHERE account_id = ?", (acct,))
    )
    assert len(rows) == 7 and {s for s, _ in rows} == {"delivered"} and {c for _, c in rows} == set(CHANNELS)
    assert (await customer.get("/v1/account")).json()["balance_li"] == before  # no customer pays for them

    sims["sim-sgip"].config.submit_error_rate = 1.0  # China Unicom's gateway refuses the probe
    second = {c["channel"]: c for c in await probe.round() or []}
    assert second["sim-sgip"]["outcome"] == "refused" and second["sim-sgip"]["code"] == "SUBMIT_REJECTED"
    assert second["smpp-sim"]["outcome"] == "delivered"
    assert _flash_alerts((await alerts.evaluate_once())[0]) == []  # one failed round: under the threshold (2)

    sims["sim-smgp"].config.receipts = False  # China Telecom's gateway accepts and never sends a receipt
    third = {c["channel"]: c for c in await probe.round() or []}
    assert third["sim-sgip"]["outcome"] == "refused"
    assert third["sim-smgp"]["outcome"] == "no_receipt" and third["sim-smgp"]["no_receipt"] == 1
    fired, _ = await alerts.evaluate_once()
    [alert] = _flash_alerts(fired)  # sgip: 2 rounds in a row; smgp: 1 so far
    assert alert["subject"] == "channel:sim-sgip" and alert["value"] == 2 and alert["title"] == "通道巡检闪测失败"
    assert "SUBMIT_REJECTED" in alert["message"]
    assert _flash_alerts((await alerts.evaluate_once())[0]) == []  # still open: not fired twice

    sims["sim-sgip"].config.submit_error_rate = 0.0
    sims["sim-smgp"].config.receipts = True
    fourth = await probe.round()
    assert {c["channel"]: c["outcome"] for c in fourth or []} == dict.fromkeys(CHANNELS, "delivered")
    fired, resolved = await alerts.evaluate_once()
    assert _flash_alerts(fired) == [] and [a["id"] for a in _flash_alerts(resolved)] == [alert["id"]]

    async with staff_client(r, "ops") as ops:
        out = (await ops.get("/admin/flash-tests/probes")).json()
        by = {c["channel"]: c for c in out["channels"]}
        assert sorted(by) == sorted(CHANNELS)
        assert (by["sim-sgip"]["rounds"], by["sim-sgip"]["delivered_rounds"], by["sim-sgip"]["failures"]) == (4, 2, 0)
        assert by["sim-sgip"]["delivery_rate"] == 50.0 and by["sim-cmpp"]["delivery_rate"] == 100.0
        assert len(out["history"]) == 16
        one = (await ops.get("/admin/flash-tests/probes", params={"channel": "sim-smgp"})).json()
        assert [h["outcome"] for h in one["history"]] == ["delivered", "no_receipt", "delivered", "delivered"]
        assert (await ops.get("/admin/flash-tests/probes", params={"hours": 0})).json()["code"] == "INVALID_REQUEST"
    # the console's channel page shows the same, to ops
    await r.platform.console_users.create_staff(Actor.cli(), "运维", "ops", "13900004101", PASSWORD)
    console = await login(r, "13900004101")
    try:
        page = (await console.get("/staff/channels")).text
        section = page[page.index('id="flash-probes"') :]
        assert "巡检闪测" in section and "sim-sgip" in section and "2/4" in section and "50.0%" in section
    finally:
        await console.aclose()


async def test_the_probe_role_runs_rounds_by_itself(db_url: str, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, database_url=db_url, sim_receipt_delay=(0.01, 0.03), compliance=TEST_COMPLIANCE,
        simulators=("smpp",), alerts_interval=0, flash_probe_interval=0.3, flash_probe_timeout=5,
    )  # fmt: skip
    r, server, task = await start_running(settings)
    try:
        probe = r.platform.flash_probe
        assert probe.running  # started by FlashProbeRole in the embedded runtime
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            out = await probe.report(Actor.cli())
            if len({h["round_id"] for h in out["history"]}) >= 2:
                break
            assert asyncio.get_running_loop().time() < deadline, out
            await asyncio.sleep(0.05)
        assert [c["channel"] for c in out["channels"]] == ["smpp-sim"]
    finally:
        server.should_exit = True
        await task
        await r.runtime.stop()
    assert not probe.running


def test_flash_probe_rule_checks_and_conditions() -> None:
    assert rules.check_rule("flash_probe", "channel", 0, 0, 0, 0) != ""
    assert rules.check_rule("flash_probe", "account", 2, 0, 0, 0) != ""
    assert rules.check_rule("flash_probe", "channel", 2, 0, 0, 0) == ""
    rule = Rule(7, "flash_probe", "channel", threshold=2)
    facts = Facts(0, flash_probes={"a": FlashProbeFact("refused", 2, "X"), "b": FlashProbeFact("no_receipt", 1),
                                   "c": FlashProbeFact("delivered", 0)})  # fmt: skip
    found = rules.evaluate([rule], facts, State())
    assert list(found) == [(7, "channel:a")] and found[(7, "channel:a")].value == 2
