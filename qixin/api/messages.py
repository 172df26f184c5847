"""Message search, exports and per-batch reports: customer (/v1, signed) and staff (/admin) routes.

Thin: the query parameters become a ``MessageFilter`` and the use case (services/queries.MessageSearch)
decides scope (a customer sees only its account; staff any, numbers masked unless their role may read
them) and streams the rows."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from qixin.api import deps
from qixin.api.areas import staff_area
from qixin.api.common import error_responses, json_response
from qixin.errors import QxError
from qixin.services.actor import Actor
from qixin.services.queries import MessageFilter

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services

AUTH = ("AUTH_MISSING", "APPKEY_INVALID", "SIGNATURE_INVALID", "TIMESTAMP_EXPIRED", "NONCE_REPLAYED", "IP_FORBIDDEN")
STAFF = ("STAFF_AUTH_REQUIRED", "STAFF_TOKEN_INVALID", "FORBIDDEN")
FILTER_ERRORS = ("NUMBER_INVALID", "TYPE_INVALID", "NOT_FOUND")


def _filter(
    number: str | None, batch_id: str | None, out_id: str | None, status: str | None, type: str | None,
    template_id: str | None, signature: str | None, channel: str | None, carrier: str | None,
    province: str | None, since: str | None, until: str | None, account_id: int | None = None,
) -> MessageFilter:  # fmt: skip
    return MessageFilter(number, batch_id, out_id, status, type, template_id, signature, channel, carrier, province,
                         since, until, account_id)  # fmt: skip


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# what an export answers: CSV (format=csv, the default) or XLSX, never JSON
EXPORT_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}, XLSX: {}}, "description": "CSV（UTF-8，带 BOM）或 XLSX 文件"}
}


async def _export(platform: Services, actor: Actor, f: MessageFilter, fmt: str) -> Response:
    search = platform.message_search
    if fmt == "csv":
        return StreamingResponse(
            search.export_csv(actor, f), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="messages.csv"'},
        )  # fmt: skip
    if fmt != "xlsx":
        raise QxError("INVALID_REQUEST", "format 必须是 csv 或 xlsx")
    tmp = Path(tempfile.mkstemp(prefix="qixin-export-", suffix=".xlsx")[1])
    try:
        await search.export_xlsx(actor, f, tmp)
    except BaseException:
        await asyncio.to_thread(tmp.unlink, missing_ok=True)
        raise
    return FileResponse(
        tmp, filename="messages.xlsx", background=BackgroundTask(tmp.unlink, missing_ok=True),
        media_type=XLSX,
    )  # fmt: skip


def message_routers(platform: Services) -> list[APIRouter]:
    v1 = APIRouter(prefix="/v1", tags=["messages"])
    admin = APIRouter(prefix="/admin", tags=["admin: messages"], dependencies=[staff_area(platform, "accounts.read")])

    @v1.get("/sms", summary="短信记录查询（按号码、批次、状态、类型、模板、签名、通道、运营商、省份、时间；游标分页）",
            responses=error_responses(*AUTH, *FILTER_ERRORS))  # fmt: skip
    async def search(
        request: Request, number: str | None = None, batch_id: str | None = None, out_id: str | None = None,
        status: str | None = None, type: str | None = None, template_id: str | None = None,
        signature: str | None = None, channel: str | None = None, carrier: str | None = None,
        province: str | None = None, since: str | None = None, until: str | None = None,
        cursor: str | None = None, limit: int = Query(50, ge=1, le=1000),
    ) -> Response:  # fmt: skip
        actor, _ = await deps.customer(platform, request)
        f = _filter(number, batch_id, out_id, status, type, template_id, signature, channel, carrier, province,
                    since, until)  # fmt: skip
        return json_response(await platform.message_search.search(actor, f, cursor, limit))

    @v1.get("/exports/messages", summary="导出短信记录（CSV 流式或 XLSX），筛选条件同 GET /v1/sms",
            responses=error_responses(*AUTH, *FILTER_ERRORS) | EXPORT_DOC)  # fmt: skip
    async def export(
        request: Request, format: str = "csv", number: str | None = None, batch_id: str | None = None,
        out_id: str | None = None, status: str | None = None, type: str | None = None,
        template_id: str | None = None, signature: str | None = None, channel: str | None = None,
        carrier: str | None = None, province: str | None = None, since: str | None = None,
        until: str | None = None,
    ) -> Response:  # fmt: skip
        actor, _ = await deps.customer(platform, request)
        f = _filter(number, batch_id, out_id, status, type, template_id, signature, channel, carrier, province,
                    since, until)  # fmt: skip
        return await _export(platform, actor, f, format)

    @v1.get("/batches/{batch_id}/report", summary="批次明细：每个号码的状态、运营商状态码与失败原因分组",
            responses=error_responses(*AUTH, "NOT_FOUND"))  # fmt: skip
    async def report(batch_id: str, request: Request) -> Response:
        actor, _ = await deps.customer(platform, request)
        return json_response(await platform.message_search.batch_report(actor, batch_id))

    @admin.get("/messages", summary="短信记录查询（全部账户；号码按角色脱敏）",
               responses=error_responses(*STAFF, *FILTER_ERRORS))  # fmt: skip
    async def admin_search(
        request: Request, account_id: int | None = Query(None, ge=1, lt=2**63), number: str | None = None,
        batch_id: str | None = None, out_id: str | None = None, status: str | None = None, type: str | None = None,
        template_id: str | None = None, signature: str | None = None, channel: str | None = None,
        carrier: str | None = None, province: str | None = None, since: str | None = None,
        until: str | None = None, cursor: str | None = None, limit: int = Query(50, ge=1, le=1000),
    ) -> Response:  # fmt: skip
        actor = await deps.staff_actor(platform, request)
        f = _filter(number, batch_id, out_id, status, type, template_id, signature, channel, carrier, province,
                    since, until, account_id)  # fmt: skip
        return json_response(await platform.message_search.search(actor, f, cursor, limit))

    @admin.get("/exports/messages", summary="导出短信记录（全部账户；号码按角色脱敏）",
               responses=error_responses(*STAFF, *FILTER_ERRORS) | EXPORT_DOC)  # fmt: skip
    async def admin_export(
        request: Request, format: str = "csv", account_id: int | None = Query(None, ge=1, lt=2**63),
        status: str | None = None, batch_id: str | None = None, since: str | None = None, until: str | None = None,
    ) -> Response:  # fmt: skip
        actor = await deps.staff_actor(platform, request)
        f = MessageFilter(batch_id=batch_id, status=status, since=since, until=until, account_id=account_id)
        return await _export(platform, actor, f, format)

    @admin.get("/accounts/{account_id}/batches/{batch_id}/report", summary="批次明细（员工）",
               responses=error_responses(*STAFF, "NOT_FOUND"))  # fmt: skip
    async def admin_report(account_id: int, batch_id: str, request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        return json_response(await platform.message_search.batch_report(actor, batch_id, account_id))

    return [v1, admin]
