"""Channels as data: routing rules, live changes without restart, failover, MO by extension code."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx
import pytest
from conftest import Receiver, Running
from test_admin import staff_client

from qixin.gateway.simulators.smpp import SimulatorConfig, SmppSimulator
from qixin.services.channels import Channel, create_channel, extension_of
from qixin.services.dispatch import Outgoing, Router
from qixin.store.db import Tx


@dataclass
class FakeChannel:
    """A stand-in with what the router reads (routing is pure: no network needed here)."""

    channel: Channel
    up: bool = True
    failing: bool = False
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = self.channel.name

    def carries(self, carrier: str, msg_type: str) -> bool:
        c = self.channel
        return (not c.carriers or carrier in c.carriers) and (not c.msg_types or msg_type in c.msg_types)


def ch(
    name: str, carriers: str = "", types: str = "", accounts: str = "", priority: int = 100, weight: int = 1
) -> Channel:
    split = lambda t: frozenset(x for x in t.split(",") if x)  # noqa: E731
    return Channel(
        id=hash(name) & 0xFFFF, name=name, protocol="smpp", host="127.0.0.1", port=1, username="u", secret="s",
        service_code="1069", options={}, tps=0, window=16, connections=1, carriers=split(carriers),
        msg_types=split(types), accounts=frozenset(int(a) for a in split(accounts)), priority=priority,
        weight=weight, enabled=True, embedded=False, version=1,
    )  # fmt: skip


def msg(carrier: str = "cmcc", mtype: str = "notification", account: int = 1) -> Outgoing:
    return Outgoing(1, "13800138000", carrier, "x", mtype, account)


def test_router_rules() -> None:
    mobile = FakeChannel(ch("mobile", carriers="cmcc", priority=100))
    fallback = FakeChannel(ch("fallback", priority=200))
    marketing = FakeChannel(ch("mkt", carriers="cmcc", types="marketing", priority=50))
    vip = FakeChannel(ch("vip", accounts="7", priority=300))
    r = Router([mobile, fallback, marketing, vip])  # type: ignore[list-item]
    assert r.pick(msg()).name == "mobile"  # type: ignore[union-attr]
    assert r.pick(msg(carrier="ctcc")).name == "fallback"  # type: ignore[union-attr]
    assert r.pick(msg(mtype="marketing")).name == "mkt"  # type: ignore[union-attr]
    assert r.pick(msg(account=7)).name == "vip"  # dedicated wins over priority  # type: ignore[union-attr]
    mobile.up = False
    assert r.pick(msg()).name == "fallback"  # down channels are skipped  # type: ignore[union-attr]
    mobile.up, mobile.failing = True, True
    assert r.pick(msg()).name == "fallback"  # failing ones too  # type: ignore[union-attr]
    fallback.up = False
    assert r.pick(msg()).name == "mobile"  # failing beats down  # type: ignore[union-attr]
    assert r.pick(msg(), exclude=["mobile", "fallback"]) is None
    assert Router([FakeChannel(ch("only-ctcc", carriers="ctcc"))]).pick(msg()) is None  # type: ignore[list-item]


def test_router_weights() -> None:
    a, b = FakeChannel(ch("a", weight=3)), FakeChannel(ch("b", weight=1))
    r = Router([a, b])  # type: ignore[list-item]
    picks = [r.pick(msg()).name for _ in range(4000)]  # type: ignore[union-attr]
    assert 0.70 < picks.count("a") / len(picks) < 0.80


async def _wait(cond, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_dedicated_channel_added_live_then_disabled(running: Running) -> None:
    sim = SmppSimulator("127.0.0.1", 0, SimulatorConfig(receipt_delay=(0.01, 0.02)))
    port = await sim.start()
    try:
        vip = running.account(name="专属客户")
        other = running.account(name="普通客户")
        async with staff_client(running, "ops") as ops:
            resp = await ops.post("/admin/channels", json={
                "name": "vip-line", "protocol": "smpp", "host": "127.0.0.1", "port": port, "username": "vip",
                "secret": "pw", "service_code": "1065", "accounts": [vip.account_id], "window": 32,
            })  # fmt: skip
            assert resp.status_code == 201, resp.text
            cid = resp.json()["id"]
            health = (await ops.get("/admin/channels")).json()["channels"]
            assert {c["name"] for c in health} >= {"vip-line", "smpp-sim"}
            await _wait(lambda: _up(ops, "vip-line"))
            a = (await vip.send(to="13800138000", content="专属通道")).json()["accepted"][0]["id"]
            b = (await other.send(to="13800138001", content="共享通道")).json()["accepted"][0]["id"]
            await running.wait_final(2)
            assert (await vip.get(f"/v1/sms/{a}")).json()["channel"] == "vip-line"
            assert (await other.get(f"/v1/sms/{b}")).json()["channel"] == "smpp-sim"
            assert sim.stats.submits == 1
            # the source address carries the account's extension code
            ext = running.platform.db.write_sync(lambda tx: extension_of(tx, vip.account_id))
            assert ext
            # disabled: the account's messages fall back to the shared channel
            resp = await ops.patch(f"/admin/channels/{cid}", json={"enabled": False})
            assert resp.status_code == 200 and resp.json()["version"] == 2
            c = (await vip.send(to="13800138002", content="停用后")).json()["accepted"][0]["id"]
            await running.wait_final(3)
            assert (await vip.get(f"/v1/sms/{c}")).json()["channel"] == "smpp-sim"
            bad = await ops.post("/admin/channels", json={"name": "x", "protocol": "pigeon", "host": "h", "port": 1,
                                                            "username": "u", "secret": "s"})  # fmt: skip
            assert bad.status_code == 400 and bad.json()["code"] == "INVALID_REQUEST"
    finally:
        await sim.stop()


async def _up(client: httpx.AsyncClient, name: str) -> bool:
    chans = (await client.get("/admin/channels")).json()["channels"]
    return any(c["name"] == name and c.get("up") for c in chans)


async def test_failover_to_another_channel_when_one_refuses(running: Running) -> None:
    broken = SmppSimulator("127.0.0.1", 0, SimulatorConfig(submit_error_rate=1.0))
    port = await broken.start()
    try:
        running.platform.db.write_sync(
            lambda tx: create_channel(tx, {"name": "broken", "protocol": "smpp", "host": "127.0.0.1", "port": port,
                                           "username": "u", "secret": "s", "priority": 10})
        )  # fmt: skip
        await running.platform.channels.sync()
        assert running.platform.channels.active["broken"]
        await _wait(lambda: _true(running.platform.channels.active["broken"].up))
        api = running.account()
        data = (await api.send(to=[f"1390000{i:04d}" for i in range(20)], content="故障转移")).json()
        await running.wait_final(20)
        for m in data["accepted"]:
            got = (await api.get(f"/v1/sms/{m['id']}")).json()
            assert got["channel"] == "smpp-sim" and got["status"] != "failed"
        assert broken.stats.submits >= 1
        assert running.platform.dispatcher.stats["rerouted"] >= 1  # type: ignore[union-attr]
    finally:
        await broken.stop()


async def _true(value: bool) -> bool:
    return value


async def test_mo_reply_reaches_the_right_account_by_extension(
    running: Running, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    got = rec.events
    a = running.account(name="甲", callback_url=url)
    b = running.account(name="乙", callback_url=url)
    rec.secrets.update({a.app_key: a.secret, b.app_key: b.secret})
    ext_b = running.platform.db.write_sync(lambda tx: extension_of(tx, b.account_id))
    sim = running.runtime.simulator
    await _wait(lambda: _true(running.platform.channels.active["smpp-sim"].up))
    await sim.send_mo("8613900001111", "10690000" + ext_b, "TD")
    await sim.send_mo("8613900002222", "10690000" + "99999999", "谁的？")
    await _wait(lambda: _true(running.platform.uplink.stats["received"] >= 2))
    rows = await running.platform.db.read(
        lambda tx: tx.all("SELECT account_id, source, destination, content FROM mo_messages ORDER BY id")
    )
    assert rows[0][0] == b.account_id and rows[0][1] == "13900001111" and rows[0][3] == "TD"
    assert rows[1][0] is None  # no extension matched: kept for staff, not pushed
    await _wait(lambda: _true(len(got) >= 1))
    assert got[0]["type"] == "mo" and got[0]["from"] == "13900001111" and got[0]["content"] == "TD"
    assert a.account_id != b.account_id and rec.bad_signatures == 0


async def test_staff_import_ported_numbers(running: Running) -> None:
    async with staff_client(running, "ops") as ops:
        resp = await ops.post("/admin/ported-numbers", json={"numbers": [{"number": "13800138000", "carrier": "ctcc"}]})
        assert resp.status_code == 200 and resp.json() == {"imported": 1}
        bad = await ops.post("/admin/ported-numbers", json={"numbers": [{"number": "138", "carrier": "ctcc"}]})
        assert bad.status_code == 400 and bad.json()["code"] == "INVALID_REQUEST"
        listed = (await ops.get("/admin/ported-numbers")).json()["ported_numbers"]
        assert listed[0]["number"] == "138****8000" and listed[0]["carrier"] == "ctcc"  # masked in lists
    api = running.account()
    data = (await api.send(to="13800138000", content="转网后")).json()
    assert (await api.get(f"/v1/sms/{data['accepted'][0]['id']}")).json()["carrier"] == "ctcc"


async def test_tps_cap_and_several_connections(running: Running) -> None:
    sim = SmppSimulator("127.0.0.1", 0, SimulatorConfig(receipt_delay=(0.01, 0.02)))
    port = await sim.start()
    try:
        running.platform.db.write_sync(
            lambda tx: create_channel(tx, {"name": "paced", "protocol": "smpp", "host": "127.0.0.1", "port": port,
                                           "username": "u", "secret": "s", "priority": 10, "tps": 50,
                                           "connections": 2})
        )  # fmt: skip
        await running.platform.channels.sync()
        paced = running.platform.channels.active["paced"]
        await _wait(lambda: _true(paced.bound_count == 2))
        assert sim.stats.binds >= 2
        api = running.account(balance_li=1_000_000)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await api.send(to=[f"1370000{i:04d}" for i in range(150)], content="限速")
        await running.wait_final(150)
        elapsed = loop.time() - start
        assert sim.stats.submits == 150
        assert elapsed >= 1.9, elapsed  # a full bucket of 50 at once, then 100 more at 50/s: 2 s at least
        assert paced.health()["submitted"] == 150
    finally:
        await sim.stop()


async def test_channel_secrets_are_write_only_in_api_and_audit(running: Running) -> None:
    """Neither the secret nor secret-like options (SGIP's smg_password …) come back or reach the audit."""
    async with staff_client(running, "ops") as ops, staff_client(running, "admin") as admin:
        resp = await ops.post("/admin/channels", json={
            "name": "sgip-line", "protocol": "sgip", "host": "127.0.0.1", "port": 1, "username": "sp",
            "secret": "bind-pw-1", "enabled": False,
            "options": {"node_id": 3020012345, "smg_login_name": "smg", "smg_password": "smg-pw-1", "api_token": "t-1"},
        })  # fmt: skip
        assert resp.status_code == 201, resp.text
        created = resp.json()
        assert created["options"] == {"node_id": 3020012345, "smg_login_name": "smg"}
        assert created["secret_options"] == ["api_token", "smg_password"]
        resp = await ops.patch(
            f"/admin/channels/{created['id']}", json={"options": {"node_id": 1, "smg_password": "smg-pw-2"}}
        )
        assert resp.status_code == 200 and resp.json()["options"] == {"node_id": 1}
        listed = (await ops.get("/admin/channels")).text
        audit = (await admin.get("/admin/audit")).text
        for text in (resp.text, listed, audit):
            for secret in ("bind-pw-1", "smg-pw-1", "smg-pw-2", "t-1"):
                assert secret not in text
        assert "channel.update" in audit and "sgip-line" in listed
        rows = running.platform.db.read_sync(lambda tx: tx.all("SELECT detail FROM audit_log"))
        assert rows and not any(s in str(r[0]) for r in rows for s in ("bind-pw", "smg-pw", "t-1"))
    # the connector still gets them
    stored = running.platform.db.read_sync(lambda tx: tx.one("SELECT secret, options FROM channels WHERE name = ?",
                                                             ("sgip-line",)))  # fmt: skip
    assert stored[0] == "bind-pw-1" and "smg-pw-2" in stored[1]


def test_embedded_channel_created_by_another_process_since_our_look_is_updated(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two dispatchers start at once: both look for the simulator's channel row and find none; the other
    one inserts and commits before this one's insert. This one must take the row over, not stop with
    CONFLICT (found by the PostgreSQL roles crash test on a loaded machine: a dispatcher exited)."""
    from qixin.errors import QxError
    from qixin.services import channels
    from qixin.store.db import Database
    from qixin.store.migrate import migrate

    migrate(db_url)
    db = Database(db_url, writers=1)
    values = {"name": "smpp-sim", "protocol": "smpp", "host": "127.0.0.1", "port": 2000, "username": "u",
              "secret": "s", "service_code": "10690000", "carriers": "", "priority": 200, "options": {}}  # fmt: skip
    try:
        db.write_sync(lambda tx: channels.upsert_embedded_channel(tx, values))  # the other process's row
        real, looks = channels.find_channel, []

        def first_look_misses(tx: Tx, ref: str) -> Channel:
            looks.append(ref)
            if len(looks) == 1:
                raise QxError("NOT_FOUND")
            return real(tx, ref)

        monkeypatch.setattr(channels, "find_channel", first_look_misses)
        db.write_sync(lambda tx: channels.upsert_embedded_channel(tx, values | {"port": 3000}))
        monkeypatch.setattr(channels, "find_channel", real)
        row = db.read_sync(lambda tx: channels.find_channel(tx, "smpp-sim"))
        assert (row.port, row.embedded, len(looks)) == (3000, True, 2)
    finally:
        db.close()
