"""Compliance through the real HTTP API, on SQLite and PostgreSQL: every refusal names its rule and is
neither sent nor billed; opt-out by MO through the SMPP simulator; lexicon versions applied without
restart; freezing; complaints with the evidence report."""

from __future__ import annotations

import asyncio
import base64
import itertools
from datetime import UTC, datetime
from typing import Any

import httpx
from conftest import Api, Running

from qixin.domain.signing import signed_headers
from qixin.services.channels import extension_of
from qixin.services.staff import create_staff

_names = itertools.count()
NOON = int(datetime(2026, 6, 1, 4, 0, tzinfo=UTC).timestamp() * 1000)  # 12:00 Beijing


def strict(r: Running, clock_ms: int = NOON) -> None:
    """The platform defaults (the test profile of conftest turns windows and ranges off)."""
    r.platform.compliance.with_settings(sending_windows=True, max_number_run=20)
    r.platform.compliance.clock = lambda: clock_ms


def staff(r: Running, role: str = "reviewer") -> httpx.AsyncClient:
    name = f"{role}-{next(_names)}"
    out = r.platform.db.write_sync(lambda tx: create_staff(tx, name, role))
    return httpx.AsyncClient(base_url=r.base, headers={"Authorization": f"Bearer {out['token']}"})


async def balance(r: Running, api: Api) -> int:
    return int(
        await r.platform.db.read(
            lambda tx: tx.one("SELECT balance_li FROM accounts WHERE id = ?", (api.account_id,))[0]
        )
    )


def codes(data: dict[str, Any]) -> dict[str, str]:
    return {x["to"]: x["code"] for x in data["rejected"]}


async def test_content_refusals_name_the_rule_change_nothing_and_are_recorded(running: Running) -> None:
    strict(running)
    api = running.account(balance_li=10_000)
    cases = [
        ({"content": "今日股　票　推　荐，速来"}, "CONTENT_FORBIDDEN", {"word": "股票推荐", "category": "stocks"}),
        ({"content": "新开ｃａｓｉｎｏ"}, "CONTENT_FORBIDDEN", {"category": "gambling"}),
        ({"content": "欢迎光临★本店"}, "CONTENT_SPECIAL_CHAR", {"character": "★"}),
        ({"content": "新品上市", "type": "marketing", "audience": "会员"}, "UNSUBSCRIBE_MISSING", {}),
        ({"content": "您好 123456", "type": "verification"}, "VERIFICATION_KEYWORD_MISSING", {}),
        ({"content": "新品上市，回T退订", "type": "marketing"}, "AUDIENCE_REQUIRED", {}),
    ]
    for body, code, detail in cases:
        resp = await api.send(to="13800138000", **body)
        assert resp.status_code == 400, resp.text
        data = resp.json()
        assert data["code"] == code, data
        assert detail.items() <= data.items(), data
    # the allow-list: a public-service warning is not gambling promotion
    ok = await api.send(to="13800138000", content="警方提示：远离赌博，珍爱家庭。")
    assert ok.status_code == 200, ok.text
    assert await balance(running, api) == 10_000 - 35
    async with staff(running) as reviewer:
        found = (await reviewer.get("/admin/violations", params={"account_id": api.account_id})).json()["violations"]
        assert {v["code"] for v in found} >= {"CONTENT_FORBIDDEN", "CONTENT_SPECIAL_CHAR", "UNSUBSCRIBE_MISSING"}
        assert any(v["content"] == "【企信】今日股　票　推　荐，速来" for v in found)
        # links: refused by the account's policy, allow-listed domains only
        resp = await reviewer.put(
            f"/admin/accounts/{api.account_id}/policy",
            json={"link_policy": "allowlist", "allowed_domains": ["example.cn"]},
        )
        assert resp.status_code == 200 and resp.json()["link_policy"] == "allowlist"
    bad = await api.send(to="13800138000", content="详情见 t.cn/abc")
    assert bad.status_code == 400 and bad.json()["code"] == "LINK_FORBIDDEN" and bad.json()["link"] == "t.cn/abc"
    good = await api.send(to="13800138000", content="详情见 https://m.example.cn/x")
    assert good.status_code == 200, good.text


async def test_staff_freeze_and_automatic_freeze(running: Running) -> None:
    strict(running)
    running.platform.compliance.with_settings(freeze_after=3)
    api = running.account()
    async with staff(running) as reviewer:
        assert (
            await reviewer.post(f"/admin/accounts/{api.account_id}/freeze", json={"reason": "投诉"})
        ).status_code == 200
        resp = await api.send(to="13800138000", content="会议通知")
        assert resp.status_code == 403 and resp.json()["code"] == "ACCOUNT_FROZEN"
        assert (await reviewer.post(f"/admin/accounts/{api.account_id}/unfreeze", json={})).status_code == 200
        assert (await api.send(to="13800138000", content="会议通知")).status_code == 200
    answers = [(await api.send(to="13800138000", content=f"赌博{i}")).json() for i in range(3)]
    assert [a["code"] for a in answers] == ["CONTENT_FORBIDDEN"] * 3
    assert answers[-1].get("account_frozen") is True and "account_frozen" not in answers[0]
    resp = await api.send(to="13800138000", content="会议通知")
    assert resp.status_code == 403 and resp.json()["code"] == "ACCOUNT_FROZEN"
    async with staff(running, "admin") as admin:
        actions = [(e["action"], e["actor_type"]) for e in (await admin.get("/admin/audit")).json()["entries"]]
        assert ("account.freeze", "system") in actions and ("account.freeze", "staff") in actions


async def test_sending_window_defers_and_permit(running: Running) -> None:
    night = int(datetime(2027, 6, 1, 15, 30, tzinfo=UTC).timestamp() * 1000)  # 23:30 Beijing
    strict(running, night)
    api = running.account()
    next_8 = int(datetime(2027, 6, 2, 0, 0, tzinfo=UTC).timestamp() * 1000)  # 08:00 Beijing next day
    data = (await api.send(to="13800138000", content="您的快递已到")).json()
    assert data["status"] == "scheduled" and data["deferred_to"] == next_8
    due = await running.platform.db.read(
        lambda tx: tx.one(
            "SELECT q.due_at FROM dispatch_queue q WHERE q.message_id = ?", (int(data["accepted"][0]["id"]),)
        )
    )
    assert due[0] == next_8
    async with staff(running) as reviewer:
        await reviewer.put(f"/admin/accounts/{api.account_id}/policy", json={"permit_24h": True})
    data = (await api.send(to="13800138001", content="您的快递已到")).json()
    assert data["status"] == "queued" and "deferred_to" not in data
    # marketing keeps 09:00–20:00 whatever the permit
    data = (await api.send(to="13800138002", content="新品上市，回T退订", type="marketing", audience="老客户")).json()
    assert data["deferred_to"] == next_8 + 3600_000


async def test_numbers_ranges_international_blacklist_not_billed(running: Running) -> None:
    strict(running)
    api = running.account(balance_li=100_000, price_li=10)
    run = [str(13900000000 + i) for i in range(21)]
    async with staff(running) as reviewer:
        resp = await reviewer.post("/admin/blacklist", json={"csv": "number\n13700137000\n", "reason": "投诉人"})
        assert resp.json()["added"] == 1
        exported = await reviewer.get("/admin/blacklist", params={"format": "csv"})
        assert exported.headers["content-type"].startswith("text/csv") and "13700137000" in exported.text
    data = (await api.send(to=[*run, "13800138000", "13700137000", "+14155550100"], content="会议通知")).json()
    got = codes(data)
    assert {got[n] for n in run} == {"NUMBER_RANGE_FORBIDDEN"}
    assert got["13700137000"] == "BLACKLISTED" and got["+14155550100"] == "INTERNATIONAL_NOT_ALLOWED"
    assert data["accepted_count"] == 1 and data["total_fee_li"] == 10
    assert await balance(running, api) == 100_000 - 10
    # a run of exactly 20 is allowed
    data = (await api.send(to=run[:20], content="会议通知")).json()
    assert data["accepted_count"] == 20


async def test_optout_by_mo_through_the_smpp_simulator(running: Running) -> None:
    strict(running)
    api = running.account()
    ext = running.platform.db.write_sync(lambda tx: extension_of(tx, api.account_id))
    await running.runtime.simulator.send_mo("8613800138000", "10690000" + ext, "TD")
    await running.runtime.simulator.send_mo("8613900139000", "10690000" + ext, "你好")
    for _ in range(200):
        out = (await api.get("/v1/optouts")).json()
        if out["count"]:
            break
        await asyncio.sleep(0.05)
    assert [(o["number"], o["source"]) for o in out["optouts"]] == [("13800138000", "mo")]
    body = {"content": "新品上市，回T退订", "type": "marketing", "audience": "会员"}
    data = (await api.send(to=["13800138000", "13900139000"], **body)).json()
    assert codes(data) == {"13800138000": "OPTED_OUT"} and data["accepted_count"] == 1
    # opt-out blocks marketing only
    assert (await api.send(to="13800138000", content="您的订单已发货")).json()["accepted_count"] == 1
    # import and CSV export
    resp = await api.request("POST", "/v1/optouts", {"numbers": ["13600136000", "+86 136 0013 6001"]})
    assert resp.json()["added"] == 2
    headers = signed_headers(api.app_key, api.secret, "GET", "/v1/optouts", b"", query=[("format", "csv")])
    csv_text = (await api.http.get("/v1/optouts", params={"format": "csv"}, headers=headers)).text
    assert "13600136001" in csv_text and csv_text.startswith("\ufeffnumber,")


async def test_frequency_limit_counts_only_accepted(running: Running) -> None:
    strict(running)
    api = running.account(balance_li=50, price_li=35)
    first = await api.send(to="13800138000", content="您的验证码是 123456", type="verification")
    assert first.json()["accepted_count"] == 1
    second = (await api.send(to="13800138000", content="您的验证码是 654321", type="verification")).json()
    assert second["code"] == "NO_VALID_NUMBERS" and codes(second) == {"13800138000": "RATE_LIMITED"}
    # refused for money: the attempt does not use up the number's allowance
    broke = await api.send(to="13900139000", content="您的验证码是 123456", type="verification")
    assert broke.json()["code"] == "INSUFFICIENT_BALANCE"
    gate = running.platform.compliance.gate
    from qixin.services.compliance.ratelimit import parse_limit

    minute = parse_limit("1/minute")[0]
    assert gate.remaining(minute, "vc", str(api.account_id), "企信", "13900139000") == 1
    assert gate.remaining(minute, "vc", str(api.account_id), "企信", "13800138000") == 0


async def test_lexicon_versions_apply_without_restart(running: Running) -> None:
    strict(running)
    api = running.account()
    assert (await api.send(to="13800138000", content="本周特惠青蛙跳跳糖")).status_code == 200
    async with staff(running) as reviewer:
        resp = await reviewer.post(
            "/admin/lexicon/changes", json={"add": [{"word": "青蛙跳跳糖", "category": "other"}], "note": "新增"}
        )
        assert resp.status_code == 201, resp.text
        v = resp.json()["version"]
        bad = await reviewer.post("/admin/lexicon/changes", json={"add": [{"word": "x", "category": "nope"}]})
        assert bad.json()["code"] == "LEXICON_INVALID"
        refused = await api.send(to="13800138000", content="本周特惠青 蛙 跳 跳 糖")
        assert refused.json()["code"] == "CONTENT_FORBIDDEN" and refused.json()["category"] == "other"
        resp = await reviewer.post("/admin/lexicon/changes", json={"allow_add": ["青蛙跳跳糖果"]})
        assert resp.json()["version"] == v + 1
        assert (await api.send(to="13800138000", content="青蛙跳跳糖果上市")).status_code == 200
        versions = (await reviewer.get("/admin/lexicon/versions")).json()["versions"]
        assert [x["version"] for x in versions][:3] == [v + 1, v, v - 1]
        check = (await reviewer.post("/admin/lexicon/check", json={"content": "青蛙跳跳糖"})).json()
        assert not check["ok"] and check["version"] == v + 1


async def test_complaint_blacklists_and_reports_evidence(running: Running) -> None:
    strict(running)
    api = running.account()
    body = {"content": "会员日全场包邮，回T退订", "type": "marketing", "audience": "近90天下单的会员"}
    data = (await api.send(to=["13800138000", "13900139000"], **body)).json()
    mid = next(a["id"] for a in data["accepted"] if a["to"] == "13800138000")
    await running.wait_final(2)
    async with staff(running) as reviewer:
        resp = await reviewer.post(
            "/admin/complaints", json={"number": "13800138000", "message_id": mid, "note": "12321"}
        )
        assert resp.status_code == 201, resp.text
        report = resp.json()["evidence"]
        [m] = report["messages"]
        assert m["message_id"] == mid and m["audience"] == "近90天下单的会员" and m["batch_size"] == 2
        assert m["content"] == "【企信】会员日全场包邮，回T退订" and m["status"] in (
            "delivered",
            "undelivered",
            "expired",
        )
        cid = resp.json()["complaint_id"]
        csv_resp = await reviewer.get(f"/admin/complaints/{cid}/evidence", params={"format": "csv"})
        assert "近90天下单的会员" in csv_resp.text and mid in csv_resp.text
    again = (await api.send(to=["13800138000", "13900139000"], content="您的订单已发货")).json()
    assert codes(again) == {"13800138000": "BLACKLISTED"}


async def test_signature_and_template_applications_follow_review_rules(running: Running) -> None:
    api = running.account()
    bad = await api.request("POST", "/v1/signatures", {"name": "【坏 签名】"})
    assert bad.status_code == 400 and bad.json()["code"] == "SIGNATURE_NAME_INVALID"
    resp = await api.request("POST", "/v1/signatures", {"name": "好签名", "purpose": "会员通知"})
    sid = resp.json()["id"]
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 100).decode()
    up = await api.request("POST", f"/v1/signatures/{sid}/documents", {"filename": "执照.png", "content_base64": png})
    assert up.status_code == 201, up.text
    notpdf = await api.request(
        "POST",
        f"/v1/signatures/{sid}/documents",
        {"filename": "a.exe", "content_base64": base64.b64encode(b"MZ").decode()},
    )
    assert notpdf.json()["code"] == "DOCUMENT_INVALID"
    tpl = {"name": "验证", "category": "verification", "content": "您的登录码是${code}", "variables": {"code": "code"}}
    resp = await api.request("POST", "/v1/templates", tpl)
    assert resp.json()["code"] == "TEMPLATE_REVIEW_FAILED"
    assert resp.json()["violations"][0]["code"] == "TEMPLATE_CODE_KEYWORD_MISSING"
    async with staff(running) as reviewer:
        app = (await reviewer.get(f"/admin/signatures/{sid}/documents")).json()
        assert app["purpose"] == "会员通知" and app["documents"][0]["filename"] == "执照.png"
        doc = await reviewer.get(f"/admin/documents/{app['documents'][0]['id']}")
        assert doc.content.startswith(b"\x89PNG")
        await reviewer.post(f"/admin/signatures/{sid}/approve")
        running.platform.directory.invalidate()
        assert (await api.send(to="13800138000", content="你好", signature="好签名")).status_code == 200
        await reviewer.post(f"/admin/signatures/{sid}/suspend", json={"reason": "投诉较多"})
    resp = await api.send(to="13800138000", content="你好", signature="好签名")
    assert resp.json()["code"] == "SIGNATURE_NOT_APPROVED"
