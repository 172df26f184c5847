"""Message search (GET /v1/sms, GET /admin/messages), exports (CSV streamed, XLSX) and batch reports:
filters, cursor pages stable under inserts, numbers masked by role, tenant isolation, formula escaping."""

from __future__ import annotations

import csv
import io

import httpx
from conftest import Running
from openpyxl import load_workbook

from qixin.services.actor import Actor


async def _send(api, numbers: list[str], **kw) -> dict:  # type: ignore[no-untyped-def]
    r = await api.send(to=numbers, content=kw.pop("content", "您的订单已发货"), **kw)
    assert r.status_code == 200, r.text
    return r.json()


async def test_search_filters_pages_and_isolation(running: Running) -> None:
    a, b = running.account(), running.account(name="另一家")
    first = await _send(a, [f"1390000{i:04d}" for i in range(7)], out_id="order-1")
    await _send(a, ["13800138000"], type="verification", content="您的验证码是123456")
    await _send(b, ["13700137000"])
    await running.wait_final(9)

    page = (await a.get("/v1/sms?limit=3")).json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    seen = [it["id"] for it in page["items"]]
    await _send(a, ["13600136000"])  # a new message does not shift the next page
    while page["next_cursor"]:
        page = (await a.get(f"/v1/sms?limit=3&cursor={page['next_cursor']}")).json()
        seen += [it["id"] for it in page["items"]]
    assert len(seen) == len(set(seen)) == 8  # every one of a's first 8, once; b's never
    assert "13700137000" not in str(seen)

    by_batch = (await a.get(f"/v1/sms?batch_id={first['batch_id']}&limit=100")).json()["items"]
    assert len(by_batch) == 7 and {it["out_id"] for it in by_batch} == {"order-1"}
    assert all("account_id" not in it for it in by_batch)
    one = (await a.get("/v1/sms?number=%2B8613800138000")).json()["items"]
    assert [it["to"] for it in one] == ["13800138000"] and one[0]["type"] == "verification"
    assert (await a.get("/v1/sms?type=verification")).json()["items"][0]["to"] == "13800138000"
    assert (await a.get("/v1/sms?status=delivered&limit=1000")).json()["items"]
    assert (await a.get("/v1/sms?carrier=cmcc&limit=1000")).json()["items"]
    assert (await a.get("/v1/sms?type=bogus")).json()["code"] == "TYPE_INVALID"
    assert (await a.get("/v1/sms?number=abc")).json()["code"] == "NUMBER_INVALID"
    assert (await a.get("/v1/sms?since=2099-01-01")).json()["items"] == []
    # another account's batch: empty, never its content
    assert (await b.get(f"/v1/sms?batch_id={first['batch_id']}")).json()["items"] == []
    assert (await b.get(f"/v1/batches/{first['batch_id']}/report")).json()["code"] == "NOT_FOUND"


async def test_batch_report_lists_every_number_with_its_reason(running: Running) -> None:
    api = running.account()
    sent = await _send(api, [f"1391111{i:04d}" for i in range(5)])
    await running.wait_final(5)
    report = (await api.get(f"/v1/batches/{sent['batch_id']}/report")).json()
    assert report["id"] == sent["batch_id"] and len(report["messages"]) == 5
    assert {m["status"] for m in report["messages"]} <= {"delivered", "undelivered", "expired"}
    failed = [m for m in report["messages"] if m["status"] != "delivered"]
    assert sum(report["failures_by_reason"].values()) == len(failed)
    assert all(m["reason"] for m in failed)


async def test_staff_see_masked_numbers_unless_admin(running: Running) -> None:
    api = running.account()
    await _send(api, ["13800138000"])
    admin = await running.platform.staff_users.create(Actor.cli(), "adm", "admin")
    ops = await running.platform.staff_users.create(Actor.cli(), "op", "ops")
    async with httpx.AsyncClient(base_url=running.base) as http:

        def get(staff: dict, path: str) -> httpx.Response:  # type: ignore[type-arg]
            return http.get(path, headers={"Authorization": f"Bearer {staff['token']}"})

        full = (await get(admin, f"/admin/messages?account_id={api.account_id}")).json()["items"]
        masked = (await get(ops, f"/admin/messages?account_id={api.account_id}")).json()["items"]
        assert full[0]["to"] == "13800138000" and full[0]["account_id"] == api.account_id
        assert masked[0]["to"] == "138****8000"
        csv_text = (await get(ops, f"/admin/exports/messages?account_id={api.account_id}")).text
        assert "138****8000" in csv_text and "13800138000" not in csv_text


async def test_exports_stream_csv_and_xlsx_with_formulas_escaped(running: Running) -> None:
    api = running.account()
    await _send(api, [f"1392222{i:04d}" for i in range(20)], out_id="=cmd|' /C calc'!A0")
    r = await api.get("/v1/exports/messages?format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) == 20 and all(row["out_id"].startswith("'=") for row in rows)
    x = await api.get("/v1/exports/messages?format=xlsx")
    assert x.status_code == 200
    sheet = load_workbook(io.BytesIO(x.content), read_only=True).active
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == 21 and values[0][0] == "id"
    assert (await api.get("/v1/exports/messages?format=pdf")).json()["code"] == "INVALID_REQUEST"
