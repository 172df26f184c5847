"""Statistics routes: GET /v1/statistics (a customer's own account) and GET /admin/statistics (staff)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from qixin.api import deps
from qixin.api.areas import staff_area
from qixin.api.common import error_responses, json_response

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services

AUTH = ("AUTH_MISSING", "APPKEY_INVALID", "SIGNATURE_INVALID", "TIMESTAMP_EXPIRED", "NONCE_REPLAYED", "IP_FORBIDDEN")
STAFF = ("STAFF_AUTH_REQUIRED", "STAFF_TOKEN_INVALID", "FORBIDDEN")
LATENCY_HELP = "逗号分隔：channel,account_id"
GROUP_HELP = "逗号分隔：account_id,signature,template_id,type,carrier,province,channel,status,reason"


def _split(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def stats_routers(platform: Services) -> list[APIRouter]:
    v1 = APIRouter(prefix="/v1", tags=["statistics"])
    admin = APIRouter(prefix="/admin", tags=["admin: statistics"], dependencies=[staff_area(platform, "accounts.read")])

    @v1.get("/statistics", summary="发送统计：按小时或天、按各维度分组；成功率与失败原因",
            responses=error_responses(*AUTH))  # fmt: skip
    async def customer_stats(
        request: Request, group_by: str | None = Query(None, description=GROUP_HELP),
        bucket: str | None = Query("day", description="hour / day / none"), since: str | None = None,
        until: str | None = None, signature: str | None = None, template_id: int | None = Query(None, ge=0, lt=2**63),
        type: str | None = None, carrier: str | None = None, province: str | None = None, channel: str | None = None,
        status: str | None = None,
    ) -> Response:  # fmt: skip
        actor, _ = await deps.customer(platform, request)
        filters = {"signature": signature, "template_id": template_id, "type": type, "carrier": carrier,
                   "province": province, "channel": channel, "status": status}  # fmt: skip
        out = await platform.statistics.query(
            actor, _split(group_by), None if bucket == "none" else bucket, since, until, filters
        )
        return json_response(out)

    @admin.get("/statistics", summary="全平台发送统计（可按账户分组或过滤）", responses=error_responses(*STAFF))
    async def staff_stats(
        request: Request, group_by: str | None = Query(None, description=GROUP_HELP),
        bucket: str | None = Query("day", description="hour / day / none"), since: str | None = None,
        until: str | None = None, account_id: int | None = Query(None, ge=1, lt=2**63), signature: str | None = None,
        template_id: int | None = Query(None, ge=0, lt=2**63), type: str | None = None, carrier: str | None = None,
        province: str | None = None, channel: str | None = None, status: str | None = None,
    ) -> Response:  # fmt: skip
        actor = await deps.staff_actor(platform, request)
        filters = {"account_id": account_id, "signature": signature, "template_id": template_id, "type": type,
                   "carrier": carrier, "province": province, "channel": channel, "status": status}  # fmt: skip
        out = await platform.statistics.query(
            actor, _split(group_by), None if bucket == "none" else bucket, since, until, filters
        )
        return json_response(out)

    @v1.get("/statistics/latency", summary="回执时延：按小时或天、按通道分组的 p50/p90/p99（毫秒）",
            responses=error_responses(*AUTH))  # fmt: skip
    async def customer_latency(
        request: Request, group_by: str | None = Query(None, description=LATENCY_HELP),
        bucket: str | None = Query("day", description="hour / day / none"), since: str | None = None,
        until: str | None = None, channel: str | None = None,
    ) -> Response:  # fmt: skip
        actor, _ = await deps.customer(platform, request)
        out = await platform.statistics.latency(
            actor, _split(group_by), None if bucket == "none" else bucket, since, until, {"channel": channel}
        )
        return json_response(out)

    @admin.get("/statistics/latency", summary="全平台回执时延（按通道、账户分组）", responses=error_responses(*STAFF))
    async def staff_latency(
        request: Request, group_by: str | None = Query(None, description=LATENCY_HELP),
        bucket: str | None = Query("day", description="hour / day / none"), since: str | None = None,
        until: str | None = None, account_id: int | None = Query(None, ge=1, lt=2**63), channel: str | None = None,
    ) -> Response:  # fmt: skip
        actor = await deps.staff_actor(platform, request)
        out = await platform.statistics.latency(
            actor, _split(group_by), None if bucket == "none" else bucket, since, until,
            {"account_id": account_id, "channel": channel},
        )  # fmt: skip
        return json_response(out)

    return [v1, admin]
