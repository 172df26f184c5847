"""Maintenance announcements (services/announcements.py, c003 5.8): staff publish over HTTP, the affected
accounts get a signed webhook event at their callback URL (a real local receiver) and an email (a real
SMTP sink); customers list only the ones addressed to them; late incident notices are flagged."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import MailInbox as Inbox
from conftest import Receiver, Running

from qixin.services.actor import Actor
from qixin.services.notify import Notifier, Smtp
from qixin.services.staff import create_staff
from qixin.store.db import now_ms


@pytest.fixture
def smtp(mail_sink: tuple[int, Inbox]) -> tuple[Smtp, Inbox]:
    port, box = mail_sink
    return Smtp(host="127.0.0.1", port=port, sender="noc@qixin.test"), box


async def until(pred: Callable[[], Any], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def staff(r: Running, role: str) -> httpx.AsyncClient:
    out = r.platform.db.write_sync(lambda tx: create_staff(tx, f"{role}-员工", role))
    return httpx.AsyncClient(base_url=r.base, headers={"Authorization": f"Bearer {out['token']}"})


async def test_announcement_reaches_the_affected_accounts_only(
    running: Running, receiver: tuple[Receiver, str], smtp: tuple[Smtp, Inbox]
) -> None:
    r, (rec, url), (mail, box) = running, receiver, smtp
    a = r.account(name="甲方", callback_url=url)
    b = r.account(name="乙方", callback_url=url)
    c = r.account(name="丙方")
    rec.secrets.update({a.app_key: a.secret, b.app_key: b.secret})
    await r.platform.billing.update_settings(Actor.cli(), a.account_id, {"alert_email": "ops@a.test"})
    starts = now_ms() // 1000 + 86_400
    async with staff(r, "ops") as ops, staff(r, "finance") as finance:
        body = {"kind": "maintenance", "title": "CMPP 网关升级", "body": "届时移动通道暂停 30 分钟。",
                "starts_at": starts, "ends_at": starts + 1800, "accounts": [a.account_id, c.account_id]}  # fmt: skip
        assert (await finance.post("/admin/announcements", json=body)).status_code == 403
        bad = await ops.post("/admin/announcements", json={**body, "kind": "party"})
        assert bad.status_code == 400 and bad.json()["code"] == "INVALID_REQUEST"
        bad = await ops.post("/admin/announcements", json={**body, "accounts": [a.account_id, 999_999]})
        assert bad.status_code == 404
        resp = await ops.post("/admin/announcements", json=body)
        assert resp.status_code == 201, resp.text
        ann = resp.json()
        assert ann["notified_accounts"] == 2 and ann["accounts"] == sorted([a.account_id, c.account_id])
        assert ann["late"] is False and ann["starts_at"] == starts * 1000
        everyone = await ops.post("/admin/announcements", json={
            "kind": "incident", "title": "联通通道故障", "body": "已恢复。", "starts_at": now_ms() // 1000 - 30 * 3600,
        })  # fmt: skip
        assert everyone.status_code == 201 and everyone.json()["late"] is True  # told 30 h after it began
        assert everyone.json()["accounts"] == "all"

        # the signed webhook event reaches the account's callback URL (a's; b is told only of the incident)
        await until(lambda: len([e for e in rec.events if e.get("type") == "announcement"]) >= 3)
        got = sorted((e["title"], e["id"]) for e in rec.events if e.get("type") == "announcement")
        assert got == sorted([("CMPP 网关升级", ann["id"]), ("联通通道故障", everyone.json()["id"]),
                              ("联通通道故障", everyone.json()["id"])])  # fmt: skip
        assert rec.bad_signatures == 0
        # and the email to the account's alert address (the notice worker delivers it)
        await Notifier(r.platform.db, mail).deliver_once()
        subjects = sorted(m[1]["Subject"] for m in box.messages if m[0] == ["ops@a.test"])
        assert subjects == ["【故障通告】联通通道故障", "【维护公告】CMPP 网关升级"]

        # customers list only what addresses them
        mine = (await a.get("/v1/announcements")).json()["announcements"]
        assert [x["title"] for x in mine] == ["联通通道故障", "CMPP 网关升级"]
        assert "accounts" not in mine[0] and "created_by" not in mine[0]
        theirs = (await b.get("/v1/announcements")).json()["announcements"]
        assert [x["title"] for x in theirs] == ["联通通道故障"]
        # the notice record too (GET /v1/billing/notifications)
        notes = (await c.get("/v1/billing/notifications")).json()
        assert any("CMPP 网关升级" in str(n) for n in notes["notifications"])

        # withdrawn: gone for customers, kept for staff; edits are audited
        resp = await ops.patch(f"/admin/announcements/{ann['id']}", json={"ends_at": starts + 3600})
        assert resp.status_code == 200 and resp.json()["ends_at"] == (starts + 3600) * 1000
        assert (await ops.delete(f"/admin/announcements/{ann['id']}")).json()["status"] == "withdrawn"
        assert [x["title"] for x in (await a.get("/v1/announcements")).json()["announcements"]] == ["联通通道故障"]
        staff_view = (await ops.get("/admin/announcements", params={"include_withdrawn": "true"})).json()
        assert len(staff_view["announcements"]) == 2
        assert len((await ops.get("/admin/announcements")).json()["announcements"]) == 1
    audit = await r.platform.db.read(
        lambda tx: tx.all("SELECT action FROM audit_log WHERE target = ?", (f"announcement:{ann['id']}",))
    )
    assert [x[0] for x in audit] == ["announcement.publish", "announcement.update", "announcement.update"]
