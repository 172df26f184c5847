"""The staff API under /admin: bearer tokens (``qixin staff create``), roles, audit log.

Thin routes: each turns the bearer token into a staff ``Actor`` and calls a use case, which checks the
role's area (domain/roles.py), writes with its audit row in one transaction and answers; the route
translates HTTP to that call and back, nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from qixin.api import models as m
from qixin.api.areas import staff_area
from qixin.api.common import body_of, error_responses, field, json_response, parse_json, parse_model
from qixin.api.deps import staff_actor
from qixin.domain.money import li_to_yuan, yuan_to_li
from qixin.services.actor import Actor

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services

STAFF_ERRORS = ("STAFF_AUTH_REQUIRED", "STAFF_TOKEN_INVALID", "FORBIDDEN", "INVALID_JSON")


def admin_router(platform: Services) -> APIRouter:
    router = APIRouter(prefix="/admin", tags=["admin"])

    async def actor(request: Request) -> Actor:
        """The staff actor (the route's area guard has admitted the role; the use case checks it again)."""
        return await staff_actor(platform, request)

    # -- accounts ----------------------------------------------------------------------------------
    @router.get(
        "/accounts",
        dependencies=[staff_area(platform, "accounts.read")],
        summary="客户账户列表",
        response_model=m.AccountList,
        responses=error_responses(*STAFF_ERRORS),
    )
    async def list_accounts(request: Request) -> Response:
        return json_response({"accounts": await platform.accounts.listing(await actor(request))})

    @router.post(
        "/accounts", dependencies=[staff_area(platform, "accounts.write")],
        summary="创建客户账户（签名、开户充值、API 密钥）", status_code=201,
        openapi_extra=body_of(m.AccountCreate),
        responses=error_responses(*STAFF_ERRORS, "SIGNATURE_NAME_INVALID", ok=m.AccountCreated, ok_status=201),
    )  # fmt: skip
    async def create_account(request: Request) -> Response:
        who = await actor(request)
        req = parse_model(m.AccountCreate, await request.body())
        out = await platform.accounts.create(
            who, req.name, req.signature, yuan_to_li(req.balance), yuan_to_li(req.price),
            req.callback_url, req.allow_free_text, req.permit_24h,
        )  # fmt: skip
        return json_response(out, 201)

    @router.post(
        "/accounts/{account_id}/topup", dependencies=[staff_area(platform, "money")],
        summary="充值", response_model=m.Balance, openapi_extra=body_of(m.Topup),
        responses=error_responses(*STAFF_ERRORS, "NOT_FOUND", "TOPUP_DUPLICATE", "TOPUP_BELOW_MINIMUM"),
    )  # fmt: skip
    async def topup(account_id: int, request: Request) -> Response:
        who = await actor(request)
        req = parse_model(m.Topup, await request.body())
        bal = await platform.billing.topup(who, account_id, yuan_to_li(req.amount), req.ref, req.note)
        return json_response({"account_id": account_id, "balance_li": bal, "balance": li_to_yuan(bal)})

    @router.get(
        "/accounts/{account_id}/flow", dependencies=[staff_area(platform, "accounts.read")],
        summary="账户流量控制：每秒上限与每日上限（计费条数）",
        responses=error_responses(*STAFF_ERRORS),
    )  # fmt: skip
    async def get_flow(account_id: int, request: Request) -> Response:
        return json_response(await platform.flow.get(await actor(request), account_id))

    @router.put(
        "/accounts/{account_id}/flow", dependencies=[staff_area(platform, "accounts.write")],
        summary="设置账户流量控制（tps、daily_cap；0 为不限）",
        responses=error_responses(*STAFF_ERRORS, "NOT_FOUND"),
    )  # fmt: skip
    async def set_flow(account_id: int, request: Request) -> Response:
        who = await actor(request)
        data = parse_json(await request.body())
        tps, daily = field(data, "tps", int, required=False), field(data, "daily_cap", int, required=False)
        return json_response(await platform.flow.set(who, account_id, tps, daily))

    @router.put(
        "/keys/{app_key}/callback-format", dependencies=[staff_area(platform, "accounts.write")],
        summary="设置密钥的推送格式（qixin 或 aliyun）",
        responses=error_responses(*STAFF_ERRORS, "APPKEY_INVALID"),
    )  # fmt: skip
    async def set_callback_format(app_key: str, request: Request) -> Response:
        who = await actor(request)
        fmt = field(parse_json(await request.body()), "format", str)
        return json_response(await platform.aliyun.set_callback_format(who, app_key, fmt))

    @router.get(
        "/accounts/{account_id}/keys", dependencies=[staff_area(platform, "accounts.read")],
        summary="账户的 API 密钥（不含 AppSecret）", response_model=m.KeyList,
        responses=error_responses(*STAFF_ERRORS),
    )  # fmt: skip
    async def list_keys(account_id: int, request: Request) -> Response:
        return json_response({"keys": await platform.accounts.keys(await actor(request), account_id)})

    @router.post(
        "/accounts/{account_id}/keys", dependencies=[staff_area(platform, "accounts.write")],
        summary="为账户新建 API 密钥（AppSecret 只显示一次）", status_code=201,
        responses=error_responses(*STAFF_ERRORS, "NOT_FOUND", ok=m.KeySecret, ok_status=201),
    )  # fmt: skip
    async def create_key(account_id: int, request: Request) -> Response:
        return json_response(await platform.accounts.create_key(await actor(request), account_id), 201)

    @router.post(
        "/keys/{app_key}/rotate", dependencies=[staff_area(platform, "accounts.write")],
        summary="更换 AppSecret（旧密钥立即失效，新密钥只显示一次）",
        response_model=m.KeySecret, responses=error_responses(*STAFF_ERRORS, "APPKEY_INVALID"),
    )  # fmt: skip
    async def rotate_key(app_key: str, request: Request) -> Response:
        return json_response(await platform.accounts.rotate_key(await actor(request), app_key))

    @router.post(
        "/keys/{app_key}/disable", dependencies=[staff_area(platform, "accounts.write")],
        summary="停用 API 密钥", response_model=m.KeyStatus,
        responses=error_responses(*STAFF_ERRORS, "APPKEY_INVALID"),
    )  # fmt: skip
    async def disable_key(app_key: str, request: Request) -> Response:
        return json_response(await platform.accounts.set_key_status(await actor(request), app_key, False))

    @router.post(
        "/keys/{app_key}/enable", dependencies=[staff_area(platform, "accounts.write")],
        summary="启用 API 密钥", response_model=m.KeyStatus,
        responses=error_responses(*STAFF_ERRORS, "APPKEY_INVALID"),
    )  # fmt: skip
    async def enable_key(app_key: str, request: Request) -> Response:
        return json_response(await platform.accounts.set_key_status(await actor(request), app_key, True))

    # -- review ------------------------------------------------------------------------------------
    @router.get(
        "/signatures", dependencies=[staff_area(platform, "review")],
        summary="签名列表（可按 status 过滤）", response_model=m.SignatureList,
        responses=error_responses(*STAFF_ERRORS),
    )  # fmt: skip
    async def list_signatures(request: Request, status: str | None = None) -> Response:
        return json_response({"signatures": await platform.signatures.listing(await actor(request), status=status)})

    @router.get(
        "/templates", dependencies=[staff_area(platform, "review")],
        summary="模板列表（可按 status 过滤）", response_model=m.TemplateList,
        responses=error_responses(*STAFF_ERRORS),
    )  # fmt: skip
    async def list_templates(request: Request, status: str | None = None) -> Response:
        return json_response({"templates": await platform.templates.listing(await actor(request), status=status)})

    review_errors = error_responses(*STAFF_ERRORS, "NOT_FOUND")
    for kind, use_case in (("signatures", platform.signatures), ("templates", platform.templates)):

        def routes(kind: str = kind, use_case: Any = use_case) -> None:
            @router.post(
                f"/{kind}/{{item_id}}/approve", dependencies=[staff_area(platform, "review")],
                summary="审核通过", name=f"approve_{kind}",
                response_model=m.Reviewed, responses=review_errors,
            )  # fmt: skip
            async def approve(item_id: int, request: Request) -> Response:
                return json_response(await use_case.review(await actor(request), item_id, True))

            @router.post(
                f"/{kind}/{{item_id}}/reject", dependencies=[staff_area(platform, "review")],
                summary="驳回（需填写原因）", name=f"reject_{kind}",
                response_model=m.Reviewed, openapi_extra=body_of(m.Reject), responses=review_errors,
            )  # fmt: skip
            async def reject(item_id: int, request: Request) -> Response:
                req = parse_model(m.Reject, await request.body())
                return json_response(await use_case.review(await actor(request), item_id, False, req.reason))

        routes()

    # -- channels ----------------------------------------------------------------------------------
    channel_errors = error_responses(*STAFF_ERRORS, "NOT_FOUND")
    desk = platform.channel_desk

    @router.get(
        "/channels",
        dependencies=[staff_area(platform, "channels")],
        summary="通道列表与健康状态（会话、窗口、TPS、错误、回执）",
        responses=channel_errors,
    )
    async def list_channels(request: Request) -> Response:
        who = await actor(request)
        if platform.channels.started:  # this process runs them: their live health
            return json_response({"channels": platform.channels.health()})
        return json_response({"channels": await desk.listing(who)})

    @router.post(
        "/channels",
        dependencies=[staff_area(platform, "channels")],
        summary="新建通道（立即生效，无需重启）",
        status_code=201,
        responses=channel_errors,
    )
    async def create_channel(request: Request) -> Response:
        who = await actor(request)
        return json_response(await desk.create(who, parse_model(m.JsonObject, await request.body()).root), 201)

    @router.patch(
        "/channels/{channel_id}",
        dependencies=[staff_area(platform, "channels")],
        summary="修改通道（版本号递增，连接按新配置重建）",
        responses=channel_errors,
    )
    async def update_channel(channel_id: int, request: Request) -> Response:
        who = await actor(request)
        return json_response(await desk.update(who, channel_id, parse_model(m.JsonObject, await request.body()).root))

    @router.delete(
        "/channels/{channel_id}",
        dependencies=[staff_area(platform, "channels")],
        summary="删除通道",
        responses=channel_errors,
    )
    async def delete_channel(channel_id: int, request: Request) -> Response:
        return json_response(await desk.delete(await actor(request), channel_id))

    @router.get(
        "/ported-numbers",
        dependencies=[staff_area(platform, "channels")],
        summary="携号转网号码（从回执学习或导入）",
        responses=channel_errors,
    )
    async def ported_list(request: Request, limit: int = 1000) -> Response:
        return json_response({"ported_numbers": await desk.ported_numbers(await actor(request), limit)})

    @router.post(
        "/ported-numbers", dependencies=[staff_area(platform, "channels")],
        summary="导入携号转网号码 [{number, carrier}]", openapi_extra=body_of(m.PortedImport),
        responses=channel_errors,
    )  # fmt: skip
    async def ported_import(request: Request) -> Response:
        who = await actor(request)
        return json_response(await desk.import_ported(who, parse_model(m.PortedImport, await request.body()).numbers))

    # -- staff and audit -----------------------------------------------------------------------------
    @router.get(
        "/staff",
        dependencies=[staff_area(platform, "staff.write")],
        summary="员工列表",
        response_model=m.StaffList,
        responses=error_responses(*STAFF_ERRORS),
    )
    async def list_staff(request: Request) -> Response:
        return json_response({"staff": await platform.staff_users.listing(await actor(request))})

    @router.post(
        "/staff", dependencies=[staff_area(platform, "staff.write")],
        summary="新建员工并发放令牌（只显示一次）", status_code=201, openapi_extra=body_of(m.StaffCreate),
        responses=error_responses(*STAFF_ERRORS, "CONFLICT", ok=m.StaffCreated, ok_status=201),
    )  # fmt: skip
    async def create_staff(request: Request) -> Response:
        req = parse_model(m.StaffCreate, await request.body())
        return json_response(await platform.staff_users.create(await actor(request), req.name, req.role), 201)

    @router.post(
        "/staff/{staff_id}/revoke", dependencies=[staff_area(platform, "staff.write")],
        summary="吊销员工令牌", response_model=m.StaffRevoked,
        responses=error_responses(*STAFF_ERRORS, "NOT_FOUND"),
    )  # fmt: skip
    async def revoke_staff(staff_id: int, request: Request) -> Response:
        return json_response(await platform.staff_users.revoke(await actor(request), staff_id))

    @router.get(
        "/audit",
        dependencies=[staff_area(platform, "audit.read")],
        summary="审计日志（最新在前）",
        response_model=m.AuditPage,
        responses=error_responses(*STAFF_ERRORS),
    )
    async def audit_list(
        request: Request, limit: int = 100, before_id: int | None = None, action: str | None = None
    ) -> Response:
        who = await actor(request)
        return json_response({"entries": await platform.staff_users.audit(who, limit, before_id, action)})

    return router
