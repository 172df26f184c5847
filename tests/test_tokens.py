"""Privacy numbers (recipient tokens): send, receipt, webhook, MO, records, search, export and batch report
show the token, never the real number; expired, unknown and foreign tokens are refused per entry;
compliance applies to the real number; staff with numbers.read resolve a token (audited)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from conftest import Receiver, Running
from test_admin import staff_client

from qixin.services.channels import extension_of
from qixin.store.db import now_ms

REAL = "13912345678"
BLOCKED = "13987654321"


async def _wait(cond: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_tokens_end_to_end_the_real_number_appears_nowhere_the_customer_reads(
    running: Running, receiver: tuple[Receiver, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rec, url = receiver
    api = running.account(callback_url=url)
    rec.secrets[api.app_key] = api.secret
    other = running.account(name="别家")
    seen: list[str] = []  # every text the customer could read

    async def call(method: str, path: str, body: Any = None) -> Any:
        resp = await api.request(method, path, body)
        seen.append(resp.text)
        return resp

    made = (await call("POST", "/v1/tokens", {"number": REAL, "ttl_seconds": 3600})).json()
    tk = made["token"]
    assert tk.startswith("tk_") and made["expires_at"] > now_ms()
    blocked = (await call("POST", "/v1/tokens", {"number": BLOCKED, "ttl_seconds": 3600})).json()["token"]
    expired = (await call("POST", "/v1/tokens", {"number": "13911112222", "ttl_seconds": 60})).json()["token"]
    foreign = (await other.request("POST", "/v1/tokens", {"number": "13933334444", "ttl_seconds": 60})).json()["token"]
    db = running.platform.db
    db.write_sync(lambda tx: tx.execute("UPDATE recipient_tokens SET expires_at = ? WHERE token = ?", (1, expired)))
    db.write_sync(
        lambda tx: tx.execute(
            "INSERT INTO blacklist (number, reason, source, created_at) VALUES (?, '', 'staff', 0)", (BLOCKED,)
        )
    )
    bad = await call("POST", "/v1/tokens", {"number": "12345", "ttl_seconds": 60})
    assert bad.json()["code"] == "NUMBER_INVALID"
    assert (await call("POST", "/v1/tokens", {"number": REAL, "ttl_seconds": 5})).json()["code"] == "INVALID_REQUEST"

    sent = await call("POST", "/v1/sms", {"to": [tk, "tk_unknown", expired, foreign, blocked, "13800000001"],
                                          "content": "您的订单已发货", "signature": "企信"})  # fmt: skip
    data = sent.json()
    assert data["accepted_count"] == 2, data
    assert [a["to"] for a in data["accepted"]] == [tk, "13800000001"]
    codes = {r["to"]: r["code"] for r in data["rejected"]}
    assert codes == {"tk_unknown": "TOKEN_UNKNOWN", expired: "TOKEN_EXPIRED", foreign: "TOKEN_UNKNOWN",
                     blocked: "BLACKLISTED"}  # fmt: skip
    # the real number went to the carrier and was billed like any other
    mid = next(a["id"] for a in data["accepted"] if a["to"] == tk)
    number, token = db.read_sync(lambda tx: tx.one("SELECT number, token FROM messages WHERE id = ?", (int(mid),)))
    assert (number, token) == (REAL, tk)
    await running.wait_final(2)
    await _wait(lambda: _true(len(rec.events) >= 2))

    # an MO reply from the real number reaches the customer with the token
    ext = db.write_sync(lambda tx: extension_of(tx, api.account_id))
    sim = running.runtime.simulator
    assert sim is not None
    await sim.send_mo("86" + REAL, "10690000" + ext, "收到，谢谢")
    await _wait(lambda: _true(any(e["type"] == "mo" for e in rec.events)))
    mo = next(e for e in rec.events if e["type"] == "mo")
    assert mo["from"] == tk and mo["content"] == "收到，谢谢"
    receipt = next(e for e in rec.events if e["type"] == "receipt" and e["id"] == mid)
    assert receipt["to"] == tk

    got = (await call("GET", f"/v1/sms/{mid}")).json()
    assert got["to"] == tk
    found = (await call("GET", f"/v1/sms?number={tk}")).json()
    assert [x["id"] for x in found["items"]] == [mid]
    by_real = (await call("GET", f"/v1/sms?number={REAL}")).json()
    assert by_real["items"] == []  # searching by the number does not confirm the token
    report = (await call("GET", f"/v1/batches/{data['batch_id']}/report")).json()
    assert tk in [m["to"] for m in report["messages"]]
    csv = await call("GET", "/v1/exports/messages?format=csv")
    assert tk in csv.text
    await call("GET", "/v1/exports/messages?format=xlsx")
    seen.append(orjson.dumps(rec.events).decode())
    for real in (REAL, BLOCKED, REAL[:3] + "****" + REAL[-4:]):
        assert all(real not in text for text in seen), real
    platform_log = "\n".join(
        r.getMessage()
        for r in caplog.records
        if not r.name.startswith(("httpx", "httpcore"))  # the test's client
    )
    assert REAL not in platform_log and BLOCKED not in platform_log

    # staff who may read numbers resolve a token, audited; other roles may not
    async with staff_client(running, "admin") as admin, staff_client(running, "ops") as ops:
        assert (await ops.get(f"/admin/tokens/{tk}")).json()["code"] == "FORBIDDEN"
        out = (await admin.get(f"/admin/tokens/{tk}")).json()
        assert out["number"] == REAL and out["account_id"] == api.account_id
        assert (await admin.get("/admin/tokens/tk_nope")).json()["code"] == "NOT_FOUND"
    audit = db.read_sync(lambda tx: tx.all("SELECT action, detail FROM audit_log WHERE action LIKE 'tokens.%'"))
    assert ("tokens.resolve" in [a for a, _ in audit]) and all(REAL not in d for _, d in audit)


async def test_a_token_whose_number_is_already_in_the_request_is_a_duplicate(running: Running) -> None:
    api = running.account()
    tk = (await api.request("POST", "/v1/tokens", {"number": REAL, "ttl_seconds": 600})).json()["token"]
    tk2 = (await api.request("POST", "/v1/tokens", {"number": REAL, "ttl_seconds": 600})).json()["token"]
    data = (await api.send(to=[tk, tk2], content="测试")).json()
    assert [a["to"] for a in data["accepted"]] == [tk]
    assert data["rejected"] == [{"to": tk2, "code": "NUMBER_DUPLICATE", "message": "号码重复"}]
    assert REAL not in orjson.dumps(data).decode()


async def _true(value: bool) -> bool:
    return value
