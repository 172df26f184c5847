"""Customer API over real loopback HTTP, on SQLite and PostgreSQL: send, bill, query, isolate."""

from __future__ import annotations

import asyncio
import time

from conftest import Running

from qixin.services.billing import ledger_sum


async def balance_and_ledger(r: Running, account_id: int) -> tuple[int, int]:
    def q(tx):  # type: ignore[no-untyped-def]
        bal = tx.one("SELECT balance_li FROM accounts WHERE id = ?", (account_id,))[0]
        return int(bal), ledger_sum(tx, account_id)

    return await r.platform.db.read(q)


async def test_single_send_is_billed_submitted_and_delivered(running: Running) -> None:
    api = running.account(balance_li=10_000, price_li=35)
    resp = await api.send(to="+86 138 0013 8000", content="您的验证码是 123456，5 分钟内有效。", type="verification")
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["accepted_count"] == 1 and data["rejected_count"] == 0
    msg = data["accepted"][0]
    assert msg["to"] == "13800138000" and msg["parts"] == 1 and msg["fee_li"] == 35
    assert data["total_fee"] == "0.035"
    await running.wait_final(1)
    got = (await api.get(f"/v1/sms/{msg['id']}")).json()
    assert got["status"] in ("delivered", "undelivered", "expired")
    assert got["carrier"] == "cmcc" and got["channel"] == "smpp-sim"
    assert got["content"].startswith("【企信】您的验证码")
    bal, led = await balance_and_ledger(running, api.account_id)
    assert bal == 10_000 - 35 == led
    acct = (await api.get("/v1/account")).json()
    assert acct["balance_li"] == bal and acct["balance"] == "9.965"


async def test_batch_reports_invalid_and_duplicates_and_bills_only_valid(running: Running) -> None:
    api = running.account(balance_li=10_000, price_li=40)
    numbers = ["13800138000", "8613800138000", "123", "13900139000", "abc", "+8618600186000"]
    data = (await api.send(to=numbers, content="会议改到周五下午三点。")).json()
    assert data["accepted_count"] == 3
    rejected = {(r["to"], r["code"]) for r in data["rejected"]}
    assert rejected == {("123", "NUMBER_INVALID"), ("abc", "NUMBER_INVALID"), ("8613800138000", "NUMBER_DUPLICATE")}
    assert data["total_fee_li"] == 3 * 40
    batch = (await api.get(f"/v1/batches/{data['batch_id']}")).json()
    assert batch["accepted"] == 3 and batch["rejected"] == 3
    assert sum(batch["status_counts"].values()) == 3
    bal, led = await balance_and_ledger(running, api.account_id)
    assert bal == 10_000 - 120 == led


async def test_long_message_billed_per_part(running: Running) -> None:
    api = running.account(balance_li=10_000, price_li=50)
    content = "长" * 70  # with 【企信】 the text is 74 UCS-2 characters: two parts of 67
    data = (await api.send(to="13800138000", content=content)).json()
    assert data["parts"] == 2 and data["total_fee_li"] == 100
    await running.wait_final(1)
    got = (await api.get(f"/v1/sms/{data['accepted'][0]['id']}")).json()
    assert got["parts"] == 2 and got["status"] in ("delivered", "undelivered", "expired")


async def test_refusals_have_stable_codes_and_change_nothing(running: Running) -> None:
    api = running.account(balance_li=100, price_li=35)
    cases = [
        ({"to": "13800138000", "content": "x", "signature": "别人的签名"}, 400, "SIGNATURE_NOT_APPROVED"),
        ({"to": "13800138000", "content": "  "}, 400, "CONTENT_EMPTY"),
        ({"to": "13800138000", "content": "x", "type": "spam"}, 400, "TYPE_INVALID"),
        ({"to": [], "content": "x"}, 400, "NUMBERS_EMPTY"),
        ({"to": ["1", "2"], "content": "x"}, 400, "NO_VALID_NUMBERS"),
        ({"to": "13800138000", "content": "长" * 1000}, 400, "CONTENT_TOO_LONG"),
        ({"to": ["13800138000", "13900139000", "13700137000"], "content": "x"}, 402, "INSUFFICIENT_BALANCE"),
        ({"to": "13800138000", "content": "x", "send_at": "not a date"}, 400, "SEND_AT_INVALID"),
    ]
    for body, status, code in cases:
        resp = await api.send(**body)
        assert resp.status_code == status, (body, resp.text)
        err = resp.json()
        assert err["code"] == code and err["message"], err
    bal, led = await balance_and_ledger(running, api.account_id)
    assert bal == 100 == led
    count = await running.platform.db.read(lambda tx: tx.one("SELECT COUNT(*) FROM messages")[0])
    assert count == 0
    bad = await api.http.post("/v1/sms", content=b"{", headers={"Content-Type": "application/json"})
    assert bad.status_code == 401 and bad.json()["code"] == "AUTH_MISSING"


async def test_two_hundred_concurrent_sends_against_balance_for_one_hundred(running: Running) -> None:
    api = running.account(balance_li=100 * 35, price_li=35)
    results = await asyncio.gather(*(api.send(to=f"138{i:08d}", content="并发测试") for i in range(200)))
    codes = [r.status_code for r in results]
    assert codes.count(200) == 100, codes
    assert codes.count(402) == 100
    assert all(r.json()["code"] == "INSUFFICIENT_BALANCE" for r in results if r.status_code == 402)
    bal, led = await balance_and_ledger(running, api.account_id)
    assert bal == 0 == led


async def test_idempotency_key_replays_and_conflicts(running: Running) -> None:
    api = running.account(balance_li=10_000, price_li=35)
    body = {"to": ["13800138000", "13900139000"], "content": "订单已发货", "idempotency_key": "order-42"}
    first = (await api.send(**body)).json()
    again = (await api.send(**body)).json()
    assert again["batch_id"] == first["batch_id"] and again["replayed"] is True
    assert [m["id"] for m in again["accepted"]] == [m["id"] for m in first["accepted"]]
    conflict = await api.send(**{**body, "content": "另一条"})
    assert conflict.status_code == 409 and conflict.json()["code"] == "IDEMPOTENCY_CONFLICT"
    bal, led = await balance_and_ledger(running, api.account_id)
    assert bal == 10_000 - 70 == led


async def test_scheduled_send_waits_for_its_time(running: Running) -> None:
    api = running.account()
    data = (await api.send(to="13800138000", content="定时提醒", send_at=int(time.time()) + 3600)).json()
    assert data["status"] == "scheduled"
    # a message due now, sent after it, goes through the dispatcher's rounds and reaches a final status
    assert (await api.send(to="13900139000", content="即时提醒")).status_code == 200
    await running.wait_final(1)
    got = (await api.get(f"/v1/sms/{data['accepted'][0]['id']}")).json()
    assert got["status"] == "scheduled" and got["submitted_at"] is None


async def test_tenant_isolation(running: Running) -> None:
    a = running.account(name="甲公司")
    b = running.account(name="乙公司", signature="乙方")
    data = (await a.send(to="13800138000", content="甲方的通知")).json()
    mid, bid = data["accepted"][0]["id"], data["batch_id"]
    assert (await a.get(f"/v1/sms/{mid}")).status_code == 200
    for path in (f"/v1/sms/{mid}", f"/v1/batches/{bid}"):
        resp = await b.get(path)
        assert resp.status_code == 404 and resp.json()["code"] == "NOT_FOUND"
    # b may not use a's signature either
    resp = await b.send(to="13800138000", content="冒用签名", signature="企信")
    assert resp.json()["code"] == "SIGNATURE_NOT_APPROVED"
    assert (await b.get("/v1/account")).json()["account_id"] == b.account_id
