"""Tenant isolation everywhere (invariant I4), generated from the route table.

Every customer route (``/v1``) that takes an id in its path is called by account B with an object of
account A: the answer must be the same refusal as for an id that does not exist at all (same status,
same code), so a refusal never reveals whether another account's object exists. A new route with a path
parameter this test does not know how to fill fails the test until it is added to ``OBJECTS``.
"""

from __future__ import annotations

import base64
from typing import Any

from conftest import Api, Running

from qixin.domain.calendar import previous_period
from qixin.services import statements
from qixin.services.actor import Actor
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
