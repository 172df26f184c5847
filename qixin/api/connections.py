"""Staff routes for direct connections (customer SMPP / CMPP logins) under /admin/connections.

Thin: the bearer token becomes a staff ``Actor``; ``services/connections.Connections`` checks the area
(``channels`` to change, ``accounts.read`` to list), validates, writes with its audit row and answers.
The secret is write-only: accepted on create and change, never returned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from qixin.api.areas import staff_area
from qixin.api.common import body_of, error_responses, json_response, parse_model
from qixin.api.deps import staff_actor

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services

ERRORS = ("STAFF_AUTH_REQUIRED", "STAFF_TOKEN_INVALID", "FORBIDDEN", "INVALID_JSON", "INVALID_REQUEST", "NOT_FOUND")


class ConnectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: int
    protocol: str = Field(description="smpp | cmpp | sgip | smgp")
    login: str = Field(description="SMPP system_id / CMPP SP id (digits) / SGIP Login Name / SMGP ClientID")
    secret: str = Field(description="write-only")
    ip_allowlist: list[str] = Field(default_factory=list, description="CIDRs; empty: any source")
    max_connections: int = 4
    tps: int = Field(0, description="submits per second; 0: no cap of its own")
    daily_cap: int = Field(0, description="messages per Beijing day; 0: none")
    service_code: str = ""
    signature: str = ""
    msg_type: str = "notification"
    deliver_to: str = Field("", description="SGIP: host:port of the customer's own listener (receipts and MO)")


class ConnectionChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    secret: str | None = None
    ip_allowlist: list[str] | None = None
    max_connections: int | None = None
    tps: int | None = None
    daily_cap: int | None = None
    service_code: str | None = None
    signature: str | None = None
    msg_type: str | None = None
    status: str | None = Field(None, description="active | disabled")
    deliver_to: str | None = None


def connections_router(platform: Services) -> APIRouter:
    router = APIRouter(prefix="/admin/connections", tags=["admin"])

    def _port(protocol: str) -> int | None:
        return platform.settings.customer_port(protocol) or None

    @router.get(
        "",
        dependencies=[staff_area(platform, "accounts.read")],
        summary="直连账号列表（不含密码）",
        responses=error_responses(*ERRORS),
    )
    async def list_connections(request: Request, account_id: int | None = None) -> Response:
        who = await staff_actor(platform, request)
        return json_response({"connections": await platform.connections.listing(who, account_id)})

    @router.post(
        "", dependencies=[staff_area(platform, "channels")],
        summary="新建直连账号（SMPP / CMPP 登录）", status_code=201, openapi_extra=body_of(ConnectionCreate),
        responses=error_responses(*ERRORS, "CONFLICT", "TYPE_INVALID"),
    )  # fmt: skip
    async def create_connection(request: Request) -> Response:
        who = await staff_actor(platform, request)
        req = parse_model(ConnectionCreate, await request.body())
        out = await platform.connections.add(
            who, req.account_id, req.protocol, req.login, req.secret, ip_allowlist=req.ip_allowlist,
            max_connections=req.max_connections, tps=req.tps, daily_cap=req.daily_cap, service_code=req.service_code,
            signature=req.signature, msg_type=req.msg_type, deliver_to=req.deliver_to, port=_port(req.protocol),
        )  # fmt: skip
        return json_response(out, 201)

    @router.get(
        "/{connection_id}",
        dependencies=[staff_area(platform, "accounts.read")],
        summary="直连账号（不含密码）",
        responses=error_responses(*ERRORS),
    )
    async def get_connection(connection_id: int, request: Request) -> Response:
        who = await staff_actor(platform, request)
        return json_response(await platform.connections.get(who, connection_id))

    @router.patch(
        "/{connection_id}", dependencies=[staff_area(platform, "channels")],
        summary="修改直连账号（运行中的端口数秒内生效）",
        openapi_extra=body_of(ConnectionChange), responses=error_responses(*ERRORS, "TYPE_INVALID"),
    )  # fmt: skip
    async def change_connection(connection_id: int, request: Request) -> Response:
        who = await staff_actor(platform, request)
        req = parse_model(ConnectionChange, await request.body())
        changes: dict[str, Any] = req.model_dump(exclude_none=True)
        return json_response(await platform.connections.set(who, connection_id, **changes))

    @router.delete(
        "/{connection_id}",
        dependencies=[staff_area(platform, "channels")],
        summary="删除直连账号",
        responses=error_responses(*ERRORS),
    )
    async def delete_connection(connection_id: int, request: Request) -> Response:
        who = await staff_actor(platform, request)
        await platform.connections.remove(who, connection_id)
        return json_response({"id": connection_id, "deleted": True})

    return router
