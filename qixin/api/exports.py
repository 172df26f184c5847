"""Export jobs: customer (/v1, signed) and staff (/admin) routes (docs/api.md "Export jobs").

Thin: the JSON body (the filters of ``GET /v1/sms`` / ``GET /admin/messages`` and ``format``) becomes a
``MessageFilter``; the use case (services/exports.ExportJobs) validates, scopes, runs and serves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response

from qixin.api import deps
from qixin.api.areas import staff_area
from qixin.api.common import error_responses, json_response
from qixin.errors import QxError
from qixin.services.queries import MessageFilter

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services

AUTH = ("AUTH_MISSING", "APPKEY_INVALID", "SIGNATURE_INVALID", "TIMESTAMP_EXPIRED", "NONCE_REPLAYED", "IP_FORBIDDEN")
STAFF = ("STAFF_AUTH_REQUIRED", "STAFF_TOKEN_INVALID", "FORBIDDEN")
FILTER_ERRORS = ("NUMBER_INVALID", "TYPE_INVALID", "INVALID_REQUEST", "INVALID_JSON")
# what a download answers: the file (CSV or XLSX), never JSON
FILE_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}},
          "description": "导出文件（CSV，UTF-8 带 BOM；或 XLSX）"}
}  # fmt: skip
FIELDS = ("number", "batch_id", "out_id", "status", "type", "template_id", "signature", "channel", "carrier",
          "province", "since", "until")  # fmt: skip


def _body(raw: bytes, staff: bool) -> tuple[MessageFilter, str]:
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as e:
        raise QxError("INVALID_JSON") from e
    if not isinstance(body, dict):
        raise QxError("INVALID_JSON", "请求体必须是 JSON 对象")
    allowed = {*FIELDS, "format", *(("account_id",) if staff else ())}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise QxError("INVALID_REQUEST", f"未知字段：{', '.join(unknown)}")
    kw: dict[str, Any] = {}
    for name in FIELDS:
        v = body.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (str, int))):
            raise QxError("INVALID_REQUEST", f"{name} 必须是字符串")
        kw[name] = None if v is None else str(v)
    account_id = body.get("account_id")
    if account_id is not None and (type(account_id) is not int or not 0 < account_id < 2**63):
        raise QxError("INVALID_REQUEST", "account_id 必须是正整数")
    fmt = body.get("format", "csv")
    if not isinstance(fmt, str):
        raise QxError("INVALID_REQUEST", "format 必须是 csv 或 xlsx")
    return MessageFilter(**kw, account_id=account_id), fmt


def export_routers(platform: Services) -> list[APIRouter]:
    v1 = APIRouter(prefix="/v1", tags=["messages"])
    admin = APIRouter(prefix="/admin", tags=["admin: messages"], dependencies=[staff_area(platform, "accounts.read")])
    jobs = platform.exports

    @v1.post("/exports", summary="创建导出任务（大批量导出：后台生成文件，可查进度，完成后下载）",
             responses=error_responses(*AUTH, *FILTER_ERRORS))  # fmt: skip
    async def create(request: Request) -> Response:
        actor, raw = await deps.customer(platform, request)
        f, fmt = _body(raw, staff=False)
        return json_response(await jobs.create(actor, f, fmt))

    @v1.get("/exports", summary="导出任务列表", responses=error_responses(*AUTH))
    async def listing(request: Request, limit: int = Query(20, ge=1, le=100)) -> Response:
        actor, _ = await deps.customer(platform, request)
        return json_response(await jobs.listing(actor, limit))

    @v1.get("/exports/{job_id}", summary="导出任务进度（已写行数 / 预计总数、状态）",
            responses=error_responses(*AUTH, "EXPORT_JOB_NOT_FOUND"))  # fmt: skip
    async def progress(job_id: str, request: Request) -> Response:
        actor, _ = await deps.customer(platform, request)
        return json_response(await jobs.progress(actor, job_id))

    @v1.get("/exports/{job_id}/file", summary="下载导出文件（任务完成后）",
            responses=error_responses(*AUTH, "EXPORT_JOB_NOT_FOUND", "EXPORT_NOT_READY") | FILE_DOC)  # fmt: skip
    async def download(job_id: str, request: Request) -> Response:
        actor, _ = await deps.customer(platform, request)
        path, name, media = await jobs.file(actor, job_id)
        return FileResponse(path, filename=name, media_type=media)

    @admin.post("/exports", summary="创建导出任务（员工；全部账户或指定 account_id；号码按角色脱敏）",
                responses=error_responses(*STAFF, *FILTER_ERRORS))  # fmt: skip
    async def admin_create(request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        f, fmt = _body(await request.body(), staff=True)
        return json_response(await jobs.create(actor, f, fmt))

    @admin.get("/exports", summary="导出任务列表（员工）", responses=error_responses(*STAFF))
    async def admin_listing(request: Request, limit: int = Query(20, ge=1, le=100)) -> Response:
        actor = await deps.staff_actor(platform, request)
        return json_response(await jobs.listing(actor, limit))

    @admin.get("/exports/{job_id}", summary="导出任务进度（员工）",
               responses=error_responses(*STAFF, "EXPORT_JOB_NOT_FOUND"))  # fmt: skip
    async def admin_progress(job_id: str, request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        return json_response(await jobs.progress(actor, job_id))

    @admin.get("/exports/{job_id}/file", summary="下载导出文件（员工）",
               responses=error_responses(*STAFF, "EXPORT_JOB_NOT_FOUND", "EXPORT_NOT_READY") | FILE_DOC)  # fmt: skip
    async def admin_download(job_id: str, request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        path, name, media = await jobs.file(actor, job_id)
        return FileResponse(path, filename=name, media_type=media)

    return [v1, admin]
