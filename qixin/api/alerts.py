"""Alert and announcement routes: /admin/alerts, /admin/alert-rules, /admin/announcements (staff) and
GET /v1/announcements (a customer's own). Thin: HTTP ⇄ services/alerts.py and services/announcements.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from qixin.api import deps
from qixin.api.areas import staff_area
from qixin.api.common import error_responses, json_response, parse_json

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services

AUTH = ("AUTH_MISSING", "APPKEY_INVALID", "SIGNATURE_INVALID", "TIMESTAMP_EXPIRED", "NONCE_REPLAYED", "IP_FORBIDDEN")
STAFF = ("STAFF_AUTH_REQUIRED", "STAFF_TOKEN_INVALID", "FORBIDDEN")


def alert_routers(platform: Services) -> list[APIRouter]:
    v1 = APIRouter(prefix="/v1", tags=["announcements"])
    admin = APIRouter(prefix="/admin", tags=["admin: alerts"], dependencies=[staff_area(platform, "channels")])

    @v1.get("/announcements", summary="平台维护公告与故障通告（本账户相关的）", responses=error_responses(*AUTH))
    async def customer_announcements(
        request: Request, before_id: int | None = Query(None, ge=1, lt=2**63), limit: int = Query(50, ge=1, le=200)
    ) -> Response:
        actor, _ = await deps.customer(platform, request)
        return json_response(await platform.announcements.listing(actor, before_id, limit))

    @admin.get("/alerts", summary="告警历史：触发、恢复、确认", responses=error_responses(*STAFF, "INVALID_REQUEST"))
    async def list_alerts(
        request: Request, state: str | None = Query(None, description="open / resolved / unacknowledged"),
        kind: str | None = None, before_id: int | None = Query(None, ge=1, lt=2**63),
        limit: int = Query(50, ge=1, le=200),
    ) -> Response:  # fmt: skip
        actor = await deps.staff_actor(platform, request)
        return json_response(await platform.alerts.history(actor, state, kind, before_id, limit))

    @admin.post("/alerts/{alert_id}/ack", summary="确认告警",
                responses=error_responses(*STAFF, "NOT_FOUND", "CONFLICT"))  # fmt: skip
    async def ack_alert(alert_id: int, request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        return json_response(await platform.alerts.acknowledge(actor, alert_id))

    @admin.get("/alert-rules", summary="告警规则与阈值", responses=error_responses(*STAFF))
    async def list_rules(request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        return json_response({"rules": await platform.alerts.rules(actor)})

    @admin.put("/alert-rules/{rule_id}", summary="修改告警规则（阈值、持续时间、窗口、最小样本、启用）",
               responses=error_responses(*STAFF, "INVALID_JSON", "INVALID_REQUEST", "NOT_FOUND"))  # fmt: skip
    async def set_rule(rule_id: int, request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        return json_response(await platform.alerts.set_rule(actor, rule_id, parse_json(await request.body())))

    @admin.get("/announcements", summary="全部公告（include_withdrawn=true 含已撤回）",
               responses=error_responses(*STAFF))  # fmt: skip
    async def staff_announcements(
        request: Request, before_id: int | None = Query(None, ge=1, lt=2**63), limit: int = Query(50, ge=1, le=200),
        include_withdrawn: bool = False,
    ) -> Response:  # fmt: skip
        actor = await deps.staff_actor(platform, request)
        return json_response(await platform.announcements.listing(actor, before_id, limit, include_withdrawn))

    @admin.post("/announcements", summary="发布维护公告或故障通告，并通知受影响账户（邮件、回调）", status_code=201,
                responses=error_responses(*STAFF, "INVALID_JSON", "INVALID_REQUEST", "NOT_FOUND"))  # fmt: skip
    async def publish(request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        return json_response(await platform.announcements.publish(actor, parse_json(await request.body())), 201)

    @admin.get("/announcements/{announcement_id}", summary="公告详情", responses=error_responses(*STAFF, "NOT_FOUND"))
    async def get_announcement(announcement_id: int, request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        return json_response(await platform.announcements.get(actor, announcement_id))

    @admin.patch("/announcements/{announcement_id}", summary="修改公告（title、body、ends_at、status）",
                 responses=error_responses(*STAFF, "INVALID_JSON", "INVALID_REQUEST", "NOT_FOUND"))  # fmt: skip
    async def update_announcement(announcement_id: int, request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        body = parse_json(await request.body())
        return json_response(await platform.announcements.update(actor, announcement_id, body))

    @admin.delete("/announcements/{announcement_id}", summary="撤回公告",
                  responses=error_responses(*STAFF, "NOT_FOUND"))  # fmt: skip
    async def withdraw(announcement_id: int, request: Request) -> Response:
        actor = await deps.staff_actor(platform, request)
        return json_response(await platform.announcements.withdraw(actor, announcement_id))

    return [v1, admin]
