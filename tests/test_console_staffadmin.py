"""Staff console pages over real HTTP: the read-only view of a customer's console (audited start / stop,
banner, every write refused on the page and in the use cases), one account's limits and policies
(24-hour permit, international, TPS, daily cap, dedicated channels), channels (add / edit / disable;
secrets write-only), creating staff users (admin only); each refused server-side for the roles without it."""

from __future__ import annotations

import re

import pytest
from console_helpers import PASSWORD
from test_console_pages import CSRF_RE, NEW_PASSWORD, login

from qixin.errors import QxError
from qixin.services.actor import Actor


def token(text: str) -> str:
    m = CSRF_RE.search(text)
    assert m, text[:300]
    return m[1]


async def audit_rows(running, action: str) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    return await running.platform.staff_users.audit(Actor.cli(), 100, None, action)


async def test_staff_read_only_view_of_a_customer_console(running) -> None:  # type: ignore[no-untyped-def]
    api = running.account(name="被查看的客户")
    users = running.platform.console_users
    await users.create_user(Actor.cli(), api.account_id, "所有者", "13900006001", "owner", PASSWORD)
    await users.create_staff(Actor.cli(), "运维小王", "ops", "13900006002", PASSWORD)
    owner = await login(running, "13900006001")
    staff = await login(running, "13900006002")
    try:
        # the customer has something to look at
        r = await owner.post("/contacts", data={"csrf": token((await owner.get("/contacts")).text), "action": "add",
                                                "number": "13900009001", "name": "客户甲"})  # fmt: skip
        assert "新增 1 个联系人" in r.text
        # before viewing, a staff session has no customer pages
        r = await staff.get("/contacts", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/staff"
        page = await staff.get("/staff/accounts")
        t = token(page.text)
        assert f'id="view-{api.account_id}"' in page.text
        r = await staff.post("/staff/view", data={"csrf": t, "action": "start", "account_id": str(api.account_id)},
                             follow_redirects=False)  # fmt: skip
        assert r.status_code == 303 and r.headers["location"] == "/"
        started = await audit_rows(running, "console.view_start")
        assert len(started) == 1 and started[0]["target"] == f"account:{api.account_id}"
        assert started[0]["actor_type"] == "staff"
        # every customer page reads as the account, under the banner
        for path in ("/", "/records", "/contacts", "/signatures", "/billing", "/keys", "/users", "/optouts",
                     "/send", "/send/file"):  # fmt: skip
            r = await staff.get(path)
            assert r.status_code == 200, (path, r.text[:500])
            assert f"只读查看：账户 {api.account_id}" in r.text, path
        assert "139****9001" in (await staff.get("/contacts")).text
        # every write is refused with a clear message, and nothing changes
        for path, data in (("/contacts", {"action": "add", "number": "13900009002"}),
                           ("/send", {"to": "13900009003", "content": "您好", "signature": "企信"}),
                           ("/keys", {"action": "create"}),
                           ("/users", {"action": "invite", "name": "x", "phone": "13900009004", "role": "viewer",
                                       "password": PASSWORD}),
                           ("/optouts", {"action": "add", "numbers": "13900009005"}),
                           ("/signatures", {"what": "signature", "name": "偷偷申请"})):  # fmt: skip
            r = await staff.post(path, data={"csrf": t, **data})
            assert r.status_code == 403 and "只读查看模式" in r.text, (path, r.text[:400])
        book = await running.platform.addressbook.contacts(Actor.customer(api.account_id, api.app_key))
        assert book["total"] == 1
        assert len(await running.platform.accounts.keys(Actor.customer(api.account_id, api.app_key))) == 1
        assert "偷偷申请" not in str(await running.platform.signatures.listing(Actor.cli()))
        # the use cases refuse that actor too (a route that forgot the check would still change nothing)
        viewer = Actor.staff_view(1, api.account_id)
        with pytest.raises(QxError) as e:
            await running.platform.addressbook.create_group(viewer, "不该有")
        assert e.value.code == "READ_ONLY"
        with pytest.raises(QxError) as e:
            await running.platform.accounts.create_key(viewer)
        assert e.value.code == "READ_ONLY"
        # staff pages still work, with the banner and the way out
        page = await staff.get("/staff/channels")
        assert page.status_code == 200 and "退出只读查看" in page.text
        r = await staff.post("/staff/view", data={"csrf": t, "action": "stop"}, follow_redirects=False)
        assert r.status_code == 303
        stopped = await audit_rows(running, "console.view_stop")
        assert len(stopped) == 1 and stopped[0]["target"] == f"account:{api.account_id}"
        r = await staff.get("/contacts", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/staff"
        assert "只读查看" not in (await staff.get("/staff")).text
        # a customer cannot start a view; an unknown account is NOT_FOUND; no CSRF token, no view
        start = {"csrf": token((await owner.get("/")).text), "action": "start", "account_id": str(api.account_id)}
        r = await owner.post("/staff/view", data=start, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"
        r = await staff.post("/staff/view", data={"csrf": t, "action": "start", "account_id": "999999"})
        assert r.status_code == 400 and "账户不存在" in r.text
        r = await staff.post("/staff/view", data={"action": "start", "account_id": str(api.account_id)})
        assert r.status_code == 403
        assert len(await audit_rows(running, "console.view_start")) == 1
        # logging out while viewing ends the view (audited)
        await staff.post("/staff/view", data={"csrf": t, "action": "start", "account_id": str(api.account_id)})
        await staff.post("/logout", data={"csrf": t})
        assert len(await audit_rows(running, "console.view_stop")) == 2
    finally:
        await owner.aclose()
        await staff.aclose()


async def test_account_limits_policies_and_dedicated_channels(running) -> None:  # type: ignore[no-untyped-def]
    api = running.account(name="策略客户")
    users = running.platform.console_users
    await users.create_staff(Actor.cli(), "管理员", "admin", "13900006011", PASSWORD)
    await users.create_staff(Actor.cli(), "运维", "ops", "13900006012", PASSWORD)
    await users.create_user(Actor.cli(), api.account_id, "所有者", "13900006013", "owner", PASSWORD)
    admin = await login(running, "13900006011")
    ops = await login(running, "13900006012")
    owner = await login(running, "13900006013")
    path = f"/staff/account?id={api.account_id}"
    try:
        page = await admin.get(path)
        assert page.status_code == 200 and "账户设置 · 策略客户" in page.text
        t = token(page.text)
        r = await admin.post(path, data={"csrf": t, "action": "policy", "id": str(api.account_id), "permit_24h": "1",
                                         "international": "1"})  # fmt: skip
        assert r.status_code == 200 and "策略已保存" in r.text
        policy = await running.platform.compliance_desk.policy(Actor.cli(), api.account_id)
        assert policy["permit_24h"] and policy["international"] and not policy["verification_window"]
        r = await admin.post(path, data={"csrf": t, "action": "flow", "id": str(api.account_id), "tps": "5",
                                         "daily_cap": "1000"})  # fmt: skip
        assert "流量控制已保存" in r.text
        assert await running.platform.flow.get(Actor.cli(), api.account_id) == {
            "account_id": api.account_id, "tps": 5, "daily_cap": 1000}  # fmt: skip
        r = await admin.post(path, data={"csrf": t, "action": "flow", "id": str(api.account_id), "tps": "-1"})
        assert r.status_code == 400 and "tps" in r.text
        # dedicated channels: tick the simulator channel, then untick it
        channels = await running.platform.channel_desk.listing(Actor.cli())
        ch = channels[0]
        r = await admin.post(path, data={"csrf": t, "action": "dedicated", "id": str(api.account_id),
                                         "channel": str(ch["id"])})  # fmt: skip
        assert "专属通道已保存（1 个通道有变化）" in r.text and f'id="dedicated-{ch["id"]}" checked' in r.text
        assert (await running.platform.channel_desk.listing(Actor.cli()))[0]["accounts"] == [api.account_id]
        r = await admin.post(path, data={"csrf": t, "action": "dedicated", "id": str(api.account_id)})
        assert "1 个通道有变化" in r.text
        assert (await running.platform.channel_desk.listing(Actor.cli()))[0]["accounts"] == []
        # the changes are audited by the admin
        for action in ("account.policy", "account.flow", "channel.update"):
            rows = await audit_rows(running, action)
            assert rows and rows[0]["actor_type"] == "staff", action
        # ops reads the page but changes no policy or cap (refused in the use case, nothing saved)
        page = await ops.get(path)
        assert page.status_code == 200 and 'id="policy"' not in page.text
        r = await ops.post(path, data={"csrf": token(page.text), "action": "flow", "id": str(api.account_id),
                                       "tps": "0"})  # fmt: skip
        assert r.status_code == 400 and "无权" in r.text
        assert (await running.platform.flow.get(Actor.cli(), api.account_id))["tps"] == 5
        r = await ops.post(path, data={"csrf": token(page.text), "action": "policy", "id": str(api.account_id)})
        assert r.status_code == 400 and "无权" in r.text
        assert (await running.platform.compliance_desk.policy(Actor.cli(), api.account_id))["permit_24h"]
        # customers never reach it
        r = await owner.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"
    finally:
        for h in (admin, ops, owner):
            await h.aclose()


async def test_channels_add_edit_disable_with_write_only_secrets(running) -> None:  # type: ignore[no-untyped-def]
    users = running.platform.console_users
    await users.create_staff(Actor.cli(), "运维", "ops", "13900006021", PASSWORD)
    await users.create_staff(Actor.cli(), "审核员", "reviewer", "13900006022", PASSWORD)
    ops = await login(running, "13900006021")
    reviewer = await login(running, "13900006022")
    secret, option_secret = "Chan-Secret-9f3a", "Opt-Secret-77c1"
    try:
        page = await ops.get("/staff/channels")
        assert page.status_code == 200 and 'id="channel-create"' in page.text
        t = token(page.text)
        form = {"csrf": t, "action": "create", "name": "备用联通", "protocol": "sgip", "host": "127.0.0.1",
                "port": "1", "username": "sp01", "secret": secret, "service_code": "10655", "tps": "50",
                "window": "8", "connections": "1", "priority": "200", "weight": "1", "carriers": "cucc",
                "msg_types": "", "accounts": "",
                "options": '{"node_id": 3001, "smg_password": "' + option_secret + '"}'}  # fmt: skip
        r = await ops.post("/staff/channels", data=form)
        assert r.status_code == 200 and "通道「备用联通」已添加" in r.text, r.text[:800]
        assert secret not in r.text and option_secret not in r.text
        ch = next(c for c in await running.platform.channel_desk.listing(Actor.cli()) if c["name"] == "备用联通")
        assert ch["secret_options"] == ["smg_password"] and ch["options"] == {"node_id": 3001}
        # the edit form never shows a secret back
        page = await ops.get(f"/staff/channels?edit={ch['id']}")
        assert page.status_code == 200 and 'id="channel-edit"' in page.text
        assert secret not in page.text and option_secret not in page.text and "smg_password" in page.text
        # edit: new TPS and options; the password left empty and the secret option not named both stay
        r = await ops.post("/staff/channels", data={"csrf": t, "action": "update", "channel_id": str(ch["id"]),
                                                    "tps": "80", "secret": "", "options": '{"node_id": 3002}',
                                                    "carriers": "cucc,ctcc", "enabled": "1"})  # fmt: skip
        assert r.status_code == 200 and "通道「备用联通」已保存" in r.text, r.text[:800]
        sql = "SELECT secret, options, tps, carriers FROM channels WHERE id = ?"
        stored = await running.platform.db.read(lambda tx: tx.one(sql, (ch["id"],)))
        assert stored[0] == secret and option_secret in stored[1] and '"node_id":3002' in stored[1]
        assert int(stored[2]) == 80 and set(stored[3].split(",")) == {"cucc", "ctcc"}
        # disable, then enable again
        r = await ops.post("/staff/channels", data={"csrf": t, "action": "disable", "channel_id": str(ch["id"])})
        assert "通道「备用联通」已停用" in r.text
        assert not next(c for c in await running.platform.channel_desk.listing(Actor.cli())
                        if c["id"] == ch["id"])["enabled"]  # fmt: skip
        r = await ops.post("/staff/channels", data={"csrf": t, "action": "enable", "channel_id": str(ch["id"])})
        assert "通道「备用联通」已启用" in r.text
        # bad input: a clear message, nothing created
        r = await ops.post("/staff/channels", data={**form, "name": "坏通道", "protocol": "http"})
        assert r.status_code == 400 and "协议必须是" in r.text
        assert "坏通道" not in str(await running.platform.channel_desk.listing(Actor.cli()))
        # no secret in the audit log
        for action in ("channel.create", "channel.update"):
            for row in await audit_rows(running, action):
                assert secret not in row["detail"] and option_secret not in row["detail"], row
        # a reviewer has no channels page (server-side)
        assert (await reviewer.get("/staff/channels")).status_code == 403
        r = await reviewer.post("/staff/channels", data={**form, "csrf": token((await reviewer.get("/staff")).text),
                                                         "name": "审核员的通道"})  # fmt: skip
        assert r.status_code == 403
        assert "审核员的通道" not in str(await running.platform.channel_desk.listing(Actor.cli()))
    finally:
        await ops.aclose()
        await reviewer.aclose()


async def test_admin_creates_staff_users_in_the_console(running) -> None:  # type: ignore[no-untyped-def]
    users = running.platform.console_users
    await users.create_staff(Actor.cli(), "管理员", "admin", "13900006031", PASSWORD)
    await users.create_staff(Actor.cli(), "财务", "finance", "13900006032", PASSWORD)
    admin = await login(running, "13900006031")
    finance = await login(running, "13900006032")
    try:
        page = await admin.get("/staff/users")
        assert page.status_code == 200 and 'id="create-staff"' in page.text
        t = token(page.text)
        new = {"csrf": t, "action": "create", "name": "新审核员", "role": "reviewer", "phone": "13900006033"}
        r = await admin.post("/staff/users", data={**new, "password": "short"})
        assert r.status_code == 400 and "密码不符合要求" in r.text
        r = await admin.post("/staff/users", data={**new, "password": PASSWORD})
        assert r.status_code == 200 and "员工 新审核员 已创建" in r.text, r.text[:800]
        assert re.search(r"<code>qxs_[\w-]+</code>", r.text) and PASSWORD not in r.text
        assert "139****6033" in r.text
        created = await audit_rows(running, "staff.create")
        assert created[0]["actor_type"] == "staff" and PASSWORD not in created[0]["detail"]
        assert "qxs_" not in created[0]["detail"]
        # the new reviewer logs in (SMS code, forced password change) and reaches the review queue only
        newbie = await login(running, "13900006033")
        try:
            assert (await newbie.get("/staff/review")).status_code == 200
            assert (await newbie.get("/staff/users")).status_code == 403
        finally:
            await newbie.aclose()
        # the same phone twice: refused
        r = await admin.post("/staff/users", data={"csrf": t, "action": "create", "name": "重复", "role": "ops",
                                                   "phone": "13900006033", "password": NEW_PASSWORD})  # fmt: skip
        assert r.status_code == 400 and "已是控制台用户" in r.text
        # revoke: the token stops working and the person's console session ends
        staff_id = next(s["staff_id"] for s in await running.platform.staff_users.listing(Actor.cli())
                        if s["name"] == "新审核员")  # fmt: skip
        r = await admin.post("/staff/users", data={"csrf": t, "action": "revoke", "staff_id": str(staff_id)})
        assert f"员工 {staff_id} 已停用" in r.text
        # finance (not admin) is refused server-side, page and form
        assert (await finance.get("/staff/users")).status_code == 403
        r = await finance.post("/staff/users", data={"csrf": token((await finance.get("/staff")).text),
                                                     "action": "create", "name": "越权", "role": "admin",
                                                     "phone": "13900006034", "password": PASSWORD})  # fmt: skip
        assert r.status_code == 403
        assert "越权" not in str(await running.platform.staff_users.listing(Actor.cli()))
        # the audit log page shows these, for the admin only
        audit = await admin.get("/staff/audit?action=staff.create")
        assert audit.status_code == 200 and "staff.create" in audit.text
        assert (await finance.get("/staff/audit")).status_code == 403
    finally:
        await admin.aclose()
        await finance.aclose()
