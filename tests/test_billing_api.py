"""Billing over real HTTP on SQLite and PostgreSQL: concurrent sends from many clients against the last parts
of a package and the last yuan never overspend; the finance staff API and the customer's billing API."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
import openpyxl
from conftest import Api, Running
from test_admin import staff_client

from qixin.domain.calendar import period_bounds, period_of
from qixin.domain.signing import signed_headers
from qixin.services import billing, statements
from qixin.services.accounts import issue_key
from qixin.store.db import now_ms


async def signed_get(api: Api, path: str, **params: Any) -> httpx.Response:
    query = [(k, str(v)) for k, v in params.items()]
    headers = signed_headers(api.app_key, api.secret, "GET", path, b"", query=query)
    return await api.http.get(path, params=query, headers=headers)


async def test_concurrent_sends_from_many_clients_never_overspend_package_or_balance(running: Running) -> None:
    first = running.account(balance_li=5 * 35, price_li=35)
    acct = first.account_id
    db = running.platform.db
    pkg = db.write_sync(lambda tx: billing.grant_package(tx, acct, "term", 5, "last-five"))
    clients = [first]
    for _ in range(5):
        app_key, secret = db.write_sync(lambda tx: issue_key(tx, acct))
        api = Api(running.base, app_key, secret, acct)
        running.clients.append(api)
        clients.append(api)
    sends = [clients[i % len(clients)].send(to=f"139{i:08d}", content="并发扣费测试") for i in range(48)]
    results = await asyncio.gather(*sends)
    codes = [r.status_code for r in results]
    assert codes.count(200) == 10, [r.text for r in results if r.status_code != 402][:3]
    assert codes.count(402) == 38
    assert sum(r.json()["package_parts"] for r in results if r.status_code == 200) == 5
    assert sum(r.json()["total_fee_li"] for r in results if r.status_code == 200) == 5 * 35

    def state(tx: Any) -> tuple[int, int, dict[str, Any]]:
        bal = int(tx.one("SELECT balance_li FROM accounts WHERE id = ?", (acct,))[0])
        left = int(tx.one("SELECT remaining_parts FROM packages WHERE id = ?", (pkg["id"],))[0])
        return bal, left, billing.verify(tx)

    bal, left, verify = await db.read(state)
    assert bal == 0 and left == 0 and verify["ok"], verify


async def test_finance_api_and_customer_billing_api(running: Running) -> None:
    api = running.account(balance_li=10_000, price_li=35)
    acct = api.account_id
    async with staff_client(running, "finance") as fin, staff_client(running, "ops", "ops-b") as ops:
        assert (await ops.get(f"/admin/billing/accounts/{acct}")).status_code == 403
        resp = await fin.put(f"/admin/billing/accounts/{acct}/settings",
                             json={"min_topup": "2000", "min_first_topup": "5000", "low_balance": "5",
                                   "billing_email": "bill@example.com"})  # fmt: skip
        assert resp.status_code == 200, resp.text
        assert resp.json()["min_first_topup_li"] == 5_000_000
        small = await fin.post(f"/admin/billing/accounts/{acct}/topups", json={"amount": "100", "ref": "t1"})
        assert small.status_code == 400 and small.json()["code"] == "TOPUP_BELOW_MINIMUM"
        op = await fin.post(f"/admin/billing/accounts/{acct}/topups",
                            json={"amount": "100", "ref": "t1", "operator": True})  # fmt: skip
        assert op.status_code == 201 and op.json()["balance_li"] == 110_000
        plan = await fin.post(
            f"/admin/billing/accounts/{acct}/price-plans",
            json={"price": "0.04", "carrier": "cmcc", "effective_at": "2020-01-01T00:00:00"},
        )
        assert plan.json()["code"] == "INVALID_REQUEST"  # never retroactive
        plan = await fin.post(f"/admin/billing/accounts/{acct}/price-plans", json={"price": "0.04", "carrier": "cmcc"})
        assert plan.status_code == 201 and plan.json()["price_li"] == 40
        pk = await fin.post(f"/admin/billing/accounts/{acct}/packages",
                            json={"kind": "year", "parts": 300000, "ref": "y1", "name": "年包"})  # fmt: skip
        assert pk.status_code == 201 and pk.json()["remaining_parts"] == 300_000
        rule = await fin.post("/admin/billing/refund-rules", json={"kind": "stat", "code": "UNDELIV"})
        assert rule.status_code == 201
        assert (await fin.delete(f"/admin/billing/refund-rules/{rule.json()['id']}")).status_code == 200
        assert (await fin.get("/admin/billing/verify")).json()["ok"] is True
        not_yet = await fin.post("/admin/billing/statements", json={"period": period_of(now_ms())})
        assert not_yet.json()["code"] == "STATEMENT_NOT_READY"
        audit = (await staff_client(running, "admin", "root").get("/admin/audit")).json()["entries"]
        assert {"billing.settings", "account.topup", "billing.price_plan", "billing.package"} <= {
            e["action"] for e in audit
        }

    # the customer's side
    sent = (await api.send(to=["13800138000", "18600186000"], content="账单提醒")).json()
    assert sent["package_parts"] == 2 and sent["total_fee_li"] == 0
    bal = (await api.get("/v1/billing/balance")).json()
    assert bal["balance_li"] == 110_000 and bal["package_parts"] == 299_998 and bal["balance_expires_at"]
    pkgs = (await api.get("/v1/billing/packages")).json()["packages"]
    assert pkgs[0]["kind"] == "year" and pkgs[0]["remaining_parts"] == 299_998
    page = (await signed_get(api, "/v1/billing/ledger", limit=1)).json()
    assert len(page["entries"]) == 1 and page["entries"][0]["kind"] == "topup" and page["next_before_id"]
    rest = (await signed_get(api, "/v1/billing/ledger", limit=10, before_id=page["next_before_id"])).json()
    assert [e["kind"] for e in rest["entries"]] == ["topup"] and rest["next_before_id"] is None
    prices = (await api.get("/v1/billing/prices")).json()["prices"]
    cmcc = next(p for p in prices if p["carrier"] == "cmcc" and p["type"] == "notification" and p["product"] == "sms")
    assert cmcc["price_li"] == 40
    notes = (await api.get("/v1/billing/notifications")).json()["notifications"]
    assert notes[0]["kind"] == "price_change"

    # statements: issue the current month as if it had ended, then read, download and dispute it
    period = period_of(now_ms())
    _, end = period_bounds(period)
    sid = running.platform.db.write_sync(lambda tx: statements.issue(tx, acct, period, now=end))
    listed = (await api.get("/v1/statements")).json()["statements"]
    assert [s["id"] for s in listed] == [sid]
    xlsx = await api.get(f"/v1/statements/{sid}/xlsx")
    assert xlsx.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert {r[0]: r[1] for r in wb["对账单"].iter_rows(values_only=True)}["账期"] == period
    other = running.account(name="别家")
    assert (await other.get(f"/v1/statements/{sid}")).status_code == 404
    disputed = await api.request("POST", f"/v1/statements/{sid}/dispute", {"reason": "套餐用量不符"})
    assert disputed.status_code == 200 and disputed.json()["status"] == "disputed"
    again = await api.request("POST", f"/v1/statements/{sid}/confirm", {})
    assert again.status_code == 409 and again.json()["code"] == "STATEMENT_NOT_DISPUTABLE"
