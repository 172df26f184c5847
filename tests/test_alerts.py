"""Staff alerts (services/alerts.py): each rule fires and resolves against a running platform on real
loopback TCP; notices reach a real staff webhook receiver, a real SMTP sink and the platform's own send
path (SMS to on-call numbers); acknowledgements and rule changes are audited.

The evaluation round is called with an injected clock (``evaluate_once(now)``) so a rule's duration is
reached without waiting; the facts themselves are real (simulator stopped, receipts withheld, …)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from conftest import TEST_COMPLIANCE, Running, free_port, start_running
from conftest import MailInbox as Inbox
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from qixin.domain import alerts as rules
from qixin.domain.alerts import ChannelFact, Facts, Rule, State
from qixin.gateway.simulators.smpp import SimulatorConfig, SmppSimulator
from qixin.services.actor import Actor
from qixin.services.staff import create_staff
from qixin.settings import Settings
from qixin.store import reads
from qixin.store.db import now_ms

OPS_APP_KEY = "qxalertsops0001"
ON_CALL = ("13900139000", "13900139001")


# -- the pure rules ---------------------------------------------------------------------------------------


def test_rules_hold_for_their_duration_then_fire_and_stop_firing() -> None:
    down = Rule(1, "channel_down", "channel", for_seconds=60)
    stopped = Rule(2, "receipts_stopped", "channel", for_seconds=600)
    rate = Rule(3, "success_rate", "account", threshold=80, window_seconds=3600, min_messages=10)
    lag = Rule(4, "queue_lag", "platform", threshold=300)
    dead = Rule(5, "webhook_dead_letters", "account", threshold=2, window_seconds=60)
    low = Rule(6, "balance_low", "account", threshold=10_000)
    all_rules = [down, stopped, rate, lag, dead, low]
    st = State()
    t0 = 1_700_000_000_000

    def run(t: int, up: bool = True, sub: int = 0, rec: int = 0, **kw: Any) -> set[tuple[str, str]]:
        facts = Facts(t, {"a": ChannelFact(up, sub, rec)}, **kw)
        return {(f.kind, f.subject) for f in rules.evaluate(all_rules, facts, st).values()}

    assert run(t0, up=False) == set()
    assert run(t0 + 59_000, up=False) == set()
    assert run(t0 + 60_000, up=False) == {("channel_down", "channel:a")}
    assert run(t0 + 61_000) == set()  # back up: the condition is gone, so is its start
    assert run(t0 + 62_000, up=False) == set()
    # receipts stopping: submits with no receipt since t1 for 600 s
    t1 = t0 + 100_000
    assert run(t1, sub=5, rec=5) == set()
    assert run(t1 + 1000, sub=9, rec=5) == set()
    assert run(t1 + 600_999, sub=12, rec=5) == set()
    assert run(t1 + 601_000, sub=12, rec=5) == {("receipts_stopped", "channel:a")}
    assert run(t1 + 602_000, sub=12, rec=6) == set()  # a receipt came
    assert run(t1 + 603_000, sub=2, rec=0) == set()  # counters restarted
    # success rate: below the threshold with enough finished messages, per account
    rates = {3: {"account:7": (7, 10), "account:8": (8, 10), "account:9": (0, 9)}}
    assert run(t1 + 604_000, sub=2, rates=rates) == {("success_rate", "account:7")}
    assert run(t1 + 605_000, sub=2, queue_lag_seconds=301.0) == {("queue_lag", "platform")}
    assert run(t1 + 606_000, sub=2, dead_letters={5: {"account:7": 2, "account:8": 1}}) == {
        ("webhook_dead_letters", "account:7")
    }
    assert run(t1 + 607_000, sub=2, balances={"account:7": 9_999, "account:8": 10_000}) == {
        ("balance_low", "account:7")
    }


def test_rule_values_are_checked() -> None:
    assert rules.check_rule("success_rate", "account", 80, 0, 3600, 10) == ""
    assert rules.check_rule("success_rate", "account", 0, 0, 3600, 10) != ""
    assert rules.check_rule("success_rate", "platform", 80, 0, 3600, 10) != ""
    assert rules.check_rule("nope", "account", 1, 0, 0, 0) != ""
    assert rules.check_rule("balance_low", "account", -1, 0, 0, 0) != ""
    for kind, scope, *values in rules.DEFAULT_RULES:
        assert rules.check_rule(kind, scope, *values) == "", kind


# -- a running platform with its staff targets ---------------------------------------------------------------


class StaffHook:
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.fail = 0  # answer this many more posts with 503 (not recorded)

    async def handle(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        if self.fail > 0:
            self.fail -= 1
            return Response(b"busy", status_code=503)
        self.posts.append(body)
        return Response(b"ok")


@pytest.fixture
def inbox(mail_sink: tuple[int, Inbox]) -> tuple[int, Inbox]:
    return mail_sink


@pytest.fixture
async def staff_hook() -> AsyncIterator[tuple[StaffHook, str]]:
    hook = StaffHook()
    port = free_port()
    app = Starlette(routes=[Route("/alerts", hook.handle, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield hook, f"http://127.0.0.1:{port}/alerts"
    server.should_exit = True
    await task


@pytest.fixture
async def plat(
    db_url: str, tmp_path: Path, inbox: tuple[int, Inbox], staff_hook: tuple[StaffHook, str]
) -> AsyncIterator[Running]:
    settings = Settings(
        data_dir=tmp_path, database_url=db_url, sim_receipt_delay=(0.01, 0.03), compliance=TEST_COMPLIANCE,
        simulators=("smpp",),
        alerts_interval=0, alert_emails=("oncall@qixin.test",), alert_webhook_url=staff_hook[1],
        alert_sms_numbers=ON_CALL, alert_sms_app_key=OPS_APP_KEY, smtp_host="127.0.0.1", smtp_port=inbox[0],
        webhook_backoff=(0,),
    )  # fmt: skip
    r, server, task = await start_running(settings)
    try:
        await until(lambda: r.platform.channels.active["smpp-sim"].up)
        yield r
    finally:
        for c in r.clients:
            await c.aclose()
        server.should_exit = True
        await task
        await r.runtime.stop()


async def until(pred: Callable[[], Any], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def until_async(pred: Callable[[], Any], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await pred():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def rule_id(r: Running, kind: str, scope: str) -> int:
    for rule in await r.platform.alerts.rules(Actor.cli()):
        if rule["kind"] == kind and rule["scope"] == scope:
            return int(rule["id"])
    raise AssertionError(kind)


def kinds(alerts: list[dict[str, Any]], kind: str) -> list[str]:
    return [a["subject"] for a in alerts if a["kind"] == kind]


async def count_messages(r: Running, account_id: int) -> int:
    row = await r.platform.db.read(
        lambda tx: tx.one("SELECT COUNT(*) FROM messages WHERE account_id = ?", (account_id,))
    )
    return int(row[0])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # channel behaviour: one database is enough
async def test_channel_down_fires_notifies_staff_everywhere_and_resolves(
    plat: Running, inbox: tuple[int, Inbox], staff_hook: tuple[StaffHook, str]
) -> None:
    r, (_, box), (hook, _) = plat, inbox, staff_hook
    ops = r.account(name="平台运维")  # the platform's own account: alert SMS go out through it
    await r.platform.db.write(lambda tx: tx.execute("UPDATE api_keys SET app_key = ? WHERE account_id = ?",
                                                    (OPS_APP_KEY, ops.account_id)))  # fmt: skip
    alerts = r.platform.alerts
    await alerts.set_rule(Actor.cli(), await rule_id(r, "channel_down", "channel"), {"for_seconds": 2})
    channel = r.platform.channels.active["smpp-sim"]
    port = channel.channel.port
    await r.runtime.simulators.pop("smpp-sim").stop()  # the gateway goes away
    await until(lambda: not channel.up)
    t = now_ms()
    fired, _ = await alerts.evaluate_once(t)
    assert kinds(fired, "channel_down") == []  # not down for 2 s yet
    fired, _ = await alerts.evaluate_once(t + 2_000)
    assert kinds(fired, "channel_down") == ["channel:smpp-sim"]
    fired, _ = await alerts.evaluate_once(t + 3_000)
    assert kinds(fired, "channel_down") == []  # fired once, stays open
    # the staff webhook, the SMTP sink and the on-call numbers are told
    assert [p["type"] for p in hook.posts] == ["alert.fired"]
    assert hook.posts[0]["alert"]["subject"] == "channel:smpp-sim"
    assert len(box.messages) == 1 and box.messages[0][0] == ["oncall@qixin.test"]
    assert "通道中断" in box.messages[0][1]["Subject"]
    assert await count_messages(r, ops.account_id) == len(ON_CALL)

    sim = SmppSimulator("127.0.0.1", port, SimulatorConfig(receipt_delay=(0.01, 0.03)))
    await sim.start()
    r.runtime.simulators["smpp-sim"] = sim  # stopped with the runtime
    await until(lambda: channel.up, timeout=30)
    _, resolved = await alerts.evaluate_once()
    assert kinds(resolved, "channel_down") == ["channel:smpp-sim"]
    assert [p["type"] for p in hook.posts] == ["alert.fired", "alert.resolved"]
    assert len(box.messages) == 2 and "恢复" in box.messages[1][1]["Subject"]
    assert await count_messages(r, ops.account_id) == 2 * len(ON_CALL)
    history = await alerts.history(Actor.cli(), kind="channel_down")
    assert [(a["state"], a["subject"]) for a in history["alerts"]] == [("resolved", "channel:smpp-sim")]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # channel behaviour: one database is enough
async def test_receipts_stopping_on_a_channel(plat: Running) -> None:
    r = plat
    sim, channel, alerts = r.runtime.simulator, r.platform.channels.active["smpp-sim"], r.platform.alerts
    api = r.account()
    await alerts.evaluate_once()  # the evaluator watches the channel's counters from its start
    sim.config.receipts = False  # the gateway keeps accepting submits but sends no receipts
    before = channel.receipts
    assert (await api.send(to=["13800138000", "13800138001", "13800138002"], content="回执测试")).status_code == 200
    await until(lambda: channel.submitted >= 3)
    t = now_ms()
    fired, _ = await alerts.evaluate_once(t)
    assert kinds(fired, "receipts_stopped") == []
    fired, _ = await alerts.evaluate_once(t + 599_000)
    assert kinds(fired, "receipts_stopped") == []
    fired, _ = await alerts.evaluate_once(t + 601_000)  # default: 600 s of submits with no receipt
    assert kinds(fired, "receipts_stopped") == ["channel:smpp-sim"]
    assert channel.receipts == before
    sim.config.receipts = True
    assert (await api.send(to="13800138009", content="回执恢复")).status_code == 200
    await until(lambda: channel.receipts > before)
    _, resolved = await alerts.evaluate_once(t + 602_000)
    assert kinds(resolved, "receipts_stopped") == ["channel:smpp-sim"]


async def test_success_rate_of_an_account(plat: Running) -> None:
    r = plat
    sim, alerts = r.runtime.simulator, r.platform.alerts
    await alerts.set_rule(Actor.cli(), await rule_id(r, "success_rate", "account"), {"min_messages": 5})
    api = r.account()
    sim.set_outcomes({"UNDELIV": 1.0})
    await api.send(to=[f"1380013{i:04d}" for i in range(5)], content="成功率测试")
    await r.wait_final(5)
    fired, _ = await alerts.evaluate_once()
    assert kinds(fired, "success_rate") == [f"account:{api.account_id}"]
    assert "0%" in next(a["message"] for a in fired if a["kind"] == "success_rate")
    sim.set_outcomes({"DELIVRD": 1.0})
    await api.send(to=[f"1390013{i:04d}" for i in range(20)], content="成功率恢复")
    await r.wait_final(25)
    _, resolved = await alerts.evaluate_once()  # 20 / 25 = 80 %: not below 80 %
    assert kinds(resolved, "success_rate") == [f"account:{api.account_id}"]


async def test_queue_lag(plat: Running) -> None:
    r, alerts = plat, plat.platform.alerts
    api = r.account()
    send_at = now_ms() // 1000 + 3600
    assert (await api.send(to="13800138000", content="定时消息", send_at=send_at)).status_code == 200
    fired, _ = await alerts.evaluate_once()
    assert kinds(fired, "queue_lag") == []  # scheduled, not due: no lag
    fired, _ = await alerts.evaluate_once(send_at * 1000 + 301_000)  # due for 301 s and still waiting
    assert kinds(fired, "queue_lag") == ["platform"]
    _, resolved = await alerts.evaluate_once()
    assert kinds(resolved, "queue_lag") == ["platform"]


async def test_webhook_dead_letters(plat: Running) -> None:
    r, alerts = plat, plat.platform.alerts
    api = r.account(callback_url=f"http://127.0.0.1:{free_port()}/closed")  # nothing listens there
    await api.send(to="13800138000", content="死信测试")
    await until_async(lambda: _dead(r), timeout=30)
    fired, _ = await alerts.evaluate_once()
    assert kinds(fired, "webhook_dead_letters") == [f"account:{api.account_id}"]
    _, resolved = await alerts.evaluate_once(now_ms() + 86_401_000)  # out of the 24 h window
    assert kinds(resolved, "webhook_dead_letters") == [f"account:{api.account_id}"]


async def _dead(r: Running) -> bool:
    return (await r.platform.db.read(reads.webhook_snapshot)).get("dead", 0) >= 1


async def test_balance_low(plat: Running) -> None:
    r, alerts = plat, plat.platform.alerts
    poor, rich = r.account(balance_li=5_000), r.account(balance_li=50_000)
    fired, _ = await alerts.evaluate_once()
    assert kinds(fired, "balance_low") == [f"account:{poor.account_id}"]
    assert rich.account_id != poor.account_id
    await r.platform.billing.topup(Actor.cli(), poor.account_id, 10_000, "alert-test", operator=True)
    _, resolved = await alerts.evaluate_once()
    assert kinds(resolved, "balance_low") == [f"account:{poor.account_id}"]


async def test_admin_api_lists_acknowledges_and_changes_rules_with_audit(plat: Running) -> None:
    r = plat
    poor = r.account(balance_li=1_000)
    await r.platform.alerts.evaluate_once()
    ops = r.platform.db.write_sync(lambda tx: create_staff(tx, "值班员", "ops"))
    reviewer = r.platform.db.write_sync(lambda tx: create_staff(tx, "审核员", "reviewer"))
    async with (
        httpx.AsyncClient(base_url=r.base, headers={"Authorization": f"Bearer {ops['token']}"}) as http,
        httpx.AsyncClient(base_url=r.base, headers={"Authorization": f"Bearer {reviewer['token']}"}) as other,
    ):
        assert (await other.get("/admin/alerts")).status_code == 403
        page = (await http.get("/admin/alerts", params={"state": "open"})).json()
        (alert,) = [a for a in page["alerts"] if a["kind"] == "balance_low"]
        assert alert["subject"] == f"account:{poor.account_id}" and alert["acknowledged_at"] is None
        assert (await other.post(f"/admin/alerts/{alert['id']}/ack")).status_code == 403
        resp = await http.post(f"/admin/alerts/{alert['id']}/ack")
        assert resp.status_code == 200 and resp.json()["acknowledged_by"] == "值班员"
        again = await http.post(f"/admin/alerts/{alert['id']}/ack")
        assert again.status_code == 409 and again.json()["code"] == "CONFLICT"
        assert (await http.post("/admin/alerts/999999/ack")).status_code == 404
        unacked = (await http.get("/admin/alerts", params={"state": "unacknowledged"})).json()["alerts"]
        assert alert["id"] not in [a["id"] for a in unacked]

        rules_ = (await http.get("/admin/alert-rules")).json()["rules"]
        low = next(x for x in rules_ if x["kind"] == "balance_low")
        bad = await http.put(f"/admin/alert-rules/{low['id']}", json={"threshold": -5})
        assert bad.status_code == 400 and bad.json()["code"] == "INVALID_REQUEST"
        bad = await http.put(f"/admin/alert-rules/{low['id']}", json={"kind": "queue_lag"})
        assert bad.status_code == 400
        ok = await http.put(f"/admin/alert-rules/{low['id']}", json={"threshold": 500})
        assert ok.status_code == 200 and ok.json()["threshold"] == 500
    _, resolved = await r.platform.alerts.evaluate_once()  # 1,000 厘 is not below 500 厘 any more
    assert kinds(resolved, "balance_low") == [f"account:{poor.account_id}"]
    audit = await r.platform.db.read(
        lambda tx: tx.all("SELECT actor_type, actor_id, action, target FROM audit_log WHERE action LIKE 'alert%'")
    )
    actions = {(str(a[2]), str(a[3])) for a in audit}
    assert ("alert.ack", f"alert:{alert['id']}") in actions
    assert ("alert_rule.update", f"alert_rule:{low['id']}") in actions


def test_cli_lists_rules_changes_one_lists_and_acknowledges_alerts(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from qixin.cli import app

    runner = CliRunner(env={"COLUMNS": "200"})
    d = ["--data-dir", str(tmp_path)]

    def cli(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, [*args, *d])
        assert result.exit_code == code, result.output
        return orjson.loads(result.stdout) if "--json" in args else result.output

    made = cli("account", "create", "--name", "余额不足", "--signature", "企信", "--balance", "1", "--price",
               "0.035", "--json")  # fmt: skip
    rules_ = cli("alerts", "rules", "--json")["rules"]
    low = next(r for r in rules_ if r["kind"] == "balance_low")
    assert low["threshold"] == 10_000
    assert cli("alerts", "rules", str(low["id"]), "--threshold", "20000", "--json")["threshold"] == 20_000
    assert "INVALID_REQUEST" in runner.invoke(app, ["alerts", "rules", str(low["id"]), "--threshold", "0", *d]).output

    from qixin.app import build
    from qixin.store.migrate import migrate

    settings = Settings(data_dir=tmp_path)
    migrate(settings.db_url)
    services = build(settings)
    try:
        fired, _ = asyncio.run(services.alerts.evaluate_once())
    finally:
        services.db.close()
    assert kinds(fired, "balance_low") == [f"account:{made['account_id']}"]
    listed = cli("alerts", "list", "--state", "open", "--json")["alerts"]
    assert [a["subject"] for a in listed] == [f"account:{made['account_id']}"]
    assert "已确认" in cli("alerts", "ack", str(listed[0]["id"]))
    cli("alerts", "ack", str(listed[0]["id"]), code=2)  # twice: CONFLICT
    assert "（已确认：cli:cli）" in cli("alerts", "list")


async def test_the_alerts_role_evaluates_by_itself(tmp_path: Path, staff_hook: tuple[StaffHook, str]) -> None:
    hook, url = staff_hook
    settings = Settings(
        data_dir=tmp_path, compliance=TEST_COMPLIANCE, simulators=("smpp",), alerts_interval=0.05,
        alert_webhook_url=url,
    )  # fmt: skip
    r, server, task = await start_running(settings)
    try:
        poor = r.account(balance_li=100)
        await until(lambda: any(p["alert"]["subject"] == f"account:{poor.account_id}" for p in hook.posts))
        await r.platform.billing.topup(Actor.cli(), poor.account_id, 20_000, "role-test", operator=True)
        await until(lambda: [p["type"] for p in hook.posts if p["alert"]["kind"] == "balance_low"][-1:]
                    == ["alert.resolved"])  # fmt: skip
        assert r.platform.alerts.stats["rounds"] >= 2
    finally:
        for c in r.clients:
            await c.aclose()
        server.should_exit = True
        await task
        await r.runtime.stop()
    assert r.platform.alert_worker._task is None  # stopped with the runtime


# -- notices retried; one evaluator ------------------------------------------------------------------------


async def _ops_account(r: Running) -> Any:
    ops = r.account(name="平台运维")  # the platform's own account: alert SMS go out through it
    await r.platform.db.write(lambda tx: tx.execute("UPDATE api_keys SET app_key = ? WHERE account_id = ?",
                                                    (OPS_APP_KEY, ops.account_id)))  # fmt: skip
    r.platform.directory.invalidate()
    return ops


async def test_a_failed_notice_is_retried_with_backoff_and_its_state_is_in_the_history(
    plat: Running, staff_hook: tuple[StaffHook, str], inbox: tuple[int, Inbox]
) -> None:
    r, alerts, (hook, _) = plat, plat.platform.alerts, staff_hook
    await _ops_account(r)
    alerts.notice_backoff_ms, alerts.notice_max_attempts = 200, 3
    hook.fail = 1  # the staff webhook is down for one attempt
    poor = r.account(balance_li=5_000)
    fired, _ = await alerts.evaluate_once()
    assert kinds(fired, "balance_low") == [f"account:{poor.account_id}"]
    assert hook.posts == [] and len(inbox[1].messages) == 1  # the email went; the webhook failed
    history = await alerts.history(Actor.cli(), kind="balance_low")
    hook_notice = [n for n in history["alerts"][0]["notices"] if n["target"] == "webhook"]
    assert hook_notice[0]["status"] == "pending" and hook_notice[0]["attempts"] == 1
    assert "503" in hook_notice[0]["last_error"] and hook_notice[0]["next_at"] > now_ms()
    assert await alerts.deliver_due() == 0  # not due before its backoff
    await until_async(lambda: alerts.deliver_due(), timeout=10)  # due after ~200 ms: sent
    assert [p["type"] for p in hook.posts] == ["alert.fired"]
    history = await alerts.history(Actor.cli(), kind="balance_low")
    assert {(n["target"], n["status"], n["attempts"]) for n in history["alerts"][0]["notices"]} == {
        ("email:oncall@qixin.test", "sent", 1), ("webhook", "sent", 2), ("sms", "sent", 1)}  # fmt: skip
    assert len(inbox[1].messages) == 1  # the email was not sent again

    # a target that never answers is given up after notice_max_attempts, bounded
    hook.fail = 100
    await r.platform.billing.topup(Actor.cli(), poor.account_id, 10_000, "retry-test", operator=True)
    _, resolved = await alerts.evaluate_once()
    assert kinds(resolved, "balance_low") == [f"account:{poor.account_id}"]

    async def dead() -> bool:
        await alerts.deliver_due()
        h = await alerts.history(Actor.cli(), kind="balance_low")
        return any(n["status"] == "dead" for n in h["alerts"][0]["notices"] if n["event"] == "resolved")

    await until_async(dead, timeout=15)
    h = await alerts.history(Actor.cli(), kind="balance_low")
    gone = [n for n in h["alerts"][0]["notices"] if n["event"] == "resolved" and n["target"] == "webhook"]
    assert gone[0]["attempts"] == 3 and gone[0]["next_at"] is None
    assert [p["type"] for p in hook.posts] == ["alert.fired"]


async def test_two_evaluators_one_notice_per_firing(plat: Running, staff_hook: tuple[StaffHook, str]) -> None:
    """Two evaluators on one database (two processes' worth: their own state, their own holder id): only
    the lease holder evaluates; each firing gives one notice per target; the other takes over once the
    holder's lease has run out."""
    from qixin.services.alerts import Alerts

    r, (hook, _) = plat, staff_hook
    ops = await _ops_account(r)
    one = r.platform.alerts
    two = Alerts(one.db, one.channel_health, one.smtp, one.targets, one.sms)
    poor = r.account(balance_li=5_000)
    results = await asyncio.gather(*(a.evaluate_once() for a in (one, two, one, two)))
    fired = [a for f, _ in results for a in f if a["kind"] == "balance_low"]
    assert [a["subject"] for a in fired] == [f"account:{poor.account_id}"]
    assert one.stats["not_leader"] + two.stats["not_leader"] >= 2  # the other was refused its rounds
    await asyncio.gather(one.deliver_due(), two.deliver_due(), one.deliver_due(), two.deliver_due())
    assert [p["type"] for p in hook.posts] == ["alert.fired"]  # one notice for the one firing
    assert await count_messages(r, ops.account_id) == len(ON_CALL)  # and one SMS to each on-call number
    leader = one if one.stats["not_leader"] < two.stats["not_leader"] else two
    other = two if leader is one else one
    # the holder stops (its lease runs out): the other evaluates from then on
    await r.platform.db.write(lambda tx: tx.execute("UPDATE service_leases SET until = 0 WHERE name = 'alerts'"))
    await r.platform.billing.topup(Actor.cli(), poor.account_id, 10_000, "lease-test", operator=True)
    _, resolved = await other.evaluate_once()
    assert kinds(resolved, "balance_low") == [f"account:{poor.account_id}"]
    assert await leader.evaluate_once() == ([], [])  # no longer the holder
    assert [p["type"] for p in hook.posts] == ["alert.fired", "alert.resolved"]
