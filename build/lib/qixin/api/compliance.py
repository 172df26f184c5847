"""Compliance routes: staff (/admin, area ``compliance``) and customer (/v1, signed) — thin, like admin.py.

Staff: account policies, freeze / unfreeze, violations, blacklist and opt-out lists (import / export as
JSON or CSV), the versioned lexicon, complaints and their evidence report, signature suspension and
qualification documents. Customer: their opt-out list, qualification documents for their signatures.
Every staff change is written with its audit row in one transaction.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from qixin.api import deps
from qixin.api.common import field, json_response, parse_json
from qixin.domain.compliance import CATEGORIES
from qixin.errors import QxError
from qixin.services.compliance import documents, evidence, store
from qixin.services.compliance.evidence import clean_number
from qixin.services.staff import Staff, audit
from qixin.store.db import Tx

if TYPE_CHECKING:
    from qixin.app import Services as Platform
    from qixin.services.accounts import ApiKey

MAX_IMPORT = 100_000


# --- list import / export ---------------------------------------------------------------------------------


def _numbers(data: dict[str, Any]) -> list[str]:
    """``numbers`` as a JSON array, or ``csv`` text whose first column holds the numbers."""
    raw: list[str]
    if isinstance(data.get("csv"), str):
        raw = [row[0] for row in csv.reader(io.StringIO(data["csv"].lstrip("\ufeff"))) if row and row[0].strip()]
        if raw and not any(ch.isdigit() for ch in raw[0]):
            raw = raw[1:]  # a header line
    else:
        value = data.get("numbers")
        if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
            raise QxError("INVALID_REQUEST", "numbers 应为号码字符串数组（或用 csv 提交）")
        raw = value
    if len(raw) > MAX_IMPORT:
        raise QxError("TOO_MANY_NUMBERS", f"单次最多导入 {MAX_IMPORT} 个号码")
    numbers = [clean_number(n) for n in raw]
    return [n for n in numbers if n]


def _export(rows: list[dict[str, Any]], columns: tuple[str, ...], fmt: str, name: str) -> Response:
    if fmt == "csv":
        out = io.StringIO()
        out.write("\ufeff")
        w = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
        w.writeheader()
        w.writerows(rows)
        return Response(
            out.getvalue().encode(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return json_response({name: rows, "count": len(rows)})


def compliance_routers(platform: Platform) -> list[APIRouter]:
    return [_admin_router(platform), _customer_router(platform)]


def _admin_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix="/admin", tags=["admin: compliance"])
    db = platform.db
    svc = platform.compliance

    async def staff(request: Request, area: str = "compliance") -> Staff:
        return await deps.staff_for(platform, request, area)

    async def act(request: Request, who: Staff, action: str, target: str, fn: Callable[[Tx], Any]) -> Any:
        result = await deps.staff_act(platform, request, who, action, target, fn)
        svc.invalidate()
        return result

    # -- policies and freezing -----------------------------------------------------------------------
    @router.get("/accounts/{account_id}/policy", summary="账户合规策略")
    async def get_policy(account_id: int, request: Request) -> Response:
        await staff(request)
        return json_response((await db.read(lambda tx: store.load_policy(tx, account_id))).to_dict())

    @router.put("/accounts/{account_id}/policy", summary="修改账户合规策略（24小时许可、国际、链接、频率…）")
    async def put_policy(account_id: int, request: Request) -> Response:
        who = await staff(request)
        changes = store.validate_policy_changes(parse_json(await request.body()))
        pol = await act(
            request, who, "account.policy", f"account:{account_id}",
            lambda tx: store.update_policy(tx, account_id, changes).to_dict(),
        )  # fmt: skip
        return json_response(pol)

    async def _status(request: Request, account_id: int, frozen: bool) -> Response:
        who = await staff(request)
        reason = field(parse_json(await request.body()), "reason", str, required=frozen, default="")
        out = await act(
            request, who, "account.freeze" if frozen else "account.unfreeze", f"account:{account_id}",
            lambda tx: store.set_account_status(tx, account_id, frozen, reason),
        )  # fmt: skip
        return json_response(out)

    @router.post("/accounts/{account_id}/freeze", summary="冻结账户（需填写原因）")
    async def freeze(account_id: int, request: Request) -> Response:
        return await _status(request, account_id, True)

    @router.post("/accounts/{account_id}/unfreeze", summary="解冻账户")
    async def unfreeze(account_id: int, request: Request) -> Response:
        return await _status(request, account_id, False)

    @router.get("/violations", summary="违规记录（最新在前，可按账户过滤）")
    async def violations(request: Request, account_id: int | None = None, limit: int = 100) -> Response:
        await staff(request)
        limit = max(1, min(limit, 1000))
        rows = await db.read(lambda tx: store.list_violations(tx, account_id, limit))
        return json_response({"violations": rows})

    # -- blacklist and opt-outs --------------------------------------------------------------------
    @router.get("/blacklist", summary="黑名单导出（format=json|csv）")
    async def blacklist_export(request: Request, format: str = "json") -> Response:
        await staff(request)
        rows = await db.read(store.list_blacklist)
        return _export(rows, ("number", "reason", "source", "created_at"), format, "blacklist")

    @router.post("/blacklist", summary="黑名单导入（numbers 数组或 csv 文本）")
    async def blacklist_import(request: Request) -> Response:
        who = await staff(request)
        data = parse_json(await request.body())
        numbers = _numbers(data)
        reason = field(data, "reason", str, required=False, default="")
        added = await act(
            request, who, "blacklist.import", "blacklist",
            lambda tx: {"added": store.add_blacklist(tx, numbers, "staff", reason), "submitted": len(numbers)},
        )  # fmt: skip
        return json_response(added)

    @router.post("/blacklist/remove", summary="移出黑名单")
    async def blacklist_remove(request: Request) -> Response:
        who = await staff(request)
        numbers = _numbers(parse_json(await request.body()))
        out = await act(request, who, "blacklist.remove", "blacklist",
                        lambda tx: {"removed": store.remove_blacklist(tx, numbers)})  # fmt: skip
        return json_response(out)

    @router.get("/accounts/{account_id}/optouts", summary="账户退订名单导出（format=json|csv）")
    async def optouts_export(account_id: int, request: Request, format: str = "json") -> Response:
        await staff(request)
        rows = await db.read(lambda tx: store.list_optouts(tx, account_id))
        return _export(rows, ("number", "signature", "source", "created_at"), format, "optouts")

    @router.post("/accounts/{account_id}/optouts", summary="账户退订名单导入")
    async def optouts_import(account_id: int, request: Request) -> Response:
        who = await staff(request)
        data = parse_json(await request.body())
        numbers = _numbers(data)
        signature = field(data, "signature", str, required=False, default="")
        out = await act(
            request, who, "optouts.import", f"account:{account_id}",
            lambda tx: {"added": store.add_optouts(tx, account_id, numbers, "staff", signature)},
        )  # fmt: skip
        return json_response(out)

    # -- lexicon -------------------------------------------------------------------------------------
    @router.get("/lexicon", summary="当前词库（违禁词与白名单）")
    async def lexicon(request: Request, category: str | None = None) -> Response:
        await staff(request)
        v, words, allow = await db.read(lambda tx: store.load_lexicon_rows(tx))
        items = [{"word": e.word, "category": e.category} for e in words if category in (None, e.category)]
        active = svc.checker.lexicon.version
        return json_response({"version": v, "words": items, "allow": allow, "active_version": active})

    @router.get("/lexicon/categories", summary="违禁类别")
    async def categories(request: Request) -> Response:
        await staff(request)
        return json_response({"categories": [{"code": k, "label": v} for k, v in CATEGORIES.items()]})

    @router.get("/lexicon/versions", summary="词库版本历史")
    async def versions(request: Request) -> Response:
        await staff(request)
        return json_response({"versions": await db.read(store.list_lexicon_versions)})

    @router.post("/lexicon/changes", summary="修改词库（生成新版本，立即生效，无需重启）")
    async def change_lexicon(request: Request) -> Response:
        who = await staff(request)
        change = store.LexiconChange.from_body(parse_json(await request.body()))
        base, words, allow = await db.read(lambda tx: store.load_lexicon_rows(tx))
        new_words, new_allow = change.apply_to(words, allow)
        store.validate_lexicon(new_words, new_allow, base + 1)  # refuses before anything is written
        out = await act(request, who, "lexicon.change", "lexicon",
                        lambda tx: store.apply_lexicon_change(tx, change, base, who.name))  # fmt: skip
        await svc.reload_lexicon()
        return json_response(out, 201)

    @router.post("/lexicon/check", summary="试检内容（不发送，不记违规）")
    async def check(request: Request) -> Response:
        await staff(request)
        data = parse_json(await request.body())
        content = field(data, "content", str)
        msg_type = field(data, "type", str, required=False, default="notification")
        if msg_type not in ("verification", "notification", "marketing"):
            raise QxError("TYPE_INVALID")
        found = svc.checker.check_content(content, msg_type)
        return json_response(
            {
                "version": svc.checker.lexicon.version,
                "ok": not found,
                "violations": [{"code": v.code, "message": v.message_zh, **v.detail} for v in found],
            }
        )

    # -- complaints ----------------------------------------------------------------------------------
    @router.post("/complaints", summary="登记投诉（号码拉黑，生成证据报告）")
    async def complaint(request: Request) -> Response:
        who = await staff(request)
        data = parse_json(await request.body())
        number = field(data, "number", str)
        mid = field(data, "message_id", str, required=False)
        try:
            message_id = int(mid) if mid is not None else None
        except ValueError as e:
            raise QxError("INVALID_REQUEST", "message_id 格式错误") from e
        note = field(data, "note", str, required=False, default="")
        out = await act(request, who, "complaint.record", f"number:{clean_number(number)}",
                        lambda tx: evidence.record_complaint(tx, number, message_id, note, who.name))  # fmt: skip
        report = await db.read(lambda tx: evidence.evidence(tx, out["complaint_id"]))
        return json_response({**out, "evidence": report}, 201)

    @router.get("/complaints", summary="投诉列表")
    async def complaints(request: Request) -> Response:
        await staff(request)
        return json_response({"complaints": await db.read(evidence.list_complaints)})

    @router.get("/complaints/{complaint_id}/evidence", summary="投诉证据报告（format=json|csv）")
    async def complaint_evidence(complaint_id: int, request: Request, format: str = "json") -> Response:
        await staff(request)
        report = await db.read(lambda tx: evidence.evidence(tx, complaint_id))
        if format == "csv":
            return Response(
                evidence.evidence_csv(report).encode(),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="complaint-{complaint_id}.csv"'},
            )
        return json_response(report)

    # -- signatures: suspension and qualification documents ------------------------------------------
    @router.post("/signatures/{signature_id}/suspend", summary="暂停签名（需填写原因）")
    async def suspend(signature_id: int, request: Request) -> Response:
        who = await staff(request, "review")
        reason = field(parse_json(await request.body()), "reason", str)

        def job(tx: Tx) -> dict[str, Any]:
            tx.execute("UPDATE signatures SET status = 'suspended', reason = ? WHERE id = ?", (reason, signature_id))
            if tx.rowcount == 0:
                raise QxError("NOT_FOUND", "签名不存在")
            return {"id": signature_id, "status": "suspended", "reason": reason}

        return json_response(await act(request, who, "signatures.suspend", f"signatures:{signature_id}", job))

    @router.get("/signatures/{signature_id}/documents", summary="签名的资质文件与用途")
    async def signature_documents(signature_id: int, request: Request) -> Response:
        await staff(request, "review")
        return json_response(await db.read(lambda tx: documents.signature_application(tx, signature_id)))

    @router.get("/documents/{document_id}", summary="下载资质文件")
    async def download(document_id: int, request: Request) -> Response:
        await staff(request, "review")
        meta = await db.read(lambda tx: documents.document(tx, document_id))
        content = documents.read_file(platform.settings.data_dir, meta["path"])
        return Response(content, media_type=meta["content_type"])

    return router


def _customer_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["customer: compliance"])
    db = platform.db

    async def signed(request: Request) -> tuple[ApiKey, bytes]:
        return await deps.signed(platform, request)

    @router.get("/optouts", summary="退订名单导出（format=json|csv）")
    async def my_optouts(request: Request, format: str = "json") -> Response:
        key, _ = await signed(request)
        rows = await db.read(lambda tx: store.list_optouts(tx, key.account_id))
        return _export(rows, ("number", "signature", "source", "created_at"), format, "optouts")

    @router.post("/optouts", summary="退订名单导入（numbers 数组或 csv 文本，可选 signature）")
    async def import_optouts(request: Request) -> Response:
        key, body = await signed(request)
        data = parse_json(body)
        numbers = _numbers(data)
        signature = field(data, "signature", str, required=False, default="")

        def job(tx: Tx) -> dict[str, Any]:
            added = store.add_optouts(tx, key.account_id, numbers, "import", signature)
            audit(tx, "customer", key.app_key, "optouts.import", f"account:{key.account_id}", {"added": added})
            return {"added": added, "submitted": len(numbers)}

        return json_response(await db.write(job))

    @router.post("/signatures/{signature_id}/documents", summary="上传签名资质文件（JSON：filename、content_base64）")
    async def upload(signature_id: int, request: Request) -> Response:
        key, body = await signed(request)
        data = parse_json(body)
        filename = field(data, "filename", str)
        content_type = field(data, "content_type", str, required=False, default="application/octet-stream")
        try:
            content = base64.b64decode(field(data, "content_base64", str), validate=True)
        except (binascii.Error, ValueError) as e:
            raise QxError("DOCUMENT_INVALID", "content_base64 不是合法的 Base64") from e
        stored = documents.store_file(platform.settings.data_dir, key.account_id, filename, content_type, content)

        def job(tx: Tx) -> dict[str, Any]:
            out = documents.add_document(tx, key.account_id, signature_id, stored)
            audit(tx, "customer", key.app_key, "signature.document", f"signatures:{signature_id}", out)
            return out

        return json_response(await db.write(job), 201)

    return router
