"""Security findings on the compliance routes, through real HTTP on SQLite and PostgreSQL: formula
injection in CSV exports, junk stored as numbers, files left by refused uploads, roles wider than
documented (every compliance route × every role against one table), and verification codes held by
the sending window."""

from __future__ import annotations

import base64
import csv
import io
import itertools
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import Running

from qixin.domain.export import safe_cell
from qixin.services.compliance import usecases
from qixin.services.staff import ROLES, create_staff

INJECTIONS = ["=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1"]


_names = itertools.count()


def staff(r: Running, role: str) -> httpx.AsyncClient:
    name = f"sec-{role}-{next(_names)}"
    out = r.platform.db.write_sync(lambda tx: create_staff(tx, name, role))
    return httpx.AsyncClient(base_url=r.base, headers={"Authorization": f"Bearer {out['token']}"}, timeout=60)


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


# --- CSV formula injection ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", INJECTIONS)
def test_safe_cell_escapes_formula_starts_and_keeps_the_rest(text: str) -> None:
    assert safe_cell(text) == "'" + text
    for harmless in ("13800138000", "企信", "a=b", "", "会员'=1"):
        assert safe_cell(harmless) == harmless
    assert safe_cell(-5) == -5 and safe_cell(None) is None  # numbers are not text: written as they are


def test_every_csv_writer_of_compliance_escapes() -> None:
    rows = [{"number": "13800138000", "reason": bad, "source": "staff", "created_at": 1} for bad in INJECTIONS]
    got = cells(usecases.to_csv(rows, usecases.BLACKLIST_COLUMNS).decode())
    assert [r[1] for r in got[1:]] == ["'" + bad for bad in INJECTIONS]
    report = {"messages": [{"message_id": "1", "content": INJECTIONS[0], "audience": INJECTIONS[3]}]}
    line = cells(usecases.evidence.evidence_csv(report))[1]
    assert "'" + INJECTIONS[0] in line and "'" + INJECTIONS[3] in line


async def test_exports_escape_customer_text(running: Running) -> None:
    api = running.account()
    # the customer's opt-out import: the signature column is their text
    resp = await api.request("POST", "/v1/optouts", {"numbers": ["13800138000"], "signature": "=cmd|' /C calc'!A0"})
    assert resp.status_code == 200, resp.text
    async with staff(running, "admin") as admin:
        resp = await admin.post("/admin/blacklist", json={"numbers": ["13900139000"], "reason": "@SUM(A1)"})
        assert resp.status_code == 200, resp.text
        black = cells((await admin.get("/admin/blacklist", params={"format": "csv"})).text)
        assert black[1][:3] == ["13900139000", "'@SUM(A1)", "staff"]
        mine = (await admin.get(f"/admin/accounts/{api.account_id}/optouts", params={"format": "csv"})).text
        assert cells(mine)[1][:2] == ["13800138000", "'=cmd|' /C calc'!A0"]
        # the audience declared with a batch reaches the evidence report verbatim in JSON, escaped in CSV
        body = {"content": "会员日包邮，回T退订", "type": "marketing", "audience": "+cmd|' /C calc'!A0"}
        data = (await api.send(to="13700137000", **body)).json()
        mid = data["accepted"][0]["id"]
        out = (await admin.post("/admin/complaints", json={"number": "13700137000", "message_id": mid})).json()
        assert out["evidence"]["messages"][0]["audience"] == "+cmd|' /C calc'!A0"
        ev = (await admin.get(f"/admin/complaints/{out['complaint_id']}/evidence", params={"format": "csv"})).text
        header, row = cells(ev)[:2]
        assert row[header.index("audience")] == "'+cmd|' /C calc'!A0"


# --- junk stored as numbers ------------------------------------------------------------------------------


JUNK = ["' OR '1'='1", "1380013\n8000", "13800", "abc", "=1+1"]


async def test_imports_store_only_numbers_and_report_rejected_rows(running: Running) -> None:
    api = running.account()
    async with staff(running, "admin") as admin:
        resp = await admin.post("/admin/blacklist", json={"numbers": ["13800138000", *JUNK, "+86 139 0013 9000"]})
        data = resp.json()
        assert resp.status_code == 200 and data["added"] == 2, data
        assert [r["row"] for r in data["rejected"]] == [2, 3, 4, 5, 6]
        assert {r["reason"] for r in data["rejected"]} == {"不是有效的手机号码", "含有换行"}
        listed = (await admin.get("/admin/blacklist")).json()["blacklist"]
        assert sorted(x["number"] for x in listed) == ["13800138000", "13900139000"]
        # CSV: a quoted cell with a line break, an SQL-looking cell; rows are the CSV's line numbers
        text = "number\n13700137000\n\"1370013\n7001\"\n' OR '1'='1\n"
        data = (await admin.post(f"/admin/accounts/{api.account_id}/optouts", json={"csv": text})).json()
        assert data["added"] == 1 and [r["row"] for r in data["rejected"]] == [3, 4], data
        # a complaint about something that is not a number stores nothing and blacklists nothing
        bad = await admin.post("/admin/complaints", json={"number": "' OR '1'='1"})
        assert bad.status_code == 400 and bad.json()["code"] == "NUMBER_INVALID"
        assert (await admin.get("/admin/complaints")).json()["complaints"] == []
        removed = (await admin.post("/admin/blacklist/remove", json={"numbers": ["abc", "13800138000"]})).json()
        assert removed["removed"] == 1 and [r["row"] for r in removed["rejected"]] == [1]
    data = (await api.request("POST", "/v1/optouts", {"numbers": [*JUNK, "13600136000"]})).json()
    assert data["added"] == 1 and len(data["rejected"]) == len(JUNK)
    stored = (await api.get("/v1/optouts")).json()["optouts"]
    assert sorted(o["number"] for o in stored) == ["13600136000", "13700137000"]


# --- refused uploads leave no file -------------------------------------------------------------------------


async def test_upload_to_another_accounts_signature_writes_no_file(running: Running) -> None:
    owner = running.account(name="甲")
    other = running.account(name="乙")
    sid = (await owner.request("POST", "/v1/signatures", {"name": "甲签名"})).json()["id"]
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"1" * 64).decode()
    resp = await other.request("POST", f"/v1/signatures/{sid}/documents", {"filename": "a.png", "content_base64": png})
    assert resp.status_code == 404 and resp.json()["code"] == "NOT_FOUND"
    documents = running.platform.settings.data_dir / "documents"
    assert not documents.exists() or not any(p.is_file() for p in documents.rglob("*"))
    ok = await owner.request("POST", f"/v1/signatures/{sid}/documents", {"filename": "a.png", "content_base64": png})
    assert ok.status_code == 201, ok.text
    assert [p.parent.name for p in documents.rglob("*.png")] == [str(owner.account_id)]


# --- roles: every compliance route × every role -------------------------------------------------------------

ADMIN = {"admin"}
REVIEW = {"admin", "reviewer"}
# (method, path) -> the roles allowed; everyone else must get FORBIDDEN
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("GET", "/admin/accounts/{account_id}/policy"): REVIEW,
    ("PUT", "/admin/accounts/{account_id}/policy"): ADMIN,
    ("POST", "/admin/accounts/{account_id}/freeze"): ADMIN,
    ("POST", "/admin/accounts/{account_id}/unfreeze"): ADMIN,
    ("GET", "/admin/violations"): REVIEW,
    ("GET", "/admin/blacklist"): REVIEW,
    ("POST", "/admin/blacklist"): REVIEW,
    ("POST", "/admin/blacklist/remove"): REVIEW,
    ("GET", "/admin/accounts/{account_id}/optouts"): REVIEW,
    ("POST", "/admin/accounts/{account_id}/optouts"): REVIEW,
    ("GET", "/admin/lexicon"): REVIEW,
    ("GET", "/admin/lexicon/categories"): REVIEW,
    ("GET", "/admin/lexicon/versions"): REVIEW,
    ("POST", "/admin/lexicon/changes"): REVIEW,
    ("POST", "/admin/lexicon/check"): REVIEW,
    ("POST", "/admin/complaints"): REVIEW,
    ("GET", "/admin/complaints"): REVIEW,
    ("GET", "/admin/complaints/{complaint_id}/evidence"): REVIEW,
    ("POST", "/admin/signatures/{signature_id}/suspend"): REVIEW,
    ("GET", "/admin/signatures/{signature_id}/documents"): REVIEW,
    ("GET", "/admin/documents/{document_id}"): REVIEW,
    ("GET", "/admin/reviews"): REVIEW,
    ("GET", "/admin/reviews/{batch_id}"): REVIEW,
    ("POST", "/admin/reviews/{batch_id}/approve"): REVIEW,
    ("POST", "/admin/reviews/{batch_id}/reject"): REVIEW,
}
BODIES: dict[str, dict[str, Any]] = {
    "/admin/accounts/{account_id}/policy": {"permit_24h": True, "international": True},
    "/admin/accounts/{account_id}/freeze": {"reason": "矩阵"},
    "/admin/accounts/{account_id}/unfreeze": {},
    "/admin/blacklist": {"numbers": ["13800138000"]},
    "/admin/blacklist/remove": {"numbers": ["13800138000"]},
    "/admin/accounts/{account_id}/optouts": {"numbers": ["13800138000"]},
    "/admin/lexicon/changes": {"allow_add": ["矩阵短语"]},
    "/admin/lexicon/check": {"content": "会议通知"},
    "/admin/complaints": {"number": "13800138000"},
    "/admin/signatures/{signature_id}/suspend": {"reason": "矩阵"},
    "/admin/reviews/{batch_id}/approve": {},
    "/admin/reviews/{batch_id}/reject": {"reason": "矩阵"},
}


async def test_every_compliance_route_for_every_role(running: Running) -> None:
    spec = (await httpx.AsyncClient(base_url=running.base).get("/openapi.json")).json()
    routes = {
        (method.upper(), path): op
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if "admin: compliance" in op.get("tags", [])
    }
    assert set(routes) == set(EXPECTED)  # a new route must be given its roles here
    api = running.account()
    ids = {
        "account_id": str(api.account_id),
        "signature_id": "999999",
        "document_id": "999999",
        "complaint_id": "999999",
        "batch_id": "999999",
    }
    clients = {role: staff(running, role) for role in ROLES}
    try:
        for (method, path), allowed in EXPECTED.items():
            url = path.format(**ids)
            body = BODIES.get(path) if method != "GET" else None
            for role, client in clients.items():
                resp = await client.request(method, url, json=body)
                if role in allowed:
                    assert resp.status_code not in (401, 403) and resp.status_code < 500, (
                        method,
                        path,
                        role,
                        resp.text,
                    )
                else:
                    assert resp.status_code == 403 and resp.json()["code"] == "FORBIDDEN", (method, path, role)
    finally:
        for c in clients.values():
            await c.aclose()
    for op in routes.values():  # every route documents the refusal it can give
        assert "FORBIDDEN" in op["responses"]["403"]["description"]
    policy_body = routes[("PUT", "/admin/accounts/{account_id}/policy")]["requestBody"]["content"]
    assert "verification_window" in policy_body["application/json"]["schema"]["properties"]
    # a refused change changed nothing: only the admin's policy write is there
    async with staff(running, "admin") as admin:
        pol = (await admin.get(f"/admin/accounts/{api.account_id}/policy")).json()
        assert pol["permit_24h"] is True
        actions = [e["action"] for e in (await admin.get("/admin/audit")).json()["entries"]]
        assert actions.count("account.policy") == 1 and actions.count("account.freeze") == 1


# --- verification codes and the sending window ------------------------------------------------------------


async def test_verification_codes_go_out_at_night_unless_the_policy_holds_them(running: Running) -> None:
    night = int(datetime(2027, 6, 1, 15, 30, tzinfo=UTC).timestamp() * 1000)  # 23:30 Beijing
    running.platform.compliance.with_settings(sending_windows=True)
    running.platform.compliance.clock = lambda: night
    next_8 = int(datetime(2027, 6, 2, 0, 0, tzinfo=UTC).timestamp() * 1000)  # 08:00 Beijing next day
    api = running.account()
    code = {"content": "您的验证码是 123456", "type": "verification"}
    data = (await api.send(to="13800138000", **code)).json()
    assert data["status"] == "queued" and "deferred_to" not in data, data
    # notifications still wait for 08:00
    assert (await api.send(to="13800138001", content="您的快递已到")).json()["deferred_to"] == next_8
    async with staff(running, "admin") as admin:
        pol = (await admin.put(f"/admin/accounts/{api.account_id}/policy", json={"verification_window": True})).json()
        assert pol["verification_window"] is True
    data = (await api.send(to="13800138002", **code)).json()
    assert data["status"] == "scheduled" and data["deferred_to"] == next_8


async def test_bodies_are_checked_after_authentication_with_clear_codes(running: Running) -> None:
    resp = await httpx.AsyncClient(base_url=running.base).post("/admin/blacklist", content=b"{not json")
    assert resp.status_code == 401 and resp.json()["code"] == "STAFF_AUTH_REQUIRED"  # who first, then what
    async with staff(running, "admin") as admin:
        bad = await admin.post("/admin/blacklist", content=b"{not json")
        assert bad.json()["code"] == "INVALID_JSON"
        wrong = await admin.put("/admin/accounts/1/policy", json={"permit_24h": "yes"})
        assert wrong.json()["code"] == "INVALID_REQUEST" and "permit_24h" in wrong.json()["message"]
        shape = await admin.post("/admin/lexicon/changes", json={"add": [{"word": "x"}]})
        assert shape.json()["code"] == "LEXICON_INVALID" and "category" in shape.json()["message"]
        missing = await admin.post("/admin/accounts/1/freeze", json={})
        assert missing.json()["code"] == "INVALID_REQUEST" and "reason" in missing.json()["message"]
