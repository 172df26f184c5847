"""The staff API: bearer tokens, roles, review, top-ups, and the audit log."""

from __future__ import annotations

import httpx
from conftest import Running

from qixin.services.staff import create_staff


def staff_client(r: Running, role: str, name: str | None = None) -> httpx.AsyncClient:
    out = r.platform.db.write_sync(lambda tx: create_staff(tx, name or f"{role}-user", role))
    return httpx.AsyncClient(base_url=r.base, headers={"Authorization": f"Bearer {out['token']}"})


async def test_tokens_and_roles(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base) as anon:
        resp = await anon.get("/admin/accounts")
        assert resp.status_code == 401 and resp.json()["code"] == "STAFF_AUTH_REQUIRED"
        resp = await anon.get("/admin/accounts", headers={"Authorization": "Bearer nope"})
        assert resp.json()["code"] == "STAFF_TOKEN_INVALID"
    async with staff_client(running, "ops") as ops:
        assert (await ops.get("/admin/accounts")).status_code == 200
        resp = await ops.post("/admin/accounts/1/topup", json={"amount": "10", "ref": "x"})
        assert resp.status_code == 403 and resp.json()["code"] == "FORBIDDEN"
        assert (await ops.get("/admin/audit")).status_code == 403


async def test_admin_creates_account_finance_tops_up_and_audit_records_it(running: Running) -> None:
    async with staff_client(running, "admin") as admin, staff_client(running, "finance") as finance:
        resp = await admin.post(
            "/admin/accounts", json={"name": "丙公司", "signature": "丙方", "balance": "1.5", "price": "0.04"}
        )
        assert resp.status_code == 201, resp.text
        acct = resp.json()
        assert acct["app_key"].startswith("qx") and acct["app_secret"]
        resp = await finance.post(f"/admin/accounts/{acct['account_id']}/topup", json={"amount": "2.345", "ref": "r1"})
        assert resp.json()["balance_li"] == 3845 and resp.json()["balance"] == "3.845"
        # the same reference is credited once only
        again = await finance.post(f"/admin/accounts/{acct['account_id']}/topup", json={"amount": "2.345", "ref": "r1"})
        assert again.status_code == 409 and again.json()["code"] == "TOPUP_DUPLICATE"
        bad = await finance.post(f"/admin/accounts/{acct['account_id']}/topup", json={"amount": "0.0001", "ref": "r2"})
        assert bad.status_code == 400 and bad.json()["code"] == "INVALID_REQUEST"
        entries = (await admin.get("/admin/audit")).json()["entries"]
        actions = [e["action"] for e in entries]
        assert "account.create" in actions and actions.count("account.topup") == 1
        assert all("app_secret" not in e["detail"] for e in entries)


async def test_customer_applies_signature_and_template_reviewer_decides(running: Running) -> None:
    api = running.account()
    resp = await api.request("POST", "/v1/signatures", {"name": "新品牌"})
    assert resp.status_code == 201
    sid = resp.json()["id"]
    resp = await api.send(to="13800138000", content="你好", signature="新品牌")
    assert resp.json()["code"] == "SIGNATURE_NOT_APPROVED"
    async with staff_client(running, "reviewer") as reviewer:
        pending = (await reviewer.get("/admin/signatures", params={"status": "pending"})).json()["signatures"]
        assert [s["id"] for s in pending] == [sid]
        assert (await reviewer.post(f"/admin/signatures/{sid}/approve")).status_code == 200
        resp = await reviewer.post("/admin/templates/999/reject", json={"reason": "x"})
        assert resp.status_code == 404
        missing_reason = await reviewer.post(f"/admin/signatures/{sid}/reject", json={})
        assert missing_reason.status_code == 400
    resp = await api.send(to="13800138000", content="你好", signature="新品牌")
    assert resp.status_code == 200, resp.text
    sigs = (await api.get("/v1/signatures")).json()["signatures"]
    assert {s["name"]: s["status"] for s in sigs} == {"企信": "approved", "新品牌": "approved"}
