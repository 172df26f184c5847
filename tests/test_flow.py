"""Per-account flow control: TPS and daily caps (parts), set by staff, applied inside accept.

The counters: exact on a controlled clock (memory and Redis, the same algorithm); the Redis variant
shared by two platform instances; over real HTTP: ACCOUNT_THROTTLED / DAILY_CAP_EXCEEDED (429),
refusals neither billed nor stored; staff set the caps by the admin API and by ``qixin account set``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from conftest import TEST_COMPLIANCE, Running, need, redis_available
from typer.testing import CliRunner

from qixin.app import Core, build
from qixin.cli import app as cli_app
from qixin.errors import QxError
from qixin.services.accounts import create_account
from qixin.services.actor import Actor
from qixin.services.flow import Caps, FlowGate, shanghai_day
from qixin.services.staff import create_staff
from qixin.settings import Settings

REDIS = "redis://127.0.0.1:6379/0"
T0 = 1_764_547_200_000  # 2025-12-01 00:00 UTC = 08:00 Shanghai


class Clock:
    def __init__(self, at: int = T0) -> None:
        self.at = at

    def __call__(self) -> int:
        return self.at


def gates(clock: Clock) -> list[FlowGate]:
    out = [FlowGate(clock=clock)]
    if redis_available(REDIS) is None:
        out.append(FlowGate(REDIS, f"qixin-flow-test-{uuid.uuid4().hex}", clock=clock))
    return out


async def codes(gate: FlowGate, caps: Caps, n: int, times: int, scope: str = "account:1") -> list[str]:
    out = []
    for _ in range(times):
        try:
            await gate.take([(scope, caps)], n)
            out.append("ok")
        except QxError as e:
            out.append(e.code)
    return out


async def test_tps_cap_admits_one_second_then_refills_at_the_rate() -> None:
    clock = Clock()
    for gate in gates(clock):
        caps = Caps(tps=5)
        assert await codes(gate, caps, 1, 7) == ["ok"] * 5 + ["ACCOUNT_THROTTLED"] * 2
        try:
            await gate.take([("account:1", caps)], 1)
        except QxError as e:
            assert 0 < e.detail["retry_after_ms"] <= 200
        clock.at += 200  # one part's worth of time
        assert await codes(gate, caps, 1, 2) == ["ok", "ACCOUNT_THROTTLED"]
        clock.at += 1000  # a full second: five more
        assert await codes(gate, caps, 1, 6) == ["ok"] * 5 + ["ACCOUNT_THROTTLED"]
        assert await codes(gate, caps, 1, 1, scope="account:2") == ["ok"]  # another account: its own bucket
        clock.at += 10_000
        await gate.close()


async def test_oversized_request_is_admitted_when_idle_and_paid_off_before_the_next() -> None:
    clock = Clock()
    for gate in gates(clock):
        caps = Caps(tps=10)
        assert await codes(gate, caps, 30, 2) == ["ok", "ACCOUNT_THROTTLED"]  # 3 s of parts at once, then none
        clock.at += 2_000  # 1 s of debt left: one more part would make 1.1 s
        assert await codes(gate, caps, 1, 1) == ["ACCOUNT_THROTTLED"]
        clock.at += 100
        assert await codes(gate, caps, 1, 2) == ["ok", "ACCOUNT_THROTTLED"]
        clock.at += 10_000
        assert await codes(gate, caps, 30, 1) == ["ok"]
        clock.at += 60_000
        await gate.close()


async def test_daily_cap_counts_parts_per_shanghai_day_and_releases_give_back() -> None:
    midnight_utc = T0 + 16 * 3_600_000 - 1  # 23:59:59.999 Shanghai
    assert shanghai_day(midnight_utc) + 1 == shanghai_day(midnight_utc + 1)
    clock = Clock(midnight_utc - 60_000)
    for gate in gates(clock):
        caps = Caps(daily=10)
        assert await codes(gate, caps, 4, 3) == ["ok", "ok", "DAILY_CAP_EXCEEDED"]
        ticket = await gate.take([("account:1", caps)], 2)  # 10 of 10
        assert await codes(gate, caps, 1, 1) == ["DAILY_CAP_EXCEEDED"]
        await ticket.release()  # not committed: the 2 parts come back
        assert await codes(gate, caps, 2, 2) == ["ok", "DAILY_CAP_EXCEEDED"]
        clock.at = midnight_utc + 1  # 00:00 Shanghai: a new day
        assert await codes(gate, caps, 10, 2) == ["ok", "DAILY_CAP_EXCEEDED"]
        clock.at = midnight_utc - 60_000
        await gate.close()


async def test_two_scopes_take_both_or_neither() -> None:
    gate = FlowGate(clock=Clock())
    account, conn = ("account:1", Caps(daily=100)), ("conn:7", Caps(daily=3))
    await gate.take([account, conn], 3)
    with pytest.raises(QxError, match="DAILY_CAP_EXCEEDED"):
        await gate.take([account, conn], 1)
    await gate.take([account], 97)  # the refused take gave the account's part back
    with pytest.raises(QxError, match="DAILY_CAP_EXCEEDED"):
        await gate.take([account], 1)


async def test_redis_counters_are_shared_by_two_platform_instances(tmp_path: Path) -> None:
    need(redis_available(REDIS))
    settings = Settings(
        data_dir=tmp_path, redis_url=REDIS, flow_prefix=f"qixin-flow-test-{uuid.uuid4().hex}",
        compliance=TEST_COMPLIANCE,
    )  # fmt: skip
    one, two = build(settings), build(settings)
    cores = [Core(one), Core(two)]
    for c in cores:
        await c.start()
    try:
        acct = one.db.write_sync(lambda tx: create_account(tx, "流控", "企信", 100_000, 10, box=one.directory.box))
        await one.flow.set(Actor.cli(), acct["account_id"], tps=2, daily_cap=5)
        key_one = await one.directory.key(acct["app_key"])
        key_two = await two.directory.key(acct["app_key"])
        assert key_one is not None and key_two is not None

        def body(*numbers: str) -> dict:  # type: ignore[type-arg]
            return {"to": list(numbers), "content": "会议改到周五下午三点。", "signature": "企信"}

        first = await one.accept.accept(key_one, body("13800138001", "13800138002"), b"1")
        assert first["accepted_count"] == 2  # both parts of this second, taken through instance one
        with pytest.raises(QxError) as refused:
            await two.accept.accept(key_two, body("13800138003"), b"2")
        assert refused.value.code == "ACCOUNT_THROTTLED" and refused.value.status == 429
        n = await two.db.read(lambda tx: tx.one("SELECT COUNT(*) FROM messages")[0])
        assert n == 2  # the refusal wrote nothing
    finally:
        for c in reversed(cores):
            await c.stop()
        await one.flow.gate.close()
        await two.flow.gate.close()


async def test_extra_scope_caps_a_direct_connection_inside_accept(running: Running) -> None:
    """A customer port passes its direct connection's caps; the account itself has none."""
    api = running.account(balance_li=10_000, price_li=10)
    key = await running.platform.directory.key(api.app_key)
    assert key is not None
    conn = [("conn:42", Caps(daily=2))]

    def body(number: str) -> dict:  # type: ignore[type-arg]
        return {"to": number, "content": "会议改到周五下午三点。", "signature": "企信"}

    await running.platform.accept.accept(key, body("13800138001"), b"", extra_caps=conn)
    await running.platform.accept.accept(key, body("13800138002"), b"", extra_caps=conn)
    with pytest.raises(QxError, match="DAILY_CAP_EXCEEDED"):
        await running.platform.accept.accept(key, body("13800138003"), b"", extra_caps=conn)
    await running.platform.accept.accept(key, body("13800138003"), b"")  # over HTTP (no connection): accepted


def staff_client(r: Running) -> httpx.AsyncClient:
    out = r.platform.db.write_sync(lambda tx: create_staff(tx, f"flow-admin-{uuid.uuid4().hex[:6]}", "admin"))
    return httpx.AsyncClient(base_url=r.base, headers={"Authorization": f"Bearer {out['token']}"})


async def test_http_send_is_refused_over_the_caps_and_refusals_change_nothing(running: Running) -> None:
    api = running.account(balance_li=100_000, price_li=10)
    async with staff_client(running) as admin:
        resp = await admin.put(f"/admin/accounts/{api.account_id}/flow", json={"tps": 3, "daily_cap": 8})
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"account_id": api.account_id, "tps": 3, "daily_cap": 8}
        assert (await admin.get(f"/admin/accounts/{api.account_id}/flow")).json()["tps"] == 3
        bad = await admin.put(f"/admin/accounts/{api.account_id}/flow", json={"tps": -1})
        assert bad.status_code == 400 and bad.json()["code"] == "INVALID_REQUEST"
        missing = await admin.put("/admin/accounts/999999/flow", json={"tps": 1})
        assert missing.status_code == 404

    statuses = []
    for i in range(6):
        r = await api.send(to=f"1380013{8000 + i}", content="会议改到周五下午三点。")
        statuses.append((r.status_code, r.json().get("code")))
    throttled_resp = r if r.status_code == 429 else None
    ok = [s for s in statuses if s[0] == 200]
    throttled = [s for s in statuses if s == (429, "ACCOUNT_THROTTLED")]
    assert len(ok) + len(throttled) == 6 and 3 <= len(ok) <= 4 and throttled, statuses  # refills 1 per 333 ms
    sent = len(ok)
    if throttled_resp is not None:  # the last one was refused: HTTP clients get Retry-After
        assert throttled_resp.headers["retry-after"] == "1" and throttled_resp.json()["retry_after_ms"] > 0

    async with staff_client(running) as admin:  # no TPS cap; a daily cap just above what was sent
        await admin.put(f"/admin/accounts/{api.account_id}/flow", json={"tps": 0, "daily_cap": sent + 2})
    long_text = "长" * 70  # two parts
    r = await api.send(to=["13900139000", "13900139001"], content=long_text)  # 4 parts > 2 left
    assert r.status_code == 429 and r.json()["code"] == "DAILY_CAP_EXCEEDED", r.text
    r = await api.send(to="13900139000", content=long_text)  # exactly the 2 left
    assert r.status_code == 200, r.text
    r = await api.send(to="13900139001", content="会议改到周五下午三点。")
    assert r.status_code == 429 and r.json()["code"] == "DAILY_CAP_EXCEEDED"

    def counts(tx):  # type: ignore[no-untyped-def]
        return tx.one("SELECT COUNT(*), SUM(fee_li) FROM messages WHERE account_id = ?", (api.account_id,))

    n, fees = await running.platform.db.read(counts)
    assert n == sent + 1 and fees == sent * 10 + 20  # refused requests: no message, no charge


def test_cli_account_set_shows_and_changes_the_caps(tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "200"})
    d = str(tmp_path)
    made = runner.invoke(cli_app, ["account", "create", "--name", "流控客户", "--signature", "企信", "--data-dir", d,
                                   "--json"])  # fmt: skip
    assert made.exit_code == 0, made.output
    account = str(json.loads(made.output)["account_id"])
    out = runner.invoke(cli_app, ["account", "set", account, "--tps", "50", "--daily-cap", "10000", "--data-dir", d,
                                  "--json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == {"account_id": int(account), "tps": 50, "daily_cap": 10000}
    out = runner.invoke(cli_app, ["account", "set", account, "--daily-cap", "0", "--data-dir", d])
    assert out.exit_code == 0 and "每秒上限 50" in out.output and "每日上限 不限" in out.output, out.output
    bad = runner.invoke(cli_app, ["account", "set", "424242", "--tps", "5", "--data-dir", d])
    assert bad.exit_code == 2 and "NOT_FOUND" in bad.output
