"""Template sends: typed variables rendered, the template's category decides the message type."""

from __future__ import annotations

from conftest import Running

from qixin.services.accounts import add_template, review


async def test_template_send_renders_typed_variables(running: Running) -> None:
    api = running.account(balance_li=10_000, price_li=35, allow_free_text=False)

    def setup(tx):  # type: ignore[no-untyped-def]
        tid = add_template(
            tx, api.account_id, "登录验证码", "verification", "您的验证码是${code}，${minutes}分钟内有效。",
            {"code": "code", "minutes": "number"},
        )  # fmt: skip
        review(tx, "templates", tid, True)
        return tid

    tid = running.platform.db.write_sync(setup)
    # free text is refused for this account
    resp = await api.send(to="13800138000", content="随便写点什么")
    assert resp.status_code == 403 and resp.json()["code"] == "FREE_TEXT_FORBIDDEN"
    resp = await api.send(to="13800138000", template_id=str(tid), params={"code": "482913", "minutes": 5})
    assert resp.status_code == 200, resp.text
    mid = resp.json()["accepted"][0]["id"]
    got = (await api.get(f"/v1/sms/{mid}")).json()
    assert got["content"] == "【企信】您的验证码是482913，5分钟内有效。"
    assert got["type"] == "verification"
    bad = await api.send(to="13800138000", template_id=str(tid), params={"code": "12", "minutes": 5})
    assert bad.status_code == 400 and bad.json()["code"] == "TEMPLATE_PARAM_INVALID"
    missing = await api.send(to="13800138000", template_id=str(tid), params={"code": "482913"})
    assert missing.json()["code"] == "TEMPLATE_PARAM_MISSING"
    unknown = await api.send(to="13800138000", template_id="424242", params={})
    assert unknown.json()["code"] == "TEMPLATE_NOT_APPROVED"


async def test_pending_template_cannot_be_used(running: Running) -> None:
    api = running.account()
    body = {"name": "发货通知", "category": "notification", "content": "您的订单${order}已发货"}
    resp = await api.request("POST", "/v1/templates", {**body, "variables": {"order": "text"}})
    assert resp.status_code == 201
    tid = resp.json()["id"]
    assert (await api.get(f"/v1/templates/{tid}")).json()["status"] == "pending"
    resp = await api.send(to="13800138000", template_id=tid, params={"order": "A1"})
    assert resp.json()["code"] == "TEMPLATE_NOT_APPROVED"
