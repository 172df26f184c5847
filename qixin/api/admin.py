"""The staff API under /admin: bearer tokens (``qixin staff create``), roles, audit log.

Thin routes: each checks the caller's role for an area (services/staff.py ROLE_GRANTS), calls a
service function inside one transaction together with the audit row, and answers JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from qixin.api.common import field, json_response, parse_json
from qixin.api.deps import staff_act, staff_for
from qixin.domain.numbers import mask
from qixin.services import accounts, billing, channels, portability
from qixin.services.staff import Staff
from qixin.store.db import Tx

if TYPE_CHECKING:
    from qixin.app import Platform


def admin_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix="/admin", tags=["admin"])
    db = platform.db

    async def staff(request: Request, area: str) -> Staff:
        return await staff_for(platform, request, area)

    async def act(request: Request, who: Staff, action: str, target: str, fn: Callable[[Tx], Any]) -> Any:
        return await staff_act(platform, request, who, action, target, fn)

    # -- accounts ----------------------------------------------------------------------------------
    @router.get("/accounts", summary="客户账户列表")
    async def list_accounts(request: Request) -> Response:
        await staff(request, "accounts.read")
        rows = await db.read(
            lambda tx: tx.all("SELECT id, name, status, balance_li, price_li, created_at FROM accounts ORDER BY id")
        )
        keys = ("account_id", "name", "status", "balance_li", "price_li", "created_at")
        return json_response({"accounts": [dict(zip(keys, r, strict=True)) for r in rows]})

    @router.post("/accounts", summary="创建客户账户（签名、开户充值、API 密钥）")
    async def create_account(request: Request) -> Response:
        who = await staff(request, "accounts.write")
        data = parse_json(await request.body())
        name = field(data, "name", str)
        signature = field(data, "signature", str)
        balance = billing.yuan_to_li(field(data, "balance", str, required=False, default="0"))
        price = billing.yuan_to_li(field(data, "price", str))
        callback = field(data, "callback_url", str, required=False)
        free_text = field(data, "allow_free_text", bool, required=False, default=True)
        out = await act(
            request, who, "account.create", f"account:{name}",
            lambda tx: accounts.create_account(tx, name, signature, balance, price, callback, free_text),
        )  # fmt: skip
        return json_response(out, 201)

    @router.post("/accounts/{account_id}/topup", summary="充值")
    async def topup(account_id: int, request: Request) -> Response:
        who = await staff(request, "money")
        data = parse_json(await request.body())
        amount = billing.yuan_to_li(field(data, "amount", str))
        ref = field(data, "ref", str)
        bal = await act(
            request, who, "account.topup", f"account:{account_id}",
            lambda tx: billing.topup(tx, account_id, amount, ref, field(data, "note", str, required=False)),
        )  # fmt: skip
        return json_response({"account_id": account_id, "balance_li": bal, "balance": billing.li_to_yuan(bal)})

    # -- review ------------------------------------------------------------------------------------
    def review_routes(kind: str, table: str, columns: str) -> None:
        @router.get(f"/{kind}", summary=f"{kind} 列表（可按 status 过滤）", name=f"list_{kind}")
        async def listing(request: Request, status: str | None = None) -> Response:
            await staff(request, "review")
            sql = f"SELECT {columns} FROM {table}" + (" WHERE status = ?" if status else "") + " ORDER BY id"
            rows = await db.read(lambda tx: tx.all(sql, (status,) if status else ()))
            keys = [c.strip() for c in columns.split(",")]
            return json_response({kind: [dict(zip(keys, r, strict=True)) for r in rows]})

        @router.post(f"/{kind}/{{item_id}}/approve", summary="审核通过", name=f"approve_{kind}")
        async def approve(item_id: int, request: Request) -> Response:
            who = await staff(request, "review")
            await act(request, who, f"{kind}.approve", f"{kind}:{item_id}",
                      lambda tx: accounts.review(tx, table, item_id, True))  # fmt: skip
            return json_response({"id": item_id, "status": "approved"})

        @router.post(f"/{kind}/{{item_id}}/reject", summary="驳回（需填写原因）", name=f"reject_{kind}")
        async def reject(item_id: int, request: Request) -> Response:
            who = await staff(request, "review")
            reason = field(parse_json(await request.body()), "reason", str)
            await act(request, who, f"{kind}.reject", f"{kind}:{item_id}",
                      lambda tx: accounts.review(tx, table, item_id, False, reason))  # fmt: skip
            return json_response({"id": item_id, "status": "rejected", "reason": reason})

    review_routes("signatures", "signatures", "id, account_id, name, status, reason, created_at")
    review_routes("templates", "templates", "id, account_id, name, category, content, variables, status, reason")

    # -- channels ----------------------------------------------------------------------------------
    async def resync() -> None:
        if platform.channels is not None:
            await platform.channels.sync()

    @router.get("/channels", summary="通道列表与健康状态（会话、窗口、TPS、错误、回执）")
    async def list_channels(request: Request) -> Response:
        await staff(request, "channels")
        if platform.channels is not None:
            return json_response({"channels": platform.channels.health()})
        rows = await db.read(channels.list_channels)
        return json_response({"channels": [c.public() for c in rows]})

    @router.post("/channels", summary="新建通道（立即生效，无需重启）")
    async def create_channel(request: Request) -> Response:
        who = await staff(request, "channels")
        data = parse_json(await request.body())
        ch = await act(request, who, "channel.create", f"channel:{data.get('name')}",
                       lambda tx: channels.create_channel(tx, data).public())  # fmt: skip
        await resync()
        return json_response(ch, 201)

    @router.patch("/channels/{channel_id}", summary="修改通道（版本号递增，连接按新配置重建）")
    async def update_channel(channel_id: int, request: Request) -> Response:
        who = await staff(request, "channels")
        data = parse_json(await request.body())
        ch = await act(request, who, "channel.update", f"channel:{channel_id}",
                       lambda tx: channels.update_channel(tx, channel_id, data).public())  # fmt: skip
        await resync()
        return json_response(ch)

    @router.delete("/channels/{channel_id}", summary="删除通道")
    async def delete_channel(channel_id: int, request: Request) -> Response:
        who = await staff(request, "channels")
        await act(request, who, "channel.delete", f"channel:{channel_id}",
                  lambda tx: channels.delete_channel(tx, channel_id))  # fmt: skip
        await resync()
        return json_response({"id": channel_id, "deleted": True})

    @router.get("/ported-numbers", summary="携号转网号码（从回执学习或导入）")
    async def ported_list(request: Request, limit: int = 1000) -> Response:
        await staff(request, "channels")
        rows = await db.read(
            lambda tx: tx.all(
                "SELECT number, carrier, learned_at FROM ported_numbers ORDER BY learned_at DESC LIMIT ?",
                (max(1, min(limit, 100_000)),),
            )
        )
        items = [{"number": mask(r[0]), "carrier": r[1], "learned_at": r[2]} for r in rows]
        return json_response({"ported_numbers": items})

    @router.post("/ported-numbers", summary="导入携号转网号码 [{number, carrier}]")
    async def ported_import(request: Request) -> Response:
        who = await staff(request, "channels")
        items = field(parse_json(await request.body()), "numbers", list)
        n = await act(request, who, "ported.import", "ported_numbers",
                      lambda tx: {"imported": portability.import_numbers(tx, items)})  # fmt: skip
        platform.accept.ported.invalidate()
        return json_response(n)

    # -- audit -------------------------------------------------------------------------------------
    @router.get("/audit", summary="审计日志（最新在前）")
    async def audit_list(request: Request, limit: int = 100, before_id: int | None = None) -> Response:
        await staff(request, "audit.read")
        limit = max(1, min(limit, 1000))
        sql = "SELECT id, actor_type, actor_id, action, target, detail, ip, created_at FROM audit_log"
        params: tuple[Any, ...] = ()
        if before_id:
            sql += " WHERE id < ?"
            params = (before_id,)
        rows = await db.read(lambda tx: tx.all(sql + " ORDER BY id DESC LIMIT ?", (*params, limit)))
        keys = ("id", "actor_type", "actor_id", "action", "target", "detail", "ip", "created_at")
        return json_response({"entries": [dict(zip(keys, r, strict=True)) for r in rows]})

    return router
