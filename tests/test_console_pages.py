"""The web console over real HTTP (no browser): login forms with CSRF, cookies, every page renders for the
roles that may see it and is refused server-side for the others."""

from __future__ import annotations

import re

import httpx
from console_helpers import PASSWORD, codes_received, wait_code

from qixin.services.actor import Actor

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
NEW_PASSWORD = "Console-Pass-2027"


async def login(running, phone: str, password: str = PASSWORD) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    """A client logged in as ``phone`` (password changed when the console asks for it)."""
    http = httpx.AsyncClient(base_url=running.base, timeout=30)
    page = await http.get("/login")
    assert page.status_code == 200
    seen = codes_received(running.runtime, phone)
    r = await http.post("/login", data={"csrf": CSRF_RE.search(page.text)[1], "phone": phone, "password": password})
    assert r.status_code == 303 and r.headers["location"] == "/login/code", r.text
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie  # plain HTTP here
    code_page = await http.get("/login/code")
    code = await wait_code(running.runtime, phone, seen)
    r = await http.post("/login/code", data={"csrf": CSRF_RE.search(code_page.text)[1], "code": code})
    assert r.status_code == 303, r.text
    if r.headers["location"] == "/password":
        form = await http.get("/password")
        r = await http.post(
            "/password",
            data={"csrf": CSRF_RE.search(form.text)[1], "old": password, "new": NEW_PASSWORD, "again": NEW_PASSWORD},
        )
        assert r.status_code == 303, r.text
    return http


async def test_customer_pages_roles_and_csrf(running) -> None:  # type: ignore[no-untyped-def]
    api = running.account()
    users = running.platform.console_users
    await users.create_user(Actor.cli(), api.account_id, "所有者", "13900001001", "owner", PASSWORD)
    await users.create_user(Actor.cli(), api.account_id, "只读", "13900001002", "viewer", PASSWORD)
    owner = await login(running, "13900001001")
    viewer = await login(running, "13900001002")
    try:
        for path in ("/", "/send", "/records", "/signatures", "/billing", "/keys", "/users"):
            r = await owner.get(path)
            assert r.status_code == 200, (path, r.text[:500])
            assert "content-security-policy" in r.headers
        assert "chart-days" in (await owner.get("/")).text
        # a viewer: no send page, no keys, no users, no billing — refused by the server, not just hidden
        for path in ("/send", "/keys", "/users", "/billing"):
            r = await viewer.get(path)
            assert r.status_code == 403 and "无权访问" in r.text, path
        assert (await viewer.get("/records")).status_code == 200
        page = await viewer.get("/records")
        token = CSRF_RE.search(page.text)[1]
        sms = {"to": "13900009999", "content": "你好", "signature": "企信"}
        r = await viewer.post("/send", data={"csrf": token, **sms})
        assert r.status_code == 403
        # the owner sends one message from the send page
        form = await owner.get("/send")
        token = CSRF_RE.search(form.text)[1]
        r = await owner.post(
            "/send", data={"csrf": token, "to": "13900009999", "content": "控制台测试", "signature": "企信"}
        )
        assert r.status_code == 200 and "已提交 1 条" in r.text, r.text[:800]
        # without the CSRF token, or with another session's, nothing is sent
        r = await owner.post("/send", data={"to": "13900009999", "content": "无令牌", "signature": "企信"})
        assert r.status_code == 403 and "CSRF" in r.text
        r = await owner.post("/send", data={"csrf": CSRF_RE.search(page.text)[1], **sms})
        assert r.status_code == 403
        await running.wait_final(1)
        # a staff page is not a customer's
        assert (await owner.get("/staff/review")).headers["location"] == "/"
        # log out: the cookie no longer opens pages
        r = await owner.post("/logout", data={"csrf": token})
        assert r.status_code == 303
        assert (await owner.get("/")).headers["location"] == "/login"
    finally:
        await owner.aclose()
        await viewer.aclose()


async def test_login_form_refusals(running) -> None:  # type: ignore[no-untyped-def]
    api = running.account()
    users = running.platform.console_users
    await users.create_user(Actor.cli(), api.account_id, "甲", "13900001003", "owner", PASSWORD)
    async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        r = await http.post("/login", data={"phone": "13900001003", "password": PASSWORD})  # no login-page token
        assert r.status_code == 403 and "CSRF" in r.text
        page = await http.get("/login")
        r = await http.post("/login", data={"csrf": CSRF_RE.search(page.text)[1], "phone": "13900001003",
                                             "password": "Wrong-Pass-999"})  # fmt: skip
        assert r.status_code == 401 and "手机号或密码错误" in r.text
        assert (await http.get("/")).headers["location"] == "/login"


async def test_staff_pages(running) -> None:  # type: ignore[no-untyped-def]
    users = running.platform.console_users
    await users.create_staff(Actor.cli(), "管理员", "admin", "13900002001", PASSWORD)
    await users.create_staff(Actor.cli(), "运维", "ops", "13900002002", PASSWORD)
    running.account()
    admin = await login(running, "13900002001")
    ops = await login(running, "13900002002")
    try:
        for path in ("/staff", "/staff/review", "/staff/accounts", "/staff/channels", "/staff/audit", "/staff/users"):
            r = await admin.get(path)
            assert r.status_code == 200, (path, r.text[:500])
        assert "smpp-sim" in (await admin.get("/staff/channels")).text
        assert "console.login" in (await admin.get("/staff/audit")).text
        assert (await ops.get("/staff/channels")).status_code == 200
        for path in ("/staff/review", "/staff/audit", "/staff/users"):
            assert (await ops.get(path)).status_code == 403, path
        assert (await admin.get("/")).headers["location"] == "/staff"  # customer pages are not staff's
    finally:
        await admin.aclose()
        await ops.aclose()


async def test_cookies_are_secure_over_tls(running) -> None:  # type: ignore[no-untyped-def]
    from qixin.api.app import asgi_app

    transport = httpx.ASGITransport(app=asgi_app(running.platform))
    async with httpx.AsyncClient(transport=transport, base_url="https://console.test") as http:
        r = await http.get("/login")
        cookie = r.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


async def test_rotation_reminder_and_lock_expiry(running) -> None:  # type: ignore[no-untyped-def]
    api = running.account()
    users = running.platform.console_users
    out = await users.create_user(Actor.cli(), api.account_id, "老用户", "13900001004", "owner", PASSWORD)
    http = await login(running, "13900001004")
    try:
        assert "超过 90 天" not in (await http.get("/")).text
        uid = out["user_id"]
        await running.platform.db.write(
            lambda tx: tx.execute("UPDATE console_users SET password_changed_at = 0 WHERE id = ?", (uid,))
        )
        assert "超过 90 天" in (await http.get("/")).text  # a reminder, the page still opens
    finally:
        await http.aclose()
    # a lock ends by itself when its time has passed
    await running.platform.db.write(
        lambda tx: tx.execute("UPDATE console_users SET locked_until = 1 WHERE id = ?", (out["user_id"],))
    )
    assert (await users.login("13900001004", NEW_PASSWORD, None)).token


async def test_staff_create_top_up_freeze_and_review_reason(running) -> None:  # type: ignore[no-untyped-def]
    users = running.platform.console_users
    await users.create_staff(Actor.cli(), "管理员", "admin", "13900002003", PASSWORD)
    admin = await login(running, "13900002003")
    try:
        page = await admin.get("/staff/accounts")
        token = CSRF_RE.search(page.text)[1]
        form = {"csrf": token, "action": "create", "name": "新客户", "signature": "新签名", "balance": "10",
                "price": "0.04"}  # fmt: skip
        r = await admin.post("/staff/accounts", data=form)
        assert r.status_code == 200 and "已创建" in r.text and "AppSecret" in r.text, r.text[:800]
        account_id = int(re.search(r"账户 (\d+) 已创建", r.text)[1])  # type: ignore[index]
        r = await admin.post("/staff/accounts", data={"csrf": token, "action": "topup", "account_id": account_id,
                                                      "amount": "5.5"})  # fmt: skip
        assert "已充值" in r.text
        assert (await running.platform.accounts.get(Actor.cli(), account_id))["balance_li"] == 15_500
        r = await admin.post("/staff/accounts", data={"csrf": token, "action": "freeze", "account_id": account_id,
                                                      "reason": ""})  # fmt: skip
        assert r.status_code == 400 and "冻结须填写原因" in r.text
        r = await admin.post("/staff/accounts", data={"csrf": token, "action": "freeze", "account_id": account_id,
                                                      "reason": "测试"})  # fmt: skip
        assert (await running.platform.accounts.get(Actor.cli(), account_id))["status"] == "frozen"
        # a template rejected with a reason: the customer sees the reason
        customer = Actor.console_user(0, account_id, "owner")
        t = await running.platform.templates.apply(customer, "营销", "notification", "您好，欢迎光临。", {})
        r = await admin.post("/staff/review", data={"csrf": token, "what": "template", "id": t["id"],
                                                    "decision": "reject", "reason": ""})  # fmt: skip
        assert r.status_code == 400 and "驳回须填写原因" in r.text
        r = await admin.post("/staff/review", data={"csrf": token, "what": "template", "id": t["id"],
                                                    "decision": "reject", "reason": "内容不完整"})  # fmt: skip
        assert "已驳回" in r.text
        got = await running.platform.templates.get(customer, t["id"])
        assert got["status"] == "rejected" and got["reason"] == "内容不完整"
        audit = (await admin.get("/staff/audit")).text
        assert "account.freeze" in audit
        assert "account.topup" in audit
    finally:
        await admin.aclose()
