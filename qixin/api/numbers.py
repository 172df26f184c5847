"""Number services routes (docs/numbers.md): the number status check (空号检测) for customers (/v1, signed)
and staff (/admin). Thin: the use case (services/numbercheck.NumberChecks) validates, prices, checks and
stores."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from qixin.api import deps
from qixin.api.common import body_of, error_responses, json_response, parse_model

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services

AUTH = ("AUTH_MISSING", "APPKEY_INVALID", "SIGNATURE_INVALID", "TIMESTAMP_EXPIRED", "NONCE_REPLAYED", "IP_FORBIDDEN")
STAFF = ("STAFF_AUTH_REQUIRED", "STAFF_TOKEN_INVALID", "FORBIDDEN")
CHECK_ERRORS = ("INVALID_JSON", "INVALID_REQUEST", "NUMBERS_EMPTY", "TOO_MANY_NUMBERS", "PRICE_NOT_SET",
                "INSUFFICIENT_BALANCE", "BALANCE_EXPIRED")  # fmt: skip


class NumberCheckRequest(BaseModel):
    numbers: list[str] = Field(description="待检测号码（单次最多 1,000 个）")


class StaffNumberCheckRequest(NumberCheckRequest):
    account_id: int = Field(ge=1, lt=2**63, description="计费账户")


class NumberResult(BaseModel):
    number: str
    class_: str = Field(
        alias="class", description="real 实号 | silent 沉默号 | empty 空号 | risk 风险号 | unknown 库无"
    )
    carrier: str
    province: str
    ported: bool
    confidence: float
    evidence: list[str]
    billed: bool


class NumberCheckAnswer(BaseModel):
    check_id: str
    total: int
    charged: int
    unit_li: int
    fee_li: int
    counts: dict[str, int]
    results: list[NumberResult]


def _package(name: str, data: bytes, fmt: str) -> Response:
    media = "text/csv; charset=utf-8" if fmt == "csv" else (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )  # fmt: skip
    from urllib.parse import quote

    return Response(
        data, media_type=media, headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}
    )


def number_routers(platform: Services) -> list[APIRouter]:
    v1 = APIRouter(prefix="/v1/numbers", tags=["number services"])
    admin = APIRouter(prefix="/admin/numbers", tags=["admin: number services"])

    @v1.post("/check", summary="号码状态检测（空号检测）：实号/沉默号/空号/风险号/库无",
             openapi_extra=body_of(NumberCheckRequest),
             responses=error_responses(*AUTH, *CHECK_ERRORS, ok=NumberCheckAnswer))  # fmt: skip
    async def check(request: Request) -> Response:
        actor, body = await deps.customer(platform, request)
        req = parse_model(NumberCheckRequest, body)
        return json_response(await platform.numbers.check(actor, req.numbers))

    @v1.get("/checks/{check_id}", summary="查询一次号码检测的结果", responses=error_responses(*AUTH, "NOT_FOUND"))
    async def get_check(check_id: str, request: Request) -> Response:
        actor, _ = await deps.customer(platform, request)
        return json_response(await platform.numbers.get(actor, check_id))

    @v1.get("/checks/{check_id}/packages/{cls}",
            summary="下载结果包：real 实号包 / silent 沉默号包 / empty 空号包 / risk 风险包（CSV 或 XLSX）",
            responses=error_responses(*AUTH, "NOT_FOUND", "INVALID_REQUEST"))  # fmt: skip
    async def package(check_id: str, cls: str, request: Request, format: str = Query("csv")) -> Response:
        actor, _ = await deps.customer(platform, request)
        name, data = await platform.numbers.package(actor, check_id, cls, format)
        return _package(name, data, format)

    @admin.post("/check", summary="代客户检测号码（计入该账户）", openapi_extra=body_of(StaffNumberCheckRequest),
                responses=error_responses(*STAFF, *CHECK_ERRORS, "NOT_FOUND", ok=NumberCheckAnswer))  # fmt: skip
    async def staff_check(request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        req = parse_model(StaffNumberCheckRequest, await request.body())
        return json_response(await platform.numbers.check(actor, req.numbers, req.account_id))

    @admin.get("/checks/{check_id}", summary="查询号码检测结果", responses=error_responses(*STAFF, "NOT_FOUND"))
    async def staff_get(check_id: str, request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        return json_response(await platform.numbers.get(actor, check_id))

    return [v1, admin]
