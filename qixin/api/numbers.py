"""Number services routes (docs/numbers.md): the number status check (空号检测) for customers (/v1, signed)
and staff (/admin). Thin: the use case (services/numbercheck.NumberChecks) validates, prices, checks and
stores."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from qixin.api import deps
from qixin.api.areas import staff_area
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


class TokenRequest(BaseModel):
    number: str = Field(description="真实号码（不会再向客户展示）")
    ttl_seconds: int = Field(description="有效期（秒，60 至 31,622,400）")


class StaffTokenRequest(TokenRequest):
    account_id: int = Field(ge=1, lt=2**63, description="令牌所属账户")


class TokenAnswer(BaseModel):
    token: str
    expires_at: int = Field(description="过期时间（毫秒，UTC）")


class FlashTestRequest(BaseModel):
    content: str = Field(description="待测短信内容（不含签名）")
    signature: str = Field(description="已审核的签名")
    type: str = Field("notification", description="verification / notification / marketing")
    timeout_seconds: int = Field(120, description="等待状态报告的时限（秒）")


class StaffFlashTestRequest(FlashTestRequest):
    account_id: int = Field(ge=1, lt=2**63, description="计费账户")


class SeedRequest(BaseModel):
    number: str
    note: str = ""


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

    @v1.post("/check-jobs", summary="批量号码检测（文件任务，最多 1,000,000 个）：请求体为 CSV / TXT / XLSX 文件",
             status_code=201, responses=error_responses(*AUTH, *CHECK_ERRORS))  # fmt: skip
    async def submit_job(request: Request, format: str = Query("csv", description="csv / txt / xlsx")) -> Response:
        actor, body = await deps.customer(platform, request)
        out = await platform.numcheck_jobs.submit(actor, f"upload.{format}", body)
        return json_response(out, 201)

    @v1.get(
        "/check-jobs/{check_job_id}", summary="批量检测进度与结果汇总", responses=error_responses(*AUTH, "NOT_FOUND")
    )
    async def get_job(check_job_id: str, request: Request) -> Response:
        actor, _ = await deps.customer(platform, request)
        return json_response(await platform.numcheck_jobs.get(actor, check_job_id))

    @admin.post("/check", dependencies=[staff_area(platform, "accounts.write")],
                summary="代客户检测号码（计入该账户）", openapi_extra=body_of(StaffNumberCheckRequest),
                responses=error_responses(*STAFF, *CHECK_ERRORS, "NOT_FOUND", ok=NumberCheckAnswer))  # fmt: skip
    async def staff_check(request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        req = parse_model(StaffNumberCheckRequest, await request.body())
        return json_response(await platform.numbers.check(actor, req.numbers, req.account_id))

    @admin.get(
        "/checks/{check_id}",
        dependencies=[staff_area(platform, "accounts.read")],
        summary="查询号码检测结果",
        responses=error_responses(*STAFF, "NOT_FOUND"),
    )
    async def staff_get(check_id: str, request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        return json_response(await platform.numbers.get(actor, check_id))

    tokens_v1 = APIRouter(prefix="/v1/tokens", tags=["number services"])
    tokens_admin = APIRouter(prefix="/admin/tokens", tags=["admin: number services"])

    @tokens_v1.post("", summary="登记隐私号码令牌：发送时 to 可填写令牌（tk_…），客户不再看到真实号码",
                    openapi_extra=body_of(TokenRequest),
                    responses=error_responses(*AUTH, "INVALID_JSON", "INVALID_REQUEST", "NUMBER_INVALID",
                                              ok=TokenAnswer))  # fmt: skip
    async def create_token(request: Request) -> Response:
        actor, body = await deps.customer(platform, request)
        req = parse_model(TokenRequest, body)
        return json_response(await platform.tokens.create(actor, req.number, req.ttl_seconds))

    @tokens_admin.post(
        "", dependencies=[staff_area(platform, "accounts.write")],
        summary="代账户登记隐私号码令牌（平台对接）", openapi_extra=body_of(StaffTokenRequest),
        responses=error_responses(*STAFF, "INVALID_REQUEST", "NUMBER_INVALID", ok=TokenAnswer),
    )  # fmt: skip
    async def staff_create_token(request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        req = parse_model(StaffTokenRequest, await request.body())
        return json_response(await platform.tokens.create(actor, req.number, req.ttl_seconds, req.account_id))

    @tokens_admin.get("/{token}", dependencies=[staff_area(platform, "numbers.read")],
                      summary="解析令牌对应的真实号码（需 numbers.read 权限，留审计）",
                      responses=error_responses(*STAFF, "NOT_FOUND"))  # fmt: skip
    async def reveal_token(token: str, request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        return json_response(await platform.tokens.reveal(actor, token))

    flash_v1 = APIRouter(prefix="/v1/flash-tests", tags=["number services"])
    flash_admin = APIRouter(prefix="/admin/flash-tests", tags=["admin: number services"])
    flash_errors = ("INVALID_JSON", "INVALID_REQUEST", "TYPE_INVALID", "NO_ROUTE", "SIGNATURE_NOT_APPROVED",
                    "CONTENT_EMPTY", "CONTENT_FORBIDDEN", "INSUFFICIENT_BALANCE")  # fmt: skip

    @flash_v1.post("", summary="闪测：把草稿经每个可用通道发到测试号码，报告各通道、各运营商是否送达",
                   openapi_extra=body_of(FlashTestRequest), status_code=201,
                   responses=error_responses(*AUTH, *flash_errors))  # fmt: skip
    async def create_flash(request: Request) -> Response:
        actor, body = await deps.customer(platform, request)
        req = parse_model(FlashTestRequest, body)
        out = await platform.flash_tests.create(actor, req.content, req.signature, req.type, req.timeout_seconds)
        return json_response(out, 201)

    @flash_v1.get("/{test_id}", summary="闪测报告：每个通道、每个运营商：送达 / 拒绝 / 超时无回执，时延",
                  responses=error_responses(*AUTH, "NOT_FOUND"))  # fmt: skip
    async def get_flash(test_id: str, request: Request) -> Response:
        actor, _ = await deps.customer(platform, request)
        return json_response(await platform.flash_tests.get(actor, test_id))

    @flash_admin.post("", dependencies=[staff_area(platform, "accounts.write")],
                      summary="代客户闪测", openapi_extra=body_of(StaffFlashTestRequest), status_code=201,
                      responses=error_responses(*STAFF, *flash_errors, "NOT_FOUND"))  # fmt: skip
    async def staff_flash(request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        req = parse_model(StaffFlashTestRequest, await request.body())
        out = await platform.flash_tests.create(
            actor, req.content, req.signature, req.type, req.timeout_seconds, req.account_id
        )
        return json_response(out, 201)

    @flash_admin.get(
        "/seeds",
        dependencies=[staff_area(platform, "channels")],
        summary="闪测测试号码",
        responses=error_responses(*STAFF),
    )
    async def seeds(request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        return json_response({"seeds": await platform.flash_tests.seeds(actor)})

    @flash_admin.post("/seeds", dependencies=[staff_area(platform, "channels")],
                      summary="新增闪测测试号码（运营商按号段）", openapi_extra=body_of(SeedRequest),
                      responses=error_responses(*STAFF, "NUMBER_INVALID"))  # fmt: skip
    async def add_seed(request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        req = parse_model(SeedRequest, await request.body())
        return json_response(await platform.flash_tests.add_seed(actor, req.number, req.note))

    @flash_admin.get("/probes", dependencies=[staff_area(platform, "channels")],
                     summary="通道巡检闪测：每个通道最近一轮结果、时间窗内送达轮数与时延、历史",
                     responses=error_responses(*STAFF, "INVALID_REQUEST"))  # fmt: skip
    async def flash_probes(
        request: Request, channel: str | None = Query(None, description="只看此通道"),
        hours: int = Query(24, description="统计窗口（小时，1–2160）"), limit: int = Query(100, ge=1, le=1000),
    ) -> Response:  # fmt: skip
        actor = await deps.staff_actor(platform, request)
        return json_response(await platform.flash_probe.report(actor, channel, hours, limit))

    @flash_admin.get(
        "/{test_id}",
        dependencies=[staff_area(platform, "accounts.read")],
        summary="闪测报告",
        responses=error_responses(*STAFF, "NOT_FOUND"),
    )
    async def staff_get_flash(test_id: str, request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        return json_response(await platform.flash_tests.get(actor, test_id))

    return [v1, admin, tokens_v1, tokens_admin, flash_v1, flash_admin]
