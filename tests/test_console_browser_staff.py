"""The newer staff pages in a real browser (Playwright driving Debian's Chromium), and the console's file
inputs: what tests/test_console_staffadmin.py and tests/test_console_contacts.py check over HTTP, here
clicked through the pages as a staff member or customer does, each change read back through the use cases.

The browser fixtures (one Chromium for the whole session, a fresh context per test) are the plugin
tests/console_browser_plugin.py, shared with tests/test_console_browser.py (helpers: tests/console_browser.py).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from conftest import Running, running_platform
from console_browser import NEW_PASSWORD, login, new_page
from console_helpers import PASSWORD

from qixin.services.actor import Actor

pytest_plugins = ["console_browser_plugin"]
pytestmark = [
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),  # the browser, not the database, is tested
    pytest.mark.asyncio(loop_scope="session"),  # the loop the session's Chromium runs in
]


@pytest_asyncio.fixture(loop_scope="session")
async def running(db_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    """conftest's ``running``, in the session loop (the platform and the browser must share one loop)."""
    async with running_platform(db_url, tmp_path) as r:
        yield r


async def notice(page: Any) -> str:
    return str(await page.inner_text("p.notice"))


async def test_account_settings_policy_flow_control_and_dedicated_channels(running: Running, browser: Any) -> None:
    api = running.account(name="策略客户")
    await running.platform.console_users.create_staff(Actor.cli(), "管理员", "admin", "13900007001", PASSWORD)
    page = await new_page(browser)
    await login(running, page, "13900007001")
    await page.click("nav >> text=客户账户")
    await page.click(f"#account-{api.account_id} >> text=设置")
    await page.wait_for_url(f"**/staff/account?id={api.account_id}")
    assert "账户设置 · 策略客户" in await page.inner_text("h1")

    policy = page.locator("#policy")
    assert not await policy.locator("input[name=permit_24h]").is_checked()
    await policy.locator("input[name=permit_24h]").check()
    await policy.locator("input[name=international]").check()
    await policy.locator("button").click()
    assert "策略已保存" in await notice(page)
    saved = await running.platform.compliance_desk.policy(Actor.cli(), api.account_id)
    assert saved["permit_24h"] and saved["international"] and not saved["verification_window"]
    assert await page.locator("#policy input[name=permit_24h]").is_checked()  # the page shows what is stored

    flow = page.locator("#flow")
    await flow.locator("input[name=tps]").fill("5")
    await flow.locator("input[name=daily_cap]").fill("1000")
    await flow.locator("button").click()
    assert "流量控制已保存" in await notice(page)
    assert await running.platform.flow.get(Actor.cli(), api.account_id) == {
        "account_id": api.account_id, "tps": 5, "daily_cap": 1000}  # fmt: skip
    assert await page.input_value("#flow input[name=tps]") == "5"
    await page.locator("#flow input[name=tps]").fill("-1")  # bad input: a Chinese message, nothing saved
    await page.locator("#flow button").click()
    assert "tps" in await page.inner_text("p.error")
    assert (await running.platform.flow.get(Actor.cli(), api.account_id))["tps"] == 5

    ch = (await running.platform.channel_desk.listing(Actor.cli()))[0]
    await page.goto(running.base + f"/staff/account?id={api.account_id}")
    await page.check(f"#dedicated-{ch['id']}")
    await page.click("#dedicated button")
    assert "专属通道已保存（1 个通道有变化）" in await notice(page)
    assert await page.is_checked(f"#dedicated-{ch['id']}")
    assert (await running.platform.channel_desk.listing(Actor.cli()))[0]["accounts"] == [api.account_id]
    await page.uncheck(f"#dedicated-{ch['id']}")
    await page.click("#dedicated button")
    assert "1 个通道有变化" in await notice(page)
    assert (await running.platform.channel_desk.listing(Actor.cli()))[0]["accounts"] == []


async def test_channels_add_edit_and_disable(running: Running, browser: Any) -> None:
    await running.platform.console_users.create_staff(Actor.cli(), "运维", "ops", "13900007011", PASSWORD)
    page = await new_page(browser)
    await login(running, page, "13900007011")
    await page.click("nav >> text=通道")
    form = page.locator("#channel-create")
    for name, value in (("name", "备用联通"), ("host", "127.0.0.1"), ("port", "1"), ("username", "sp01"),
                        ("secret", "Chan-Secret-9f3a"), ("tps", "50"), ("carriers", "cucc")):  # fmt: skip
        await form.locator(f"[name={name}]").fill(value)
    await form.locator("select[name=protocol]").select_option("sgip")
    await form.locator("button").click()
    assert "通道「备用联通」已添加" in await notice(page)
    ch = next(c for c in await running.platform.channel_desk.listing(Actor.cli()) if c["name"] == "备用联通")
    row = page.locator(f"#channel-{ch['id']}")
    assert "联通" in await row.inner_text() and await row.locator("td.status").inner_text() == "启用"
    assert "Chan-Secret-9f3a" not in await page.content()

    await row.locator("text=编辑").click()
    await page.wait_for_url(f"**/staff/channels?edit={ch['id']}")
    edit = page.locator("#channel-edit")
    assert await edit.locator("input[name=secret]").input_value() == ""  # a secret is never shown back
    await edit.locator("input[name=tps]").fill("80")
    await edit.locator("button").click()
    assert "通道「备用联通」已保存" in await notice(page)
    stored = next(c for c in await running.platform.channel_desk.listing(Actor.cli()) if c["id"] == ch["id"])
    assert stored["tps"] == 80
    sql = "SELECT secret FROM channels WHERE id = ?"
    assert (await running.platform.db.read(lambda tx: tx.one(sql, (ch["id"],))))[0] == "Chan-Secret-9f3a"

    await page.locator(f"#channel-{ch['id']} button:has-text('停用')").click()
    assert "通道「备用联通」已停用" in await notice(page)
    assert await page.inner_text(f"#channel-{ch['id']} td.status") == "已停用"
    assert not next(c for c in await running.platform.channel_desk.listing(Actor.cli())
                    if c["id"] == ch["id"])["enabled"]  # fmt: skip
    await page.locator(f"#channel-{ch['id']} button:has-text('启用')").click()
    assert "已启用" in await notice(page) and await page.inner_text(f"#channel-{ch['id']} td.status") == "启用"


async def test_staff_users_created_and_revoked_by_an_admin_only(running: Running, browser: Any) -> None:
    users = running.platform.console_users
    await users.create_staff(Actor.cli(), "管理员", "admin", "13900007021", PASSWORD)
    await users.create_staff(Actor.cli(), "运维", "ops", "13900007022", PASSWORD)
    admin = await new_page(browser)
    await login(running, admin, "13900007021")
    await admin.click("nav >> text=员工")
    form = admin.locator("#create-staff")
    await form.locator("input[name=name]").fill("新审核员")
    await form.locator("select[name=role]").select_option("reviewer")
    await form.locator("input[name=phone]").fill("13900007023")
    await form.locator("input[name=password]").fill(PASSWORD)
    await form.locator("button").click()
    assert "员工 新审核员 已创建" in await notice(admin)
    created = await admin.inner_text("#staff-created")
    assert "接口令牌" in created and PASSWORD not in await admin.content()
    staff_id = next(s["staff_id"] for s in await running.platform.staff_users.listing(Actor.cli())
                    if s["name"] == "新审核员")  # fmt: skip
    row = admin.locator(f"#staff-{staff_id}")
    assert "审核" in await row.inner_text()

    # the new reviewer logs in (first login: a new password), then the admin revokes them
    reviewer = await new_page(browser)
    await login(running, reviewer, "13900007023")
    assert "/staff" in reviewer.url
    await row.locator("button:has-text('停用')").click()
    assert f"员工 {staff_id} 已停用" in await notice(admin)
    assert await admin.locator(f"#staff-{staff_id} button:has-text('停用')").count() == 0
    status = next(s["status"] for s in await running.platform.staff_users.listing(Actor.cli())
                  if s["staff_id"] == staff_id)  # fmt: skip
    assert status != "active"
    await reviewer.reload()  # the revoked staff member's session ended at once
    assert "/login" in reviewer.url

    # not an admin: no 员工 link, and the server refuses the page and the form
    ops = await new_page(browser)
    await login(running, ops, "13900007022")
    assert await ops.locator("nav >> text=员工").count() == 0
    resp = await ops.goto(running.base + "/staff/users")
    assert resp.status == 403 and "无权访问" in await ops.inner_text("main")


async def test_address_book_tag_filter_and_send_to_a_tag(running: Running, browser: Any) -> None:
    api = running.account()
    await running.platform.console_users.create_user(Actor.cli(), api.account_id, "王经理", "13900007031", "owner",
                                                     PASSWORD)  # fmt: skip
    page = await new_page(browser)
    await login(running, page, "13900007031")
    await page.click("nav >> text=通讯录")
    for number, name, tags in (("13900008401", "张三", "VIP，北京"), ("13900008402", "李四", "VIP"),
                               ("13900008403", "王五", "")):  # fmt: skip
        add = page.locator("form:has(input[name=action][value=add])")
        await add.locator("input[name=number]").fill(number)
        await add.locator("input[name=name]").fill(name)
        await add.locator("input[name=tags]").fill(tags)
        await add.locator("button").click()
        assert "新增 1 个联系人" in await notice(page)
    assert "139****8403" in await page.inner_text("#contacts")

    await page.click("#tag-filter >> text=VIP（2）")
    assert "标签「VIP」" in await page.inner_text("h1")
    listed = await page.inner_text("#contacts")
    assert "139****8401" in listed and "139****8402" in listed and "139****8403" not in listed
    assert "发送给标签「VIP」（2 人）" in await page.inner_text("main")
    await page.fill(
        "main form:has(input[name=tag_id]) textarea[name=content]", "会员您好，本周六营业时间调整为 10:00–18:00。"
    )
    await page.click("main form:has(input[name=tag_id]) button:has-text('发送')")
    assert "已提交 2 条" in await notice(page)
    batches = await running.platform.db.read(
        lambda tx: tx.all("SELECT number FROM messages WHERE account_id = ? ORDER BY number", (api.account_id,))
    )
    assert [r[0] for r in batches] == ["13900008401", "13900008402"]


async def test_read_only_customer_view_refuses_a_write(running: Running, browser: Any) -> None:
    api = running.account(name="被查看的客户")
    users = running.platform.console_users
    await users.create_staff(Actor.cli(), "财务小赵", "finance", "13900007041", PASSWORD)
    page = await new_page(browser)
    await login(running, page, "13900007041")
    await page.click("nav >> text=客户账户")
    await page.click(f"#view-{api.account_id}")
    await page.wait_for_selector("#readonly-banner")
    assert f"只读查看：账户 {api.account_id}" in await page.inner_text("#readonly-banner")
    assert "被查看的客户" in await page.inner_text("h1")

    await page.click("nav >> text=通讯录")
    add = page.locator("form:has(input[name=action][value=add])")
    if await add.count() == 0:  # the page may hide the forms; the server must refuse a forged one anyway
        await page.evaluate(
            """csrf => { const f = document.createElement('form'); f.method = 'post'; f.action = '/contacts';
            for (const [k, v] of [['csrf', csrf], ['action', 'add'], ['number', '13900009901']]) {
              const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.append(i); }
            document.body.append(f); f.submit(); }""",
            await page.get_attribute("meta[name=csrf-token]", "content"),
        )
        await page.wait_for_load_state()
    else:
        await add.locator("input[name=number]").fill("13900009901")
        await add.locator("button").click()
    assert "只读查看模式" in await page.inner_text("main")
    book = await running.platform.addressbook.contacts(Actor.customer(api.account_id, api.app_key))
    assert book["total"] == 0

    await page.goto(running.base + "/")
    await page.click("#readonly-banner button:has-text('退出只读查看')")
    await page.wait_for_url(re.compile(r".*/staff/accounts$"))
    assert await page.locator("#readonly-banner").count() == 0


async def test_file_inputs_have_a_chinese_face_keyboard_and_no_script(
    running: Running, browser: Any, tmp_path: Path
) -> None:
    api = running.account(balance_li=10_000_000)
    await running.platform.console_users.create_user(Actor.cli(), api.account_id, "操作员", "13900007051",
                                                     "operator", PASSWORD)  # fmt: skip
    path = tmp_path / "名单.txt"
    path.write_text("13900008501\n13900008502\n", encoding="utf-8")
    page = await new_page(browser)
    # file choosers are intercepted from now on (Playwright turns that on without waiting for an answer: a
    # listener added just before the key press could miss the chooser)
    page.on("filechooser", lambda _chooser: None)
    await login(running, page, "13900007051")
    for url in ("/send/file", "/contacts", "/optouts", "/signatures"):
        await page.goto(running.base + url)
        picks = page.locator(".file-pick")
        assert await picks.count() >= 1, url
        for i in range(await picks.count()):
            pick = picks.nth(i)
            assert await pick.locator(".file-button").inner_text() == "选择文件", url
            assert await pick.locator(".file-name").inner_text() == "未选择文件", url
            box = await pick.locator("input[type=file]").bounding_box()
            assert box is not None and box["width"] <= 1 and box["height"] <= 1, (url, box)  # out of sight

    # the keyboard: Tab from the field before it reaches the file input (its face shows the focus), Space
    # opens the chooser, and the chosen file's name is shown
    await page.goto(running.base + "/send/file")
    await page.evaluate("document.querySelector('main form input[type=hidden]').closest('form')"
                        ".insertAdjacentHTML('afterbegin', '<button type=button id=before>前</button>')")  # fmt: skip
    await page.focus("#before")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.name") == "file"
    outline = await page.locator(".file-button").evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline == "solid", outline
    async with page.expect_file_chooser() as chooser:
        await page.keyboard.press("Space")
    await (await chooser.value).set_files(str(path))
    assert await page.inner_text(".file-pick .file-name") == "名单.txt"
    await page.evaluate("document.getElementById('before').remove()")
    await page.fill("textarea[name=content]", "会员日活动通知，详情见公众号。")
    await page.click("main form button[type=submit]")
    await page.wait_for_selector("#preview")
    assert await page.inner_text("#pv-valid") == "2"

    # without JavaScript: the browser's own control, and the upload still works
    ctx = await browser.new_context(java_script_enabled=False, locale="zh-CN")
    plain = await ctx.new_page()
    await login(running, plain, "13900007051", password=NEW_PASSWORD)
    await plain.goto(running.base + "/send/file")
    assert await plain.locator(".file-pick .file-button").is_hidden()
    assert (await plain.locator("input[type=file]").bounding_box() or {}).get("width", 0) > 1
    await plain.set_input_files("input[type=file]", str(path))
    await plain.fill("textarea[name=content]", "会员日活动通知，详情见公众号。")
    await plain.click("main form button[type=submit]")
    await plain.wait_for_selector("#preview")
    assert await plain.inner_text("#pv-valid") == "2"
