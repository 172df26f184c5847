"""The console's 退订管理 page, the webhook 发送测试事件 button and the staff desk pages (合规, 统计, 告警,
公告) over real HTTP: each page per role (refused server-side for the others), each action through its use
case, and its effect checked where it matters (a send refused, a signed event received, a lexicon word live)."""

from __future__ import annotations

import asyncio
import csv
import io
import re

from console_helpers import PASSWORD
from test_console_pages import CSRF_RE, login

from qixin.errors import CATALOGUE
from qixin.services.actor import Actor

PROMO = {"content": "本周新品上市，欢迎选购，回T退订", "type": "marketing", "audience": "会员"}


def token(page_text: str) -> str:
    m = CSRF_RE.search(page_text)
    assert m, page_text[:300]
    return m[1]


async def until(cond, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_optouts_page_add_remove_export_and_roles(running) -> None:  # type: ignore[no-untyped-def]
    api = running.account()
    users = running.platform.console_users
    await users.create_user(Actor.cli(), api.account_id, "所有者", "13900003001", "owner", PASSWORD)
    await users.create_user(Actor.cli(), api.account_id, "只读", "13900003002", "viewer", PASSWORD)
    owner = await login(running, "13900003001")
    viewer = await login(running, "13900003002")
    try:
        page = await owner.get("/optouts")
        assert page.status_code == 200 and "退订名单为空" in page.text
        t = token(page.text)
        r = await owner.post("/optouts", data={"csrf": t, "action": "add", "numbers": "13900005551\n13900005552，abc"})
        assert r.status_code == 200 and "已添加 2 个号码" in r.text and "1 行无效" in r.text, r.text[:800]
        assert "不是有效的手机号码" in r.text
        assert "139****5551" in r.text and "13900005551" not in r.text  # masked in the list
        # the list is what the send path reads: marketing to an opted-out number is refused, to another not
        out = (await api.send(to=["13900005551", "13900005553"], **PROMO)).json()
        assert out["accepted_count"] == 1 and out["rejected_count"] == 1, out
        # a CSV upload (first column; a header line is skipped)
        files = {"file": ("td.csv", "号码,备注\n13900005554,客户要求\n".encode(), "text/csv")}
        r = await owner.post("/optouts", data={"csrf": t, "action": "add"}, files=files)
        assert r.status_code == 200 and "已添加 1 个号码" in r.text, r.text[:800]
        assert re.search(r'id="optout-total">3<', r.text)
        # the export has the full numbers
        r = await owner.get("/optouts.csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert sorted(x["number"] for x in rows) == ["13900005551", "13900005552", "13900005554"]
        # remove
        r = await owner.post("/optouts", data={"csrf": t, "action": "remove", "numbers": "13900005551"})
        assert r.status_code == 200 and "已移除 1 个号码" in r.text
        out = (await api.send(to="13900005551", **PROMO)).json()
        assert out["accepted_count"] == 1, out
        # a viewer reads the list but changes nothing, and cannot export
        page = await viewer.get("/optouts")
        assert page.status_code == 200 and "139****5552" in page.text and "添加到退订名单" not in page.text
        r = await viewer.post("/optouts", data={"csrf": token(page.text), "action": "remove", "numbers": "13900005552"})
        assert r.status_code == 403 and "无权" in r.text
        assert (await viewer.get("/optouts.csv")).status_code == 403
        r = await owner.post("/optouts", data={"action": "add", "numbers": "13900005559"})  # no CSRF token
        assert r.status_code == 403
        numbers = [x["number"] for x in await running.platform.compliance_desk.optouts(Actor.cli(), api.account_id)]
        assert sorted(numbers) == ["13900005552", "13900005554"]
    finally:
        await owner.aclose()
        await viewer.aclose()


async def test_webhook_test_event_button(running, receiver) -> None:  # type: ignore[no-untyped-def]
    rec, url = receiver
    api = running.account()
    rec.secrets[api.app_key] = api.secret
    users = running.platform.console_users
    await users.create_user(Actor.cli(), api.account_id, "所有者", "13900003011", "owner", PASSWORD)
    owner = await login(running, "13900003011")
    try:
        page = await owner.get("/keys")
        assert "发送测试事件" not in page.text  # no callback URL yet
        t = token(page.text)
        r = await owner.post("/keys", data={"csrf": t, "action": "test_event", "app_key": api.app_key})
        assert r.status_code == 400 and "请先设置回调地址" in r.text
        r = await owner.post("/keys", data={"csrf": t, "action": "callback", "app_key": api.app_key,
                                            "callback_url": url})  # fmt: skip
        assert r.status_code == 200 and "发送测试事件" in r.text
        r = await owner.post("/keys", data={"csrf": t, "action": "test_event", "app_key": api.app_key})
        assert r.status_code == 200 and "测试事件已加入推送队列" in r.text, r.text[:800]

        async def got() -> bool:
            return any(e.get("type") == "test" for e in rec.events)

        await until(got)
        event = next(e for e in rec.events if e["type"] == "test")
        assert event["app_key"] == api.app_key and rec.bad_signatures == 0  # signed with the key's secret
        # another account's key is not the owner's to test
        other = running.account(name="另一家")
        r = await owner.post("/keys", data={"csrf": t, "action": "test_event", "app_key": other.app_key})
        assert r.status_code == 400 and other.app_key not in str(rec.events)
    finally:
        await owner.aclose()


async def test_staff_compliance_page(running) -> None:  # type: ignore[no-untyped-def]
    api = running.account()
    users = running.platform.console_users
    await users.create_staff(Actor.cli(), "审核员", "reviewer", "13900003021", PASSWORD)
    await users.create_staff(Actor.cli(), "运维", "ops", "13900003022", PASSWORD)
    reviewer = await login(running, "13900003021")
    ops = await login(running, "13900003022")
    try:
        page = await reviewer.get("/staff/compliance")
        assert page.status_code == 200 and 'id="pending-templates">' in page.text
        t = token(page.text)
        version = int(re.search(r'id="lexicon-version">(\d+)<', page.text)[1])  # type: ignore[index]
        # test a text: clean, then a new word makes it a violation (a new lexicon version, live at once)
        r = await reviewer.post("/staff/compliance", data={"csrf": t, "action": "check", "content": "青蛙跳跳糖上市了",
                                                           "type": "notification"})  # fmt: skip
        assert r.status_code == 200 and "未发现违规" in r.text, r.text[:800]
        r = await reviewer.post("/staff/compliance", data={"csrf": t, "action": "word_add", "words": "青蛙跳跳糖",
                                                           "category": "other", "note": "控制台测试"})  # fmt: skip
        assert r.status_code == 200 and f"第 {version + 1} 版" in r.text, r.text[:800]
        r = await reviewer.post("/staff/compliance", data={"csrf": t, "action": "check", "content": "青蛙跳跳糖上市了",
                                                           "type": "notification"})  # fmt: skip
        assert "未发现违规" not in r.text and 'class="bad"' in r.text
        r = await reviewer.post("/staff/compliance", data={"csrf": t, "action": "word_add", "words": "x",
                                                           "category": "nope"})  # fmt: skip
        assert r.status_code == 400 and "未知类别" in r.text
        # the blacklist: a number added is refused on the send path, removed it is accepted again
        r = await reviewer.post("/staff/compliance", data={"csrf": t, "action": "blacklist_add",
                                                           "numbers": "13900006661, 12", "reason": "投诉"})  # fmt: skip
        assert r.status_code == 200 and "已加入黑名单 1 个号码，1 个无效" in r.text, r.text[:800]
        assert "139****6661" in r.text and "13900006661" not in r.text  # a reviewer may not read numbers
        out = (await api.send(to=["13900006661", "13900006662"], content="您的订单已发货")).json()
        assert out["accepted_count"] == 1 and out["rejected_count"] == 1, out
        r = await reviewer.post("/staff/compliance", data={"csrf": t, "action": "blacklist_remove",
                                                           "numbers": "13900006661"})  # fmt: skip
        assert "已移出黑名单 1 个号码" in r.text
        assert (await api.send(to="13900006661", content="您的订单已发货")).json()["accepted_count"] == 1
        # a complaint about a number that got a message: blacklisted, with its evidence report
        r = await reviewer.post("/staff/compliance", data={"csrf": t, "action": "complaint", "number": "13900006662",
                                                           "note": "用户投诉骚扰"})  # fmt: skip
        assert r.status_code == 200 and "投诉已登记" in r.text, r.text[:800]
        cid = int(re.search(r"投诉已登记（编号 (\d+)）", r.text)[1])  # type: ignore[index]
        page = await reviewer.get(f"/staff/compliance/complaints/{cid}")
        assert page.status_code == 200 and "您的订单已发货" in page.text and "139****6662" in page.text
        assert "13900006662" not in page.text
        r = await reviewer.get(f"/staff/compliance/complaints/{cid}.csv")
        assert r.status_code == 200 and "13900006662" in r.content.decode("utf-8-sig")  # as GET /admin/…/evidence
        assert (await api.send(to="13900006662", content="您的订单已发货")).json().get("accepted_count", 0) == 0
        assert (await reviewer.get("/staff/compliance/complaints/999999")).status_code == 404
        # ops have no compliance area: refused on the page and the POST, and no link in the navigation
        assert (await ops.get("/staff/compliance")).status_code == 403
        page = await ops.get("/staff/channels")
        assert 'href="/staff/compliance"' not in page.text
        r = await ops.post("/staff/compliance", data={"csrf": token(page.text), "action": "blacklist_add",
                                                      "numbers": "13900006663"})  # fmt: skip
        assert r.status_code == 403
        assert (await ops.get(f"/staff/compliance/complaints/{cid}.csv")).status_code == 403
        assert all(b["number"] != "13900006663" for b in await running.platform.compliance_desk.blacklist(Actor.cli()))
    finally:
        await reviewer.aclose()
        await ops.aclose()


async def test_staff_statistics_alerts_and_announcements(running) -> None:  # type: ignore[no-untyped-def]
    api = running.account(name="统计客户")
    poor = running.account(balance_li=500, name="余额不足客户")  # below the balance_low rule's 10 元
    users = running.platform.console_users
    await users.create_staff(Actor.cli(), "运维", "ops", "13900003031", PASSWORD)
    await users.create_staff(Actor.cli(), "财务", "finance", "13900003032", PASSWORD)
    await users.create_user(Actor.cli(), api.account_id, "所有者", "13900003033", "owner", PASSWORD)
    ops = await login(running, "13900003031")
    finance = await login(running, "13900003032")
    owner = await login(running, "13900003033")
    try:
        sent = await api.send(to=["13900007771", "13900007772", "13900007773"], content="您的订单已发货")
        assert sent.status_code == 200
        await running.wait_final(3)
        # statistics across accounts (finance reads accounts; ops does too)
        page = await finance.get("/staff/statistics")
        assert page.status_code == 200 and "chart-days" in page.text
        row = re.search(rf"<tr><td>{api.account_id} 统计客户</td><td>(\d+)</td>", page.text)
        assert row and int(row[1]) == 3, page.text[-3000:]
        page = await finance.get("/staff/statistics?group=carrier")
        assert "移动" in page.text
        assert (await finance.get("/staff/statistics?since=2026-13-01")).status_code == 400
        # alerts: finance has no channels area; ops sees the balance alert and acknowledges it
        assert (await finance.get("/staff/alerts")).status_code == 403
        await running.platform.alerts.evaluate_once()
        page = await ops.get("/staff/alerts?state=unacknowledged")
        row_re = rf'<tr id="alert-(\d+)"><td>\d+</td><td>账户余额不足</td><td>account:{poor.account_id}<'
        m = re.search(row_re, page.text)
        assert m, page.text[-3000:]
        t = token(page.text)
        r = await ops.post("/staff/alerts", data={"csrf": t, "action": "ack", "alert_id": m[1]})
        assert r.status_code == 200 and f"告警 {m[1]} 已确认" in r.text
        r = await ops.post("/staff/alerts", data={"csrf": t, "action": "ack", "alert_id": m[1]})
        assert r.status_code == 400 and "已被确认" in r.text
        assert f'id="alert-{m[1]}"' not in (await ops.get("/staff/alerts?state=unacknowledged")).text
        assert "运维 · " in (await ops.get("/staff/alerts")).text  # acknowledged by name, as through the API
        # a rule changed from the page; a bad value is refused with the reason
        rules = await running.platform.alerts.rules(Actor.cli())
        rule = next(x for x in rules if x["kind"] == "balance_low")
        form = {"csrf": t, "action": "rule", "rule_id": rule["id"], "threshold": "20000", "for_seconds": "0",
                "window_seconds": "0", "min_messages": "0", "enabled": "1"}  # fmt: skip
        r = await ops.post("/staff/alerts", data=form)
        assert r.status_code == 200 and "已保存" in r.text
        r = await ops.post("/staff/alerts", data=form | {"threshold": "-1"})
        assert r.status_code == 400
        after = next(x for x in await running.platform.alerts.rules(Actor.cli()) if x["id"] == rule["id"])
        assert after["threshold"] == 20000 and after["enabled"]
        # announcements: published to every account, seen by the customer, then withdrawn
        page = await ops.get("/staff/announcements")
        r = await ops.post("/staff/announcements", data={
            "csrf": t, "action": "publish", "kind": "maintenance", "title": "通道维护", "body": "今晚 23:00 维护",
            "starts_at": "2026-12-03T23:00", "ends_at": "2026-12-04T01:00", "audience": "all"})  # fmt: skip
        assert r.status_code == 200 and "已发布" in r.text, r.text[:800]
        aid = int(re.search(r"公告 (\d+) 已发布", r.text)[1])  # type: ignore[index]
        seen = await running.platform.announcements.listing(Actor.customer(api.account_id, api.app_key))
        assert [a["title"] for a in seen["announcements"]] == ["通道维护"]
        assert f'id="announcement-{aid}"' in (await owner.get("/")).text  # on the customer's dashboard
        empty = {"csrf": t, "action": "publish", "kind": "incident", "title": "", "body": "x", "starts_at": "2026-12"}
        r = await ops.post("/staff/announcements", data=empty)
        assert r.status_code == 400
        r = await ops.post("/staff/announcements", data={"csrf": t, "action": "withdraw", "id": aid})
        assert r.status_code == 200 and "已撤回" in r.text
        seen = await running.platform.announcements.listing(Actor.customer(api.account_id, api.app_key))
        assert seen["announcements"] == []
        assert f'id="announcement-{aid}"' not in (await owner.get("/")).text
        # a customer does not reach staff pages
        for path in ("/staff/statistics", "/staff/alerts", "/staff/announcements", "/staff/compliance"):
            assert (await owner.get(path)).headers["location"] == "/", path
    finally:
        for h in (ops, finance, owner):
            await h.aclose()


async def test_staff_content_review_page_approves_and_rejects_held_batches(running) -> None:  # type: ignore[no-untyped-def]
    """内容审核: a batch the classifier held is listed with its category and evidence; 通过 sends it, 驳回 with
    a reason refunds it; the page and its actions are the reviewer's (ops gets 403)."""
    from test_review import HELD, NUMBERS, balance, statuses

    api = running.account(balance_li=10_000, name="审核客户")
    users = running.platform.console_users
    await users.create_staff(Actor.cli(), "审核员", "reviewer", "13900003041", PASSWORD)
    await users.create_staff(Actor.cli(), "运维", "ops", "13900003042", PASSWORD)
    reviewer = await login(running, "13900003041")
    ops = await login(running, "13900003042")
    try:
        first = (await api.send(to=NUMBERS, content=HELD)).json()
        second = (await api.send(to=NUMBERS, content=HELD + "。")).json()
        assert first["status"] == "held" and second["status"] == "held", (first, second)
        charged = await balance(running, api)
        assert charged < 10_000  # taken at accept, refunded exactly on reject
        assert (await ops.get("/staff/content-review")).status_code == 403
        page = await reviewer.get("/staff/content-review")
        assert page.status_code == 200
        for b in (first, second):
            assert f'id="hold-{b["batch_id"]}"' in page.text
        assert first["review"]["category_label"] in page.text and "3 条" in page.text
        t = token(page.text)
        ops_csrf = token((await ops.get("/staff")).text)
        r = await ops.post(
            "/staff/content-review", data={"csrf": ops_csrf, "action": "approve", "batch_id": first["batch_id"]}
        )
        assert r.status_code == 403
        r = await reviewer.post(
            "/staff/content-review", data={"csrf": t, "action": "approve", "batch_id": first["batch_id"]}
        )
        assert r.status_code == 200 and f"批次 {first['batch_id']} 已通过" in r.text, r.text[-2000:]
        r = await reviewer.post(
            "/staff/content-review",
            data={"csrf": t, "action": "reject", "batch_id": second["batch_id"], "reason": "涉嫌冒充司法机关"},
        )
        assert r.status_code == 200 and "已驳回" in r.text, r.text[-2000:]
        r = await reviewer.post(
            "/staff/content-review", data={"csrf": t, "action": "approve", "batch_id": second["batch_id"]}
        )
        assert r.status_code == 400 and CATALOGUE["REVIEW_DECIDED"][1] in r.text  # decided once

        async def approved_sent() -> bool:  # the simulator draws each receipt: delivered or undelivered
            return {s for s, _ in (await statuses(running, first["batch_id"])).values()} <= {"delivered", "undelivered"}

        await until(approved_sent, 30.0)
        assert {e for _, e in (await statuses(running, first["batch_id"])).values()} <= {None, ""}  # none refused
        assert {e for _, e in (await statuses(running, second["batch_id"])).values()} == {"REVIEW_REJECTED"}
        per_batch = (10_000 - charged) // 2
        assert await balance(running, api) == 10_000 - per_batch  # only the approved batch paid
        done = await reviewer.get("/staff/content-review?state=rejected")
        assert (
            f'id="hold-{second["batch_id"]}"' in done.text and "涉嫌冒充司法机关" in done.text and "审核员" in done.text
        )
    finally:
        await reviewer.aclose()
        await ops.aclose()
