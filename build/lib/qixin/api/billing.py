"""Billing over HTTP: the customer's balance, packages, ledger, prices, notices and statements (/v1, signed),
and the finance staff's top-ups, settings, price plans, packages, refund rules and statements (/admin/billing,
bearer token, area "money", every change audited in its own transaction).

Thin routes: parse, call services/billing.py, pricing.py, statements.py, answer JSON (or a file).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from qixin.api import deps
from qixin.api.common import field, json_response, parse_json
from qixin.errors import QxError
from qixin.services import billing, notify, pricing, statements
from qixin.services.accounts import ApiKey
from qixin.services.staff import Staff, audit
from qixin.store.db import Tx, now_ms

if TYPE_CHECKING:
    from qixin.app import Services as Platform


def parse_time(value: Any) -> int | None:
    """Unix seconds, or ISO 8601 (naive = Asia/Shanghai) → ms UTC; None stays None."""
    if value in (None, ""):
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value * 1000)
        if isinstance(value, str):
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=billing.SHANGHAI)
            return int(dt.timestamp() * 1000)
    except (ValueError, OverflowError) as e:
        raise QxError("INVALID_REQUEST", f"时间格式错误：{value}") from e
    raise QxError("INVALID_REQUEST", f"时间格式错误：{value}")


def _file(data: bytes, name: str, mime: str) -> Response:
    return Response(data, media_type=mime, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def statement_file(s: dict[str, Any], fmt: str) -> Response:
    name = f"statement-{s['account_id']}-{s['period']}"
    if fmt == "csv":
        return _file(statements.to_csv(s), f"{name}.csv", "text/csv; charset=utf-8")
    if fmt == "xlsx":
        return _file(statements.to_xlsx(s), f"{name}.xlsx", statements.XLSX_MIME)
    raise QxError("NOT_FOUND")


def customer_billing_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["billing"])
    db = platform.db

    async def signed(request: Request) -> tuple[ApiKey, bytes]:
        return await deps.signed(platform, request)

    @router.get("/billing/balance", summary="余额、有效期与可用套餐条数")
    async def balance(request: Request) -> Response:
        key, _ = await signed(request)
        return json_response(await db.read(lambda tx: billing.balance_view(tx, key.account_id)))

    @router.get("/billing/packages", summary="条数包（套餐）")
    async def packages(request: Request) -> Response:
        key, _ = await signed(request)
        return json_response({"packages": await db.read(lambda tx: billing.list_packages(tx, key.account_id))})

    @router.get("/billing/ledger", summary="账本明细（分页，最新在前；用 next_before_id 翻页）")
    async def ledger(request: Request, limit: int = 50, before_id: int | None = None) -> Response:
        key, _ = await signed(request)
        return json_response(await db.read(lambda tx: billing.ledger_page(tx, key.account_id, limit, before_id)))

    @router.get("/billing/prices", summary="当前价格与已通知的调价")
    async def prices(request: Request) -> Response:
        key, _ = await signed(request)
        return json_response(await db.read(lambda tx: pricing.current_prices(tx, key.account_id)))

    @router.get("/billing/notifications", summary="通知（调价、余额提醒、对账单）")
    async def notices(request: Request, limit: int = 50, before_id: int | None = None) -> Response:
        key, _ = await signed(request)
        limit = max(1, min(limit, 200))
        rows = await db.read(lambda tx: notify.listing(tx, key.account_id, limit, before_id))
        return json_response({"notifications": rows})

    @router.get("/statements", summary="对账单列表")
    async def statement_list(request: Request) -> Response:
        key, _ = await signed(request)
        return json_response({"statements": await db.read(lambda tx: statements.listing(tx, key.account_id))})

    @router.get("/statements/{statement_id}", summary="对账单详情")
    async def statement_get(statement_id: int, request: Request) -> Response:
        key, _ = await signed(request)
        return json_response(await db.read(lambda tx: statements.get(tx, statement_id, key.account_id)))

    @router.get("/statements/{statement_id}/{fmt}", summary="下载对账单（csv 或 xlsx）")
    async def statement_download(statement_id: int, fmt: str, request: Request) -> Response:
        key, _ = await signed(request)
        return statement_file(await db.read(lambda tx: statements.get(tx, statement_id, key.account_id)), fmt)

    @router.post("/statements/{statement_id}/dispute", summary="对账单提出异议（异议期内，需填写原因）")
    async def statement_dispute(statement_id: int, request: Request) -> Response:
        key, body = await signed(request)
        reason = field(parse_json(body), "reason", str)

        def job(tx: Tx) -> dict[str, Any]:
            out = statements.dispute(tx, key.account_id, statement_id, reason)
            audit(tx, "customer", key.app_key, "statement.dispute", f"statement:{statement_id}", {"reason": reason})
            return out

        return json_response(await db.write(job))

    @router.post("/statements/{statement_id}/confirm", summary="确认对账单")
    async def statement_confirm(statement_id: int, request: Request) -> Response:
        key, _ = await signed(request)

        def job(tx: Tx) -> dict[str, Any]:
            out = statements.confirm(tx, key.account_id, statement_id)
            audit(tx, "customer", key.app_key, "statement.confirm", f"statement:{statement_id}")
            return out

        return json_response(await db.write(job))

    return router


SETTINGS_IN = {  # request field -> (column, yuan amount?)
    "min_first_topup": ("min_first_topup_li", True),
    "min_topup": ("min_topup_li", True),
    "low_balance": ("low_balance_li", True),
    "validity_months": ("validity_months", False),
    "alert_email": ("alert_email", False),
    "alert_webhook": ("alert_webhook", False),
    "alert_mobile": ("alert_mobile", False),
    "billing_email": ("billing_email", False),
}


def admin_billing_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix="/admin/billing", tags=["admin-billing"])
    db = platform.db

    async def finance(request: Request) -> Staff:
        return await deps.staff_for(platform, request, "money")

    async def act(request: Request, who: Staff, action: str, target: str, fn: Callable[[Tx], Any]) -> Any:
        return await deps.staff_act(platform, request, who, action, target, fn)

    @router.get("/accounts/{account_id}", summary="账户计费概况与设置")
    async def account(account_id: int, request: Request) -> Response:
        await finance(request)

        def q(tx: Tx) -> dict[str, Any]:
            return billing.balance_view(tx, account_id) | {"settings": billing.get_settings(tx, account_id)}

        return json_response(await db.read(q))

    @router.put("/accounts/{account_id}/settings", summary="计费设置：最低充值、有效期、余额提醒、联系方式")
    async def settings(account_id: int, request: Request) -> Response:
        who = await finance(request)
        data = parse_json(await request.body())
        changes: dict[str, Any] = {}
        for name, value in data.items():
            if name not in SETTINGS_IN:
                raise QxError("INVALID_REQUEST", f"未知设置项 {name}")
            column, money = SETTINGS_IN[name]
            changes[column] = billing.yuan_to_li(value) if money else value
        out = await act(request, who, "billing.settings", f"account:{account_id}",
                        lambda tx: billing.update_settings(tx, account_id, changes))  # fmt: skip
        return json_response(out)

    @router.post("/accounts/{account_id}/topups", summary="充值（operator=true 为运营充值，不受最低金额限制）")
    async def topup(account_id: int, request: Request) -> Response:
        who = await finance(request)
        data = parse_json(await request.body())
        amount = billing.yuan_to_li(field(data, "amount", str))
        ref = field(data, "ref", str)
        note = field(data, "note", str, required=False)
        operator = field(data, "operator", bool, required=False, default=False)
        bal = await act(request, who, "billing.topup", f"account:{account_id}",
                        lambda tx: billing.topup(tx, account_id, amount, ref, note, operator=operator))  # fmt: skip
        return json_response({"account_id": account_id, "balance_li": bal, "balance": billing.li_to_yuan(bal)}, 201)

    @router.get("/accounts/{account_id}/ledger", summary="账本明细（分页）")
    async def ledger(account_id: int, request: Request, limit: int = 50, before_id: int | None = None) -> Response:
        await finance(request)
        return json_response(await db.read(lambda tx: billing.ledger_page(tx, account_id, limit, before_id)))

    @router.get("/accounts/{account_id}/price-plans", summary="价格计划")
    async def plans(account_id: int, request: Request) -> Response:
        await finance(request)
        return json_response({"plans": await db.read(lambda tx: pricing.list_plans(tx, account_id))})

    @router.post("/accounts/{account_id}/price-plans", summary="新增价格计划（生效时间；同时通知客户）")
    async def add_plan(account_id: int, request: Request) -> Response:
        who = await finance(request)
        data = parse_json(await request.body())
        price = billing.yuan_to_li(field(data, "price", str))
        product = field(data, "product", str, required=False, default="sms")
        carrier = field(data, "carrier", str, required=False, default="")
        msg_type = field(data, "type", str, required=False, default="")
        at = parse_time(data.get("effective_at"))
        note = field(data, "note", str, required=False)
        notice = platform.settings.price_notice_days * 86_400_000
        out = await act(
            request, who, "billing.price_plan", f"account:{account_id}",
            lambda tx: pricing.create_plan(tx, account_id, product, price, carrier=carrier, msg_type=msg_type,
                                           effective_at=at, note=note, created_by=f"staff:{who.id}",
                                           min_notice_ms=notice),
        )  # fmt: skip
        platform.pricer.invalidate(account_id)
        return json_response(out, 201)

    @router.get("/accounts/{account_id}/packages", summary="条数包")
    async def packages(account_id: int, request: Request) -> Response:
        await finance(request)
        return json_response({"packages": await db.read(lambda tx: billing.list_packages(tx, account_id))})

    @router.post("/accounts/{account_id}/packages", summary="开通条数包（year 自然年 / term 期限）")
    async def grant(account_id: int, request: Request) -> Response:
        who = await finance(request)
        data = parse_json(await request.body())
        kind = field(data, "kind", str)
        parts = field(data, "parts", int)
        ref = field(data, "ref", str)
        price = billing.yuan_to_li(field(data, "price", str, required=False, default="0"))
        out = await act(
            request, who, "billing.package", f"account:{account_id}",
            lambda tx: billing.grant_package(
                tx, account_id, kind, parts, ref, year=field(data, "year", int, required=False),
                starts_at=parse_time(data.get("starts_at")), expires_at=parse_time(data.get("expires_at")),
                months=field(data, "months", int, required=False), price_li=price,
                pay_from_balance=field(data, "pay_from_balance", bool, required=False, default=False),
                name=field(data, "name", str, required=False, default=""),
            ),
        )  # fmt: skip
        return json_response(out, 201)

    @router.get("/refund-rules", summary="退款规则（哪些状态报告 stat / 错误码退款）")
    async def rules(request: Request) -> Response:
        await finance(request)
        rows = await db.read(lambda tx: tx.all("SELECT id, account_id, kind, code FROM refund_rules ORDER BY id"))
        keys = ("id", "account_id", "kind", "code")
        return json_response({"rules": [dict(zip(keys, r, strict=True)) for r in rows]})

    @router.post("/refund-rules", summary="新增退款规则（account_id 0 = 全部账户）")
    async def add_rule(request: Request) -> Response:
        who = await finance(request)
        data = parse_json(await request.body())
        kind, code = field(data, "kind", str), field(data, "code", str)
        account_id = field(data, "account_id", int, required=False, default=0)
        out = await act(request, who, "billing.refund_rule.add", f"account:{account_id}",
                        lambda tx: billing.add_refund_rule(tx, kind, code, account_id))  # fmt: skip
        return json_response(out, 201)

    @router.delete("/refund-rules/{rule_id}", summary="删除退款规则")
    async def remove_rule(rule_id: int, request: Request) -> Response:
        who = await finance(request)
        await act(request, who, "billing.refund_rule.remove", f"refund_rule:{rule_id}",
                  lambda tx: billing.remove_refund_rule(tx, rule_id))  # fmt: skip
        return json_response({"id": rule_id, "deleted": True})

    @router.post("/statements", summary="出对账单（不填 account_id 则全部账户），可选发送邮件")
    async def issue(request: Request) -> Response:
        who = await finance(request)
        data = parse_json(await request.body())
        period = field(data, "period", str)
        account_id = field(data, "account_id", int, required=False)
        holidays = platform.settings.holidays

        def fn(tx: Tx) -> dict[str, Any]:
            if account_id is not None:
                ids_ = [statements.issue(tx, account_id, period, holidays=holidays)]
            else:
                _, end = statements.period_bounds(period)
                if end > now_ms():
                    raise QxError("STATEMENT_NOT_READY")
                accts = tx.all("SELECT id FROM accounts WHERE created_at < ? ORDER BY id", (end,))
                ids_ = [statements.issue(tx, int(a), period, holidays=holidays) for (a,) in accts]
            return {"period": period, "statement_ids": ids_}

        out = await act(request, who, "billing.statement.issue", f"period:{period}", fn)
        if field(data, "email", bool, required=False, default=False):
            out["emailed"] = [await statements.email_statement(db, platform.smtp, sid) for sid in out["statement_ids"]]
        return json_response(out, 201)

    @router.get("/statements", summary="对账单列表")
    async def statement_list(request: Request, account_id: int | None = None, period: str | None = None) -> Response:
        await finance(request)
        return json_response({"statements": await db.read(lambda tx: statements.listing(tx, account_id, period))})

    @router.get("/statements/{statement_id}", summary="对账单详情")
    async def statement_get(statement_id: int, request: Request) -> Response:
        await finance(request)
        return json_response(await db.read(lambda tx: statements.get(tx, statement_id)))

    @router.get("/statements/{statement_id}/{fmt}", summary="下载对账单（csv 或 xlsx）")
    async def statement_download(statement_id: int, fmt: str, request: Request) -> Response:
        await finance(request)
        return statement_file(await db.read(lambda tx: statements.get(tx, statement_id)), fmt)

    @router.post("/statements/{statement_id}/email", summary="发送对账单邮件")
    async def statement_email(statement_id: int, request: Request) -> Response:
        await finance(request)
        ok = await statements.email_statement(db, platform.smtp, statement_id)
        s = await db.read(lambda tx: statements.get(tx, statement_id))
        return json_response({"id": statement_id, "emailed": ok, "email_error": s["email_error"]})

    @router.get("/verify", summary="账本核对：余额与套餐计数等于各自账目之和")
    async def verify(request: Request) -> Response:
        await finance(request)
        return json_response(await db.read(billing.verify))

    return router
