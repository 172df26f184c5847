"""Tenant isolation everywhere (invariant I4), generated from the route table.

Every customer route (``/v1``) that takes an id in its path is called by account B with an object of
account A: the answer must be the same refusal as for an id that does not exist at all (same status,
same code), so a refusal never reveals whether another account's object exists. A new route with a path
parameter this test does not know how to fill fails the test until it is added to ``OBJECTS``.

The console's routes with an id (statements, file-send jobs, the staff complaint pages) are walked from the
app's route table (they are not in OpenAPI): a console user of account B gets the very page an id that
exists nowhere gets. Staff-only /admin routes are refused by role in tests/test_api_security.py's matrix.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import httpx
from conftest import Api, Running
from console_helpers import PASSWORD
from test_console_pages import CSRF_RE, login

from qixin.api.app import create_api
from qixin.domain.calendar import previous_period
from qixin.services import statements
from qixin.services.actor import Actor
from qixin.services.compliance.evidence import record_complaint
from qixin.services.filejobs import JobOptions
from qixin.services.pricing import create_plan
from qixin.store.db import now_ms

NONEXISTENT = "987654321987"


async def _objects(running: Running, a: Api) -> dict[str, str]:
    sent = (await a.send(to=["13800138000"], content="您的订单已发货")).json()
    template = {"name": "t", "category": "notification", "content": "订单${n}已发货", "variables": {"n": "text:20"}}
    tpl = await a.request("POST", "/v1/templates", template)
    sig = await a.request("POST", "/v1/signatures", {"name": "隔离测试"})
    sid = await running.platform.db.write(
        lambda tx: statements.issue(tx, a.account_id, previous_period(now_ms()), now=now_ms())
    )
    # number services (docs/numbers.md): a check, a check job and an interception test of account A
    running.platform.db.write_sync(lambda tx: create_plan(tx, a.account_id, "numcheck", 10))
    actor = Actor.customer(a.account_id, a.app_key)
    check = await running.platform.numbers.check(actor, ["13800138000"])
    ncjob = await running.platform.numcheck_jobs.submit(actor, "n.txt", b"13800138000\n")
    flash = await running.platform.flash_tests.create(actor, "闪测", "企信")
    job = await running.platform.filejobs.create(
        Actor.customer(a.account_id, a.app_key), None, b"13800138001\n", "x.txt", JobOptions(content="文件发送")
    )
    return {
        "check_id": check["check_id"], "check_job_id": ncjob["job_id"], "test_id": flash["id"], "cls": "real",
        "message_id": sent["accepted"][0]["id"], "batch_id": sent["batch_id"], "template_id": str(tpl.json()["id"]),
        "signature_id": str(sig.json()["id"]), "statement_id": str(sid), "fmt": "csv", "job_id": job["job_id"],
    }  # fmt: skip


BODIES: dict[tuple[str, str], Any] = {
    ("post", "/v1/statements/{statement_id}/dispute"): {"reason": "金额不符"},
    ("post", "/v1/signatures/{signature_id}/documents"): {
        "filename": "license.pdf",
        "content_type": "application/pdf",
        "content_base64": base64.b64encode(b"%PDF-1.4 test").decode(),
    },
}


async def test_no_route_reveals_another_accounts_objects(running: Running) -> None:
    a, b = running.account(), running.account(name="乙方")
    objects = await _objects(running, a)
    spec = (await b.http.get("/openapi.json")).json()
    tried = 0
    for path, ops in spec["paths"].items():
        if not path.startswith("/v1/") or "{" not in path:
            continue
        for method in ops:
            params = [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]
            unknown = [p for p in params if p not in objects]
            assert not unknown, f"{method.upper()} {path}: add a way to make {unknown} to this test"
            theirs = path.format(**objects)
            missing = path.format(**{p: ("csv" if p == "fmt" else NONEXISTENT) for p in params})
            body = BODIES.get((method, path))
            got = await b.request(method.upper(), theirs, body)
            none = await b.request(method.upper(), missing, body)
            assert got.status_code in (403, 404), (method, path, got.status_code, got.text)
            assert (got.status_code, got.json()["code"]) == (none.status_code, none.json()["code"]), (method, path)
            # and the owner does reach it (the ids are real), except where the action itself is refused
            mine = await a.request(method.upper(), theirs, body)
            assert mine.status_code < 400 or mine.json()["code"] not in ("NOT_FOUND", "FORBIDDEN"), (path, mine.text)
            tried += 1
    assert tried >= 9


# -- the web console ------------------------------------------------------------------------------------------


def console_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every console route taking an id: walked from the app's route table (FastAPI keeps
    an included router as one entry wrapping the original), not from OpenAPI (console pages are not in it)."""
    out: list[tuple[str, str]] = []

    def walk(routes: Any, prefix: str = "") -> None:
        for r in routes:
            inner = getattr(r, "original_router", None)
            if inner is not None:
                walk(inner.routes, prefix + (getattr(r, "prefix", "") or ""))
                continue
            path = prefix + str(getattr(r, "path", ""))
            if "{" in path and not path.startswith(("/v1/", "/admin", "/console-static")):
                out.extend((m, path) for m in sorted(getattr(r, "methods", None) or ()) if m != "HEAD")

    walk(app.routes)
    return out


_TITLE_RE = re.compile(r"<title>([^<]*)</title>|<h1[^>]*>([^<]*)</h1>")


def _refusal(resp: httpx.Response) -> tuple[int, str, str]:
    """What a refusal shows: status, where it sends the user, and the page's title and heading."""
    heads = "|".join(a or b for a, b in _TITLE_RE.findall(resp.text))
    return resp.status_code, resp.headers.get("location", ""), heads


def _page(text: str, ids: list[str]) -> str:
    for value in ids:
        if len(value) >= 4:  # a short id ("1") would match the page's own markup
            text = text.replace(value, "ID")
    return CSRF_RE.sub("csrf", text)


async def test_no_console_route_reveals_another_accounts_objects(running: Running) -> None:
    """Every console route with an id in its path, generated from the route table: a user of account B
    asking for account A's object gets exactly the refusal an id that exists nowhere gets (status, redirect,
    page title and heading); A's own user reaches it. Staff-only pages refuse a customer the same way for a
    real and a made-up id. A new route whose parameter this test cannot fill fails it."""
    a, b = running.account(), running.account(name="乙方")
    objects = await _objects(running, a)
    complaint = await running.platform.db.write(
        lambda tx: record_complaint(tx, "13800138000", None, "隔离测试", "test")
    )
    objects["complaint_id"] = str(complaint["complaint_id"])
    doc = await a.request("POST", f"/v1/signatures/{objects['signature_id']}/documents",
                          BODIES[("post", "/v1/signatures/{signature_id}/documents")])  # fmt: skip
    objects["document_id"] = str(doc.json()["id"])  # a staff-only download (/staff/documents/{id})
    users = running.platform.console_users
    await users.create_user(Actor.cli(), a.account_id, "甲", "13900007001", "owner", PASSWORD)
    await users.create_user(Actor.cli(), b.account_id, "乙", "13900007002", "owner", PASSWORD)
    owner_a, owner_b = await login(running, "13900007001"), await login(running, "13900007002")
    routes = console_routes(create_api(running.platform))
    assert len(routes) >= 6, routes  # statements, file-send jobs (page, progress, cancel), complaints
    try:
        token_b = CSRF_RE.search((await owner_b.get("/records")).text)[1]  # type: ignore[index]
        token_a = CSRF_RE.search((await owner_a.get("/records")).text)[1]  # type: ignore[index]
        for method, path in routes:
            params = [seg.split("}")[0] for seg in path.split("{")[1:]]
            unknown = [p for p in params if p not in objects]
            assert not unknown, f"{method} {path}: add a way to make {unknown} to this test"
            theirs = path.format(**objects)
            missing = path.format(**{p: ("csv" if p == "fmt" else NONEXISTENT) for p in params})

            async def call(http: httpx.AsyncClient, url: str, token: str, m: str = method) -> httpx.Response:
                if m == "POST":
                    return await http.post(url, data={"csrf": token})
                return await http.get(url)

            got, none = await call(owner_b, theirs, token_b), await call(owner_b, missing, token_b)
            assert got.status_code in (303, 403, 404), (method, path, got.status_code, got.text[:500])
            assert _refusal(got) == _refusal(none), (method, path, _refusal(got), _refusal(none))
            # and the whole page is the same, once the id asked for and the form tokens are set aside
            ids = [objects[p] for p in params if p != "fmt"]
            assert _page(got.text, ids) == _page(none.text, [NONEXISTENT]), (method, path)
            assert objects["job_id"] not in got.text and "隔离测试" not in got.text
            if not path.startswith("/staff/"):  # the owner's user reaches its own object (the action itself
                mine = await call(owner_a, theirs, token_a)  # may be refused: a finished job cannot be cancelled)
                assert mine.status_code in (200, 303, 400), (method, path, mine.status_code, mine.text[:500])
                assert mine.headers.get("location", "") != "/login"
    finally:
        await owner_a.aclose()
        await owner_b.aclose()
