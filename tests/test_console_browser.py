"""The web console in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium, or
QIXIN_CHROMIUM) against the running platform with its carrier simulators on loopback.

The browser fixtures live in tests/console_browser_plugin.py (a plugin named in ``pytest_plugins``): one
Chromium serves the whole session, every module included (launching it cost about 7 s per test on a
loaded CI machine); the tests and their fixtures run in pytest-asyncio's session event loop, where the
browser lives, and every test still gets fresh browser contexts that are closed when it ends. Without
Chromium these tests are skipped with the reason (a failure under QIXIN_REQUIRE_SERVICES=1, CI).
The staff pages' browser tests are in tests/test_console_browser_staff.py.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from conftest import Running, running_platform
from console_browser import NEW_PASSWORD, login, new_page, shot
from console_helpers import PASSWORD

from qixin.console.web import STATUS_NAMES
from qixin.services.actor import Actor
from qixin.services.receipts import FINAL

pytest_plugins = ["console_browser_plugin"]  # the session's one Chromium (chromium / browser fixtures)
pytestmark = [
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),  # the browser, not the database, is tested
    pytest.mark.asyncio(loop_scope="session"),  # the loop the session's Chromium runs in
]


@pytest_asyncio.fixture(loop_scope="session")
async def running(db_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    """conftest's ``running``, in the session loop (the platform and the browser must share one loop)."""
    async with running_platform(db_url, tmp_path) as r:
        yield r


async def final_status(r: Running, number: str, within: float = 60.0) -> str:
    """The message's status once it is final (its receipt stored), polled for at most ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        row = await r.platform.db.read(lambda tx: tx.one("SELECT status FROM messages WHERE number = ?", (number,)))
        if row is not None and row[0] in FINAL:
            return str(row[0])
        assert loop.time() < deadline, f"no final status for {number} after {within} s: {row}"
        await asyncio.sleep(0.1)


async def test_customer_logs_in_sends_and_sees_it_delivered(running: Running, browser: Any) -> None:
    api = running.account()
    await running.platform.console_users.create_user(Actor.cli(), api.account_id, "王经理", "13900003001", "owner",
                                                     PASSWORD)  # fmt: skip
    page = await new_page(browser)
    await login(running, page, "13900003001", screenshot=True)
    assert await page.inner_text("h1") == "测试客户 · 概览"

    await page.click("nav >> text=发送短信")
    await page.fill("textarea[name=to]", "13900004001")
    await page.fill("textarea[name=content]", "您的订单已发货，请注意查收。")
    await shot(page, "send")
    await page.click("main form button[type=submit]")
    notice = await page.inner_text(".notice")
    assert "已提交 1 条" in notice, notice

    await page.click("nav >> text=发送记录")
    # the records table refreshes itself (htmx, every 3 s) until the receipt has come; the simulated carrier
    # reports 未送达 or 超时 for a few messages in a hundred, so the label awaited is the stored final status's
    final = await final_status(running, "13900004001")
    label = STATUS_NAMES.get(final, final)
    await page.wait_for_selector(f"#records td.status:has-text('{label}')", timeout=30_000)
    assert "139****4001" in await page.inner_text("#records")
    await shot(page, "records")

    await page.click("nav >> text=概览")
    await page.wait_for_selector("#chart-days[data-ready='1'] canvas")
    await page.wait_for_selector("#chart-carriers[data-ready='1'] canvas")
    assert await page.inner_text("#today-sent") == "1"
    await shot(page, "dashboard")


async def test_reviewer_approves_the_template_the_customer_applied_for(running: Running, browser: Any) -> None:
    api = running.account()
    users = running.platform.console_users
    await users.create_user(Actor.cli(), api.account_id, "操作员", "13900003002", "operator", PASSWORD)
    await users.create_staff(Actor.cli(), "审核员小李", "reviewer", "13900003003", PASSWORD)
    customer = await new_page(browser)
    await login(running, customer, "13900003002")
    await customer.click("nav >> text=签名与模板")
    form = customer.locator("#apply-template")
    await form.locator("input[name=name]").fill("发货通知")
    await form.locator("select[name=category]").select_option("notification")
    await form.locator("textarea[name=content]").fill("您的订单${order}已发货。")
    await form.locator("textarea[name=variables]").fill("order=number")
    await form.locator("button").click()
    assert "模板已提交审核" in await customer.inner_text(".notice")
    template_id = re.search(r"编号 (\d+)", await customer.inner_text(".notice"))[1]  # type: ignore[index]
    await shot(customer, "signatures")

    reviewer = await new_page(browser)
    await login(running, reviewer, "13900003003")
    await reviewer.click("nav >> text=审核")
    row = reviewer.locator(f"#template-{template_id}")
    await shot(reviewer, "staff-review")
    await row.locator("button[value=approve]").click()
    assert "已通过" in await reviewer.inner_text(".notice")

    await customer.reload()
    assert await customer.inner_text(f"#template-{template_id} td.status") == "已通过"


async def test_staff_freezes_an_account_and_the_customer_send_is_refused(running: Running, browser: Any) -> None:
    api = running.account(name="待冻结客户")
    users = running.platform.console_users
    await users.create_user(Actor.cli(), api.account_id, "客户", "13900003004", "owner", PASSWORD)
    await users.create_staff(Actor.cli(), "管理员", "admin", "13900003005", PASSWORD)
    admin = await new_page(browser)
    await login(running, admin, "13900003005")
    await admin.click("nav >> text=客户账户")
    row = admin.locator(f"#account-{api.account_id}")
    await row.locator("input[name=reason]").fill("投诉过多，暂停发送")
    await row.locator("button.danger").click()
    assert "已冻结" in await admin.inner_text(f"#account-{api.account_id} td.status")
    await shot(admin, "staff-accounts")

    customer = await new_page(browser)
    await login(running, customer, "13900003004")
    await customer.goto(running.base + "/send")
    await customer.fill("textarea[name=to]", "13900004002")
    await customer.fill("textarea[name=content]", "冻结后发送")
    await customer.click("main form button[type=submit]")
    assert "账户已冻结" in await customer.inner_text(".error")


async def test_viewer_lockout_and_csrf(running: Running, browser: Any) -> None:
    api = running.account()
    users = running.platform.console_users
    await users.create_user(Actor.cli(), api.account_id, "只读用户", "13900003006", "viewer", PASSWORD)
    await users.create_user(Actor.cli(), api.account_id, "被锁用户", "13900003007", "owner", PASSWORD)

    # a viewer cannot reach the send page: the server refuses it (the link is not shown either)
    viewer = await new_page(browser)
    await login(running, viewer, "13900003006")
    assert await viewer.locator("nav >> text=发送短信").count() == 0
    resp = await viewer.goto(running.base + "/send")
    assert resp.status == 403 and "无权访问" in await viewer.inner_text("main")

    # CSRF: a form whose token was tampered with is refused, nothing changes
    await viewer.goto(running.base + "/password")
    await viewer.evaluate("document.querySelector('main input[name=csrf]').value = 'forged'")
    await viewer.fill("input[name=old]", NEW_PASSWORD)
    await viewer.fill("input[name=new]", "Another-Pass-2028")
    await viewer.fill("input[name=again]", "Another-Pass-2028")
    await viewer.click("main button[type=submit]")
    assert "CSRF" in await viewer.inner_text("main")
    await shot(viewer, "csrf-refused")

    # lockout after repeated failures, with a clear Chinese message
    page = await new_page(browser)
    for _ in range(running.platform.settings.console_max_failures):
        await page.goto(running.base + "/login")
        await page.fill("input[name=phone]", "13900003007")
        await page.fill("input[name=password]", "Wrong-Pass-123")
        await page.click("button[type=submit]")
        await page.wait_for_load_state()
    message = await page.inner_text(".error")
    assert "锁定" in message and "分钟后再试" in message, message
    await page.goto(running.base + "/login")
    await page.fill("input[name=phone]", "13900003007")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    assert "锁定" in await page.inner_text(".error")  # the right password too, while locked
    await shot(page, "locked")


async def test_file_send_xlsx_preview_and_job_to_100_percent(running: Running, browser: Any, tmp_path: Path) -> None:
    """文件发送: a 10,000-number XLSX uploaded, the preview shown, confirmed, the job page (htmx) at 100 %."""
    from openpyxl import Workbook

    api = running.account(balance_li=10_000_000)
    await running.platform.console_users.create_user(Actor.cli(), api.account_id, "操作员", "13900003101",
                                                     "operator", PASSWORD)  # fmt: skip
    wb = Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(["手机号"])
    for i in range(10_000):
        ws.append([f"1390002{i:04d}"])
    path = tmp_path / "名单.xlsx"
    wb.save(path)

    page = await new_page(browser)
    await login(running, page, "13900003101")
    await page.click("nav >> text=文件发送")
    await page.set_input_files("input[name=file]", str(path))
    await page.fill("textarea[name=content]", "会员日活动通知，详情见公众号。")
    await page.click("main form button[type=submit]")
    await page.wait_for_selector("#preview")
    assert await page.inner_text("#pv-valid") == "10000"
    assert await page.inner_text("#pv-fee") == "350.000 元"
    await shot(page, "file-preview")
    await page.click("text=确认发送")
    await page.wait_for_url(re.compile(r".*/send/file/jobs/\d+$"))
    # the progress fragment is polled by htmx every second until the job is final
    await page.wait_for_selector("#job-progress[data-status='done']", timeout=60_000)
    assert await page.inner_text("#job-percent") == "100%"
    assert await page.inner_text("#job-accepted") == "10000"
    await shot(page, "file-job")


async def test_address_book_import_and_send_to_a_group(running: Running, browser: Any, tmp_path: Path) -> None:
    api = running.account()
    await running.platform.console_users.create_user(Actor.cli(), api.account_id, "王经理", "13900003021", "owner",
                                                     PASSWORD)  # fmt: skip
    page = await new_page(browser)
    await login(running, page, "13900003021")
    await page.click("nav >> text=通讯录")
    await page.fill("input[name=name][maxlength='64']", "VIP 客户")
    await page.click("button:has-text('创建')")
    assert "已创建分组" in await page.inner_text(".notice")
    await page.click("text=VIP 客户（0）")
    path = tmp_path / "vip.csv"
    path.write_text("姓名,手机号,城市\n张三,13900008201,上海\n李四,13900008202,北京\n坏行,12345,\n", encoding="utf-8")
    await page.set_input_files("input[name=file]", str(path))
    await page.click("button:has-text('导入')")
    assert "新增 2 个联系人" in await page.inner_text(".notice")
    assert "不是有效的手机号码" in await page.inner_text("#rejected")
    assert "139****8201" in await page.inner_text("#contacts")
    await page.fill("textarea[name=content]", "会员您好，本店周六营业时间调整为 10:00–18:00。")
    await shot(page, "contacts")
    await page.click("button:has-text('发送')")
    assert "已提交 2 条" in await page.inner_text(".notice")

    await page.click("nav >> text=退订管理")
    await page.fill("form:has(input[value=add]) textarea[name=numbers]", "13900008202\n1234")
    await page.click("button:has-text('添加到退订名单')")
    assert "已添加 1 个号码" in await page.inner_text(".notice")
    assert "139****8202" in await page.inner_text("#optouts")
    await shot(page, "optouts")


async def test_staff_statistics_compliance_alerts_announcements(running: Running, browser: Any) -> None:
    api = running.account(name="统计客户")
    assert (await api.send(to=["13900008301", "13900008302"], content="您的订单已发货")).status_code == 200
    await running.wait_final(2)
    await running.platform.console_users.create_staff(Actor.cli(), "管理员", "admin", "13900003022", PASSWORD)
    page = await new_page(browser)
    await login(running, page, "13900003022")
    await page.click("nav >> text=统计")
    await page.wait_for_selector("#chart-days[data-ready='1'] canvas")
    row = await page.inner_text("#stat-groups tr:has-text('统计客户')")
    assert row.split("\t")[1].strip() == "2", row  # (the total also counts the login code's SMS)
    await shot(page, "staff-statistics")

    await page.click("nav >> text=合规")
    await page.fill("textarea[name=content]", "稳赚不赔的股票内幕，加微信领取")
    await page.select_option("select[name=type]", "marketing")
    await page.click("button:has-text('检测')")
    assert await page.inner_text("#check-result") != ""
    assert "未发现违规" not in await page.inner_text("#check-result")
    await shot(page, "staff-compliance")

    await running.platform.accounts.create(Actor.cli(), "余额不足客户", "企信", 100, 35)
    await running.platform.alerts.evaluate_once()
    await page.click("nav >> text=告警")
    await page.click("#alerts button:has-text('确认')")
    assert "已确认" in await page.inner_text(".notice")
    await shot(page, "staff-alerts")

    await page.click("nav >> text=公告")
    await page.fill("input[name=starts_at]", "2026-12-20T23:00")
    await page.fill("input[name=title]", "移动通道维护")
    await page.fill("textarea[name=body]", "12 月 20 日 23:00 至次日 01:00 维护，期间移动号码的短信延迟发送。")
    await page.click("button:has-text('发布并通知')")
    assert "已发布" in await page.inner_text(".notice")
    assert "移动通道维护" in await page.inner_text("#announcements")
    await shot(page, "staff-announcements")
