"""Request and response bodies of the customer and staff routes of api/app.py and api/admin.py.

Declared once as pydantic models: they validate requests and give the OpenAPI schema (docs/api.md
describes the same fields in prose)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

MessageType = Literal["verification", "notification", "marketing"]


class SendRequest(BaseModel):
    """POST /v1/sms. Validated by the accept use case (services/accept.py); this model documents it."""

    to: str | list[str] = Field(description="接收号码：138…、+86…、86…、0086… 或它们的数组（最多 100,000 个）")
    signature: str = Field(description="已审核通过的签名名称，不含【】")
    content: str | None = Field(None, description="短信正文（不含签名；平台加上【签名】后计算长度与条数）")
    type: MessageType = Field("notification", description="短信类型")
    template_id: str | None = Field(None, description="模板发送：已审核通过的模板 ID（与 content 二选一）")
    params: dict[str, Any] | None = Field(None, description="模板变量")
    out_id: str | None = Field(None, max_length=64, description="客户自己的业务编号，回执中原样返回")
    send_at: int | str | None = Field(None, description="定时发送：Unix 秒，或 ISO 8601（不带时区时按北京时间）")
    idempotency_key: str | None = Field(None, max_length=128, description="同一键重复提交只受理一次")
    audience: str | None = Field(
        None, max_length=500, description="发送对象说明（如“近90天下单的会员”），营销短信必填，投诉时作为证据"
    )
    skip_empty: bool = Field(
        False, description="跳过近期号码检测为空号的号码（逐号拒绝 NUMBER_EMPTY_SKIPPED，不发送、不计费）"
    )
    skip_silent: bool = Field(
        False, description="跳过近期号码检测为沉默号的号码（逐号拒绝 NUMBER_SILENT_SKIPPED，不发送、不计费）"
    )


class AcceptedMessage(BaseModel):
    id: str
    to: str
    parts: int
    fee_li: int


class RejectedNumber(BaseModel):
    to: str
    code: str = Field(description="错误码，见 docs/errors.md")
    message: str


class SendAnswer(BaseModel):
    batch_id: str
    status: Literal["queued", "scheduled"]
    accepted_count: int
    rejected_count: int
    parts: int
    total_fee_li: int
    total_fee: str
    package_parts: int
    accepted: list[AcceptedMessage]
    rejected: list[RejectedNumber]
    deferred_to: str | None = None
    replayed: bool | None = None


class Message(BaseModel):
    id: str
    batch_id: str
    to: str
    carrier: str
    province: str
    type: str
    parts: int
    fee_li: int
    status: str
    out_id: str | None
    channel: str | None
    carrier_stat: str | None
    carrier_err: str | None
    error_code: str | None
    refunded: bool
    created_at: int
    send_at: int | None
    submitted_at: int | None
    done_at: int | None
    content: str | None


class Batch(BaseModel):
    id: str
    type: str
    signature: str
    total: int
    accepted: int
    rejected: int
    fee_li: int
    out_id: str | None
    created_at: int
    send_at: int | None
    status_counts: dict[str, int]


class Account(BaseModel):
    account_id: int
    name: str
    status: str
    balance_li: int
    balance: str
    price_li: int


class SignatureApply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="签名名称（2–12 个字符，不含【】）")
    purpose: str = Field("", max_length=500, description="用途说明")


class SignatureOut(BaseModel):
    id: int
    account_id: int | None = None
    name: str
    status: str
    reason: str | None = None
    created_at: int | None = None


class SignatureList(BaseModel):
    signatures: list[SignatureOut]


class TemplateApply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=64)
    category: str = Field(description="verification / notification / marketing")
    content: str = Field(description="模板内容，变量写作 ${name}")
    variables: dict[str, str] = Field(default_factory=dict, description='变量类型，如 {"code": "code"}')


class TemplateOut(BaseModel):
    id: str
    account_id: int | None = None
    name: str
    category: str
    content: str
    variables: dict[str, Any]
    status: str
    reason: str | None = None
    created_at: int | None = None


class Applied(BaseModel):
    id: int | str
    status: str


class TemplateList(BaseModel):
    templates: list[TemplateOut]


# -- staff -------------------------------------------------------------------------------------------------


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    signature: str
    price: str = Field(description='每计费条单价（元），如 "0.035"')
    balance: str = Field("0", description="开户充值金额（元）")
    callback_url: str | None = None
    allow_free_text: bool = True
    permit_24h: bool = False


class AccountCreated(BaseModel):
    account_id: int
    app_key: str
    app_secret: str = Field(description="只在创建时显示一次")


class AccountRow(BaseModel):
    account_id: int
    name: str
    status: str
    balance_li: int
    price_li: int
    created_at: int


class AccountList(BaseModel):
    accounts: list[AccountRow]


class Topup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: str = Field(description="充值金额（元）")
    ref: str = Field(min_length=1, max_length=64, description="充值单号（同一单号只入账一次）")
    note: str | None = Field(None, max_length=200)


class Balance(BaseModel):
    account_id: int
    balance_li: int
    balance: str


class Reject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500, description="驳回原因")


class Reviewed(BaseModel):
    id: int
    status: str
    reason: str | None = None


class KeyOut(BaseModel):
    app_key: str
    callback_url: str | None
    ip_allowlist: list[str]
    status: str
    created_at: int


class KeyList(BaseModel):
    keys: list[KeyOut]


class KeySecret(BaseModel):
    app_key: str
    app_secret: str = Field(description="只显示一次")
    account_id: int | None = None


class KeyStatus(BaseModel):
    app_key: str
    status: str


class StaffCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    role: Literal["admin", "reviewer", "finance", "ops"]


class StaffCreated(BaseModel):
    staff_id: int
    name: str
    role: str
    token: str = Field(description="只显示一次")


class StaffRow(BaseModel):
    staff_id: int
    name: str
    role: str
    status: str
    created_at: int


class StaffList(BaseModel):
    staff: list[StaffRow]


class StaffRevoked(BaseModel):
    staff_id: int
    status: str


class AuditEntry(BaseModel):
    id: int
    actor_type: str
    actor_id: str
    action: str
    target: str
    detail: str
    ip: str | None
    created_at: int


class AuditPage(BaseModel):
    entries: list[AuditEntry]


class PortedImport(BaseModel):
    numbers: list[dict[str, str]] = Field(description="[{number, carrier}]")


class JsonObject(RootModel[dict[str, Any]]):
    """Any JSON object (channel definitions: the fields are described in docs/protocols.md)."""
