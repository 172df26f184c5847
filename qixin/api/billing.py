"""Billing over HTTP: the customer's balance, packages, ledger, prices, notices and statements (/v1, signed),
and the finance staff's top-ups, settings, price plans, packages, refund rules and statements (/admin/billing,
bearer token, area "money", every change audited in its own transaction).

Thin routes: authenticate, validate the body against its pydantic model, call one use case of
``services/billing_desk.BillingDesk`` with the actor (it checks permission and writes the change with its
audit row in one transaction), answer JSON (or a file). No SQL and no transactions here.
Bodies are read only after authentication (a signed request's body is what was signed), so the request
models are documented with ``body_of`` and validated by ``parse_model``; response models document what
the routes answer (``response_model``). Every route lists its error codes (``error_responses``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from qixin.api import deps
from qixin.api.areas import staff_area
from qixin.api.common import body_of, error_responses, json_response, parse_model
from qixin.domain.money import li_to_yuan, yuan_to_li
from qixin.domain.timeparse import parse_time
from qixin.errors import QxError
from qixin.services import statements
from qixin.services.actor import Actor

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Platform

__all__ = ["admin_billing_router", "customer_billing_router", "parse_time", "statement_file"]

# -- request bodies ---------------------------------------------------------------------------------------


def _number_to_text(v: Any) -> Any:
    """A JSON number given where text is expected ("amount": 100) is taken as its text, as before."""
    return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v


Text = Annotated[StrictStr, BeforeValidator(_number_to_text)]
Instant = StrictInt | StrictFloat | StrictStr  # unix seconds or ISO 8601 (naive = Asia/Shanghai)


class Body(BaseModel):
    """A JSON body: unknown fields are ignored; ``null`` means the field was not given."""

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data


class DisputeIn(Body):
    reason: Text


class TopupIn(Body):
    amount: Text  # yuan, e.g. "100" or "0.035"
    ref: Text  # the top-up's own reference: one ref is credited once
    note: Text | None = None
    operator: StrictBool = False  # operator top-up: never refused for the account's minimum


class SettingsIn(BaseModel):
    """Billing settings of an account; only the fields given change (null clears a contact)."""

    model_config = ConfigDict(extra="forbid")
    min_first_topup: Text | None = None  # yuan, 0 = no minimum
    min_topup: Text | None = None  # yuan, 0 = no minimum
    low_balance: Text | None = None  # yuan, 0 = no balance-low alert
    validity_months: StrictInt | None = None  # each top-up extends the balance's validity; 0 = forever
    alert_email: StrictStr | None = None
    alert_webhook: StrictStr | None = None
    alert_mobile: StrictStr | None = None
    billing_email: StrictStr | None = None


class PlanIn(Body):
    price: Text  # yuan per unit
    product: Text = "sms"  # sms (per billed part) or numcheck (per query)
    carrier: Text = ""  # cmcc / cucc / ctcc / cbn; "" = any
    type: Text = ""  # verification / notification / marketing; "" = any
    effective_at: Instant | None = None  # default: now
    note: Text | None = None


class PackageIn(Body):
    kind: Text  # year (calendar year) or term
    parts: StrictInt
    ref: Text
    price: Text = "0"  # yuan
    year: StrictInt | None = None
    starts_at: Instant | None = None
    expires_at: Instant | None = None
    months: StrictInt | None = None
    pay_from_balance: StrictBool = False
    name: Text = ""


class RefundRuleIn(Body):
    kind: Text  # stat or err
    code: Text
    account_id: StrictInt = 0  # 0 = every account


class IssueIn(Body):
    period: Text  # YYYY-MM
    account_id: StrictInt | None = None  # default: every account that existed in the period
    email: StrictBool = False


# -- responses --------------------------------------------------------------------------------------------


class BalanceOut(BaseModel):
    account_id: int
    balance_li: int
    balance: str  # yuan
    balance_expires_at: int | None  # ms UTC; None = never expires
    package_parts: int  # SMS parts left in usable packages
    low_balance_li: int


class PackageOut(BaseModel):
    id: int
    account_id: int
    product: str
    kind: str
    name: str
    total_parts: int
    remaining_parts: int
    price_li: int
    starts_at: int
    expires_at: int
    status: str
    ref: str
    created_at: int


class PackagesOut(BaseModel):
    packages: list[PackageOut]


class LedgerEntryOut(BaseModel):
    id: int
    kind: str  # topup, charge, refund, expire, package, …
    amount_li: int
    amount: str  # yuan
    balance_after_li: int
    ref: str
    note: str | None
    created_at: int


class LedgerPageOut(BaseModel):
    entries: list[LedgerEntryOut]
    next_before_id: int | None  # pass as before_id for the next (older) page


class PlanOut(BaseModel):
    id: int
    account_id: int
    product: str
    carrier: str
    msg_type: str
    price_li: int
    price: str  # yuan
    effective_at: int
    note: str | None
    created_by: str
    created_at: int


class CreatedPlanOut(PlanOut):
    previous_price_li: int  # -1: the product had no price


class PlansOut(BaseModel):
    plans: list[PlanOut]


class PriceOut(BaseModel):
    product: str
    carrier: str
    type: str
    price_li: int | None  # None: not priced


class PricesOut(BaseModel):
    prices: list[PriceOut]
    upcoming: list[PlanOut]  # announced changes not yet in effect


class NoticeOut(BaseModel):
    id: int
    kind: str  # price_change, balance_low, statement
    subject: str
    body: str
    ref: str
    created_at: int


class NoticesOut(BaseModel):
    notifications: list[NoticeOut]


class StatementSummaryOut(BaseModel):
    id: int
    account_id: int
    period: str
    period_start: int
    period_end: int
    opening_li: int
    topups_li: int
    charges_li: int
    refunds_li: int
    expired_li: int
    other_li: int
    closing_li: int
    messages: int
    parts: int
    package_used: int
    package_expired: int
    status: str  # issued, disputed, confirmed
    issued_at: int
    dispute_deadline_at: int
    dispute_reason: str | None
    decided_at: int | None
    emailed_at: int | None
    email_error: str | None


class StatementOut(StatementSummaryOut):
    detail: dict[str, Any]  # sms (by type and carrier), ledger (by kind and product), packages


class StatementsOut(BaseModel):
    statements: list[StatementSummaryOut]


class SettingsOut(BaseModel):
    min_first_topup_li: int
    min_topup_li: int
    validity_months: int
    low_balance_li: int
    alert_email: str | None
    alert_webhook: str | None
    alert_mobile: str | None
    billing_email: str | None
    balance_expires_at: int | None
    topups: int
    low_alert_armed: bool


class AccountBillingOut(BalanceOut):
    settings: SettingsOut


class TopupOut(BaseModel):
    account_id: int
    balance_li: int
    balance: str


class RefundRuleOut(BaseModel):
    id: int
    account_id: int
    kind: str
    code: str


class RefundRulesOut(BaseModel):
    rules: list[RefundRuleOut]


class DeletedOut(BaseModel):
    id: int
    deleted: bool


class IssuedOut(BaseModel):
    period: str
    statement_ids: list[int]
    emailed: list[bool] | None = None  # with "email": true, per statement


class EmailedOut(BaseModel):
    id: int
    emailed: bool
    email_error: str | None


class VerifyOut(BaseModel):
    accounts: int
    packages: int
    mismatches: list[dict[str, int]]
    package_mismatches: list[dict[str, int]]
    negative: list[int]
    ok: bool


SIGNED = ("AUTH_MISSING", "TIMESTAMP_EXPIRED", "APPKEY_INVALID", "SIGNATURE_INVALID", "IP_FORBIDDEN",
          "NONCE_REPLAYED")  # fmt: skip
STAFF = ("STAFF_AUTH_REQUIRED", "STAFF_TOKEN_INVALID", "FORBIDDEN")


def _signed(*codes: str) -> dict[int | str, dict[str, Any]]:
    return error_responses(*SIGNED, *codes)


def _staff(*codes: str) -> dict[int | str, dict[str, Any]]:
    return error_responses(*STAFF, *codes)


def _file(data: bytes, name: str, mime: str) -> Response:
    return Response(data, media_type=mime, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def statement_file(s: dict[str, Any], fmt: str) -> Response:
    name = f"statement-{s['account_id']}-{s['period']}"
    if fmt == "csv":
        return _file(statements.to_csv(s), f"{name}.csv", "text/csv; charset=utf-8")
    if fmt == "xlsx":
        return _file(statements.to_xlsx(s), f"{name}.xlsx", statements.XLSX_MIME)
    raise QxError("NOT_FOUND")


FILE_RESPONSE: dict[str, Any] = {
    "content": {"text/csv": {}, statements.XLSX_MIME: {}},
    "description": "对账单文件（CSV 含 BOM，或 XLSX）",
}


# -- the customer's billing API ---------------------------------------------------------------------------


def customer_billing_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["billing"])
    desk = platform.billing

    async def customer(request: Request) -> tuple[Actor, bytes]:
        return await deps.customer(platform, request)

    @router.get("/billing/balance", summary="余额、有效期与可用套餐条数", response_model=BalanceOut,
                responses=_signed("NOT_FOUND"))  # fmt: skip
    async def balance(request: Request) -> Response:
        who, _ = await customer(request)
        return json_response(await desk.balance(who))

    @router.get("/billing/packages", summary="条数包（套餐）", response_model=PackagesOut, responses=_signed())
    async def packages(request: Request) -> Response:
        who, _ = await customer(request)
        return json_response({"packages": await desk.packages(who)})

    @router.get("/billing/ledger", summary="账本明细（分页，最新在前；用 next_before_id 翻页）",
                response_model=LedgerPageOut, responses=_signed())  # fmt: skip
    async def ledger(request: Request, limit: int = 50, before_id: int | None = None) -> Response:
        who, _ = await customer(request)
        return json_response(await desk.ledger(who, None, limit, before_id))

    @router.get("/billing/prices", summary="当前价格与已通知的调价", response_model=PricesOut,
                responses=_signed("NOT_FOUND"))  # fmt: skip
    async def prices(request: Request) -> Response:
        who, _ = await customer(request)
        return json_response(await desk.prices(who))

    @router.get("/billing/notifications", summary="通知（调价、余额提醒、对账单）", response_model=NoticesOut,
                responses=_signed())  # fmt: skip
    async def notices(request: Request, limit: int = 50, before_id: int | None = None) -> Response:
        who, _ = await customer(request)
        return json_response({"notifications": await desk.notices(who, None, limit, before_id)})

    @router.get("/statements", summary="对账单列表", response_model=StatementsOut, responses=_signed())
    async def statement_list(request: Request) -> Response:
        who, _ = await customer(request)
        return json_response({"statements": await desk.statements(who)})

    @router.get("/statements/{statement_id}", summary="对账单详情", response_model=StatementOut,
                responses=_signed("NOT_FOUND"))  # fmt: skip
    async def statement_get(statement_id: int, request: Request) -> Response:
        who, _ = await customer(request)
        return json_response(await desk.statement(who, statement_id))

    @router.get("/statements/{statement_id}/{fmt}", summary="下载对账单（csv 或 xlsx）",
                responses={200: FILE_RESPONSE, **_signed("NOT_FOUND")})  # fmt: skip
    async def statement_download(statement_id: int, fmt: str, request: Request) -> Response:
        who, _ = await customer(request)
        return statement_file(await desk.statement(who, statement_id), fmt)

    @router.post("/statements/{statement_id}/dispute", summary="对账单提出异议（异议期内，需填写原因）",
                 response_model=StatementOut, openapi_extra=body_of(DisputeIn),
                 responses=_signed("INVALID_JSON", "NOT_FOUND", "STATEMENT_NOT_DISPUTABLE"))  # fmt: skip
    async def statement_dispute(statement_id: int, request: Request) -> Response:
        who, raw = await customer(request)
        body = parse_model(DisputeIn, raw)
        return json_response(await desk.dispute(who, statement_id, body.reason))

    @router.post("/statements/{statement_id}/confirm", summary="确认对账单", response_model=StatementOut,
                 responses=_signed("NOT_FOUND", "STATEMENT_NOT_DISPUTABLE"))  # fmt: skip
    async def statement_confirm(statement_id: int, request: Request) -> Response:
        who, _ = await customer(request)
        return json_response(await desk.confirm(who, statement_id))

    return router


# -- the finance staff's billing API ----------------------------------------------------------------------

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
    router = APIRouter(prefix="/admin/billing", tags=["admin-billing"], dependencies=[staff_area(platform, "money")])
    desk = platform.billing

    async def finance(request: Request) -> Actor:
        """The staff actor (the router's ``money`` guard has refused, before the body, a role outside it)."""
        return await deps.staff_actor(platform, request)

    @router.get("/accounts/{account_id}", summary="账户计费概况与设置", response_model=AccountBillingOut,
                responses=_staff("NOT_FOUND"))  # fmt: skip
    async def account(account_id: int, request: Request) -> Response:
        return json_response(await desk.account(await finance(request), account_id))

    @router.put("/accounts/{account_id}/settings", summary="计费设置：最低充值、有效期、余额提醒、联系方式",
                response_model=SettingsOut, openapi_extra=body_of(SettingsIn),
                responses=_staff("INVALID_JSON", "NOT_FOUND"))  # fmt: skip
    async def settings(account_id: int, request: Request) -> Response:
        who = await finance(request)
        body = parse_model(SettingsIn, await request.body())
        changes: dict[str, Any] = {}
        for name in body.model_fields_set:
            column, money = SETTINGS_IN[name]
            value = getattr(body, name)
            changes[column] = yuan_to_li(value) if money else value
        return json_response(await desk.update_settings(who, account_id, changes))

    @router.post("/accounts/{account_id}/topups", summary="充值（operator=true 为运营充值，不受最低金额限制）",
                 status_code=201, response_model=TopupOut, openapi_extra=body_of(TopupIn),
                 responses=_staff("INVALID_JSON", "NOT_FOUND", "TOPUP_DUPLICATE", "TOPUP_BELOW_MINIMUM"))  # fmt: skip
    async def topup(account_id: int, request: Request) -> Response:
        who = await finance(request)
        b = parse_model(TopupIn, await request.body())
        bal = await desk.topup(who, account_id, yuan_to_li(b.amount), b.ref, b.note, operator=b.operator)
        return json_response({"account_id": account_id, "balance_li": bal, "balance": li_to_yuan(bal)}, 201)

    @router.get("/accounts/{account_id}/ledger", summary="账本明细（分页）", response_model=LedgerPageOut,
                responses=_staff())  # fmt: skip
    async def ledger(account_id: int, request: Request, limit: int = 50, before_id: int | None = None) -> Response:
        return json_response(await desk.ledger(await finance(request), account_id, limit, before_id))

    @router.get("/accounts/{account_id}/price-plans", summary="价格计划", response_model=PlansOut,
                responses=_staff())  # fmt: skip
    async def plans(account_id: int, request: Request) -> Response:
        return json_response({"plans": await desk.plans(await finance(request), account_id)})

    @router.post("/accounts/{account_id}/price-plans", summary="新增价格计划（生效时间；同时通知客户）",
                 status_code=201, response_model=CreatedPlanOut, openapi_extra=body_of(PlanIn),
                 responses=_staff("INVALID_JSON", "NOT_FOUND", "TYPE_INVALID", "PRICE_NOTICE_TOO_SHORT"))  # fmt: skip
    async def add_plan(account_id: int, request: Request) -> Response:
        who = await finance(request)
        b = parse_model(PlanIn, await request.body())
        price, at = yuan_to_li(b.price), parse_time(b.effective_at)
        out = await desk.add_price_plan(who, account_id, b.product, price, b.carrier, b.type, at, b.note)
        return json_response(out, 201)

    @router.get("/accounts/{account_id}/packages", summary="条数包", response_model=PackagesOut, responses=_staff())
    async def packages(account_id: int, request: Request) -> Response:
        return json_response({"packages": await desk.packages(await finance(request), account_id)})

    @router.post("/accounts/{account_id}/packages", summary="开通条数包（year 自然年 / term 期限）",
                 status_code=201, response_model=PackageOut, openapi_extra=body_of(PackageIn),
                 responses=_staff("INVALID_JSON", "NOT_FOUND", "PACKAGE_DUPLICATE", "INSUFFICIENT_BALANCE",
                                  "BALANCE_EXPIRED"))  # fmt: skip
    async def grant(account_id: int, request: Request) -> Response:
        who = await finance(request)
        b = parse_model(PackageIn, await request.body())
        price = yuan_to_li(b.price)
        starts, ends = parse_time(b.starts_at), parse_time(b.expires_at)
        out = await desk.grant_package(
            who, account_id, b.kind, b.parts, b.ref, year=b.year, starts_at=starts, expires_at=ends,
            months=b.months, price_li=price, pay_from_balance=b.pay_from_balance, name=b.name,
        )  # fmt: skip
        return json_response(out, 201)

    @router.get("/refund-rules", summary="退款规则（哪些状态报告 stat / 错误码退款）", response_model=RefundRulesOut,
                responses=_staff())  # fmt: skip
    async def rules(request: Request) -> Response:
        return json_response({"rules": await desk.refund_rules(await finance(request))})

    @router.post("/refund-rules", summary="新增退款规则（account_id 0 = 全部账户）", status_code=201,
                 response_model=RefundRuleOut, openapi_extra=body_of(RefundRuleIn),
                 responses=_staff("INVALID_JSON", "CONFLICT"))  # fmt: skip
    async def add_rule(request: Request) -> Response:
        who = await finance(request)
        b = parse_model(RefundRuleIn, await request.body())
        return json_response(await desk.add_refund_rule(who, b.kind, b.code, b.account_id), 201)

    @router.delete("/refund-rules/{rule_id}", summary="删除退款规则", response_model=DeletedOut,
                   responses=_staff("NOT_FOUND"))  # fmt: skip
    async def remove_rule(rule_id: int, request: Request) -> Response:
        return json_response(await desk.remove_refund_rule(await finance(request), rule_id))

    @router.post("/statements", summary="出对账单（不填 account_id 则全部账户），可选发送邮件", status_code=201,
                 response_model=IssuedOut, openapi_extra=body_of(IssueIn),
                 responses=_staff("INVALID_JSON", "NOT_FOUND", "STATEMENT_NOT_READY"))  # fmt: skip
    async def issue(request: Request) -> Response:
        who = await finance(request)
        b = parse_model(IssueIn, await request.body())
        return json_response(await desk.issue_statements(who, b.period, b.account_id, b.email), 201)

    @router.get("/statements", summary="对账单列表", response_model=StatementsOut, responses=_staff())
    async def statement_list(request: Request, account_id: int | None = None, period: str | None = None) -> Response:
        return json_response({"statements": await desk.statements(await finance(request), account_id, period)})

    @router.get("/statements/{statement_id}", summary="对账单详情", response_model=StatementOut,
                responses=_staff("NOT_FOUND"))  # fmt: skip
    async def statement_get(statement_id: int, request: Request) -> Response:
        return json_response(await desk.statement(await finance(request), statement_id))

    @router.get("/statements/{statement_id}/{fmt}", summary="下载对账单（csv 或 xlsx）",
                responses={200: FILE_RESPONSE, **_staff("NOT_FOUND")})  # fmt: skip
    async def statement_download(statement_id: int, fmt: str, request: Request) -> Response:
        return statement_file(await desk.statement(await finance(request), statement_id), fmt)

    @router.post("/statements/{statement_id}/email", summary="发送对账单邮件", response_model=EmailedOut,
                 responses=_staff("NOT_FOUND"))  # fmt: skip
    async def statement_email(statement_id: int, request: Request) -> Response:
        return json_response(await desk.email_statement(await finance(request), statement_id))

    @router.get("/verify", summary="账本核对：余额与套餐计数等于各自账目之和", response_model=VerifyOut,
                responses=_staff())  # fmt: skip
    async def verify(request: Request) -> Response:
        return json_response(await desk.verify(await finance(request)))

    return router
