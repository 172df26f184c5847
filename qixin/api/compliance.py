"""Compliance routes: staff (/admin) and customer (/v1, signed) — thin: HTTP ⇄ use cases.

Staff: account policies, freeze / unfreeze, violations, blacklist and opt-out lists (import / export as
JSON or CSV), the versioned lexicon, complaints and their evidence report, signature suspension and
qualification documents. Customer: their opt-out list, qualification documents for their signatures.

Rules:
- Routes hold no SQL and open no transaction: they call ``services/compliance/usecases`` (staff changes
  are the use cases of ``services/compliance/desk.py``: area, change and audit row in one transaction).
- Who may call what (``ROLE_GRANTS`` areas): account policy changes and freeze / unfreeze are
  ``accounts.write`` (admin); lists, violations, complaints, the lexicon and reading a policy are
  ``compliance`` (reviewer, admin); signatures and their documents are ``review`` (reviewer, admin).
- Bodies are pydantic models, parsed after the caller is authenticated (a signed request's body is
  checked against its signature first); the OpenAPI request and response schemas are generated from
  the same models, and every route lists its error codes (``error_responses``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from qixin.api import deps
from qixin.api.areas import staff_area
from qixin.api.common import body_of, error_responses, json_response, parse_model
from qixin.api.review import review_router
from qixin.domain.compliance import CATEGORIES
from qixin.errors import QxError
from qixin.services.actor import Actor
from qixin.services.compliance import usecases
from qixin.services.compliance.evidence import complainant_number
from qixin.services.compliance.store import ParsedList

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Platform

M = TypeVar("M", bound=BaseModel)


# --- request and response models -------------------------------------------------------------------------


def _numbers_as_text(schema: dict[str, Any]) -> None:
    """The schema of a model with ``coerce_numbers_to_str``: wherever a string is taken, a JSON number is
    too (as its text, e.g. a phone number sent as 13800138000), so the OpenAPI document says so."""

    def widen(s: Any) -> None:
        if not isinstance(s, dict):
            return
        if s.get("type") == "string" and not {"enum", "const", "format"} & s.keys():
            s["type"] = ["string", "number"]
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in s.get(key, ()):
                widen(sub)
        widen(s.get("items"))

    for prop in schema.get("properties", {}).values():
        widen(prop)


class _In(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True, json_schema_extra=_numbers_as_text)


class PolicyChanges(_In):
    """Only the fields given change; ``max_number_run: null`` returns to the platform default."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True, json_schema_extra=_numbers_as_text)
    permit_24h: StrictBool | None = Field(None, description="24 小时发送许可（营销仍限 9–20 点）")
    international: StrictBool | None = Field(None, description="允许国际号码")
    verification_window: StrictBool | None = Field(
        None, description="验证码也受发送时段限制（默认否：验证码任何时间都可发送）"
    )
    link_policy: str | None = Field(None, description="allowed | allowlist | refused")
    allowed_domains: list[str] | None = Field(None, description="link_policy=allowlist 时允许的域名")
    limits: dict[str, str] | None = Field(
        None, description="频率限制覆盖：verification、any_sender、template、same_content"
    )
    optout_words: list[str] | None = Field(None, description="另加的退订词")
    max_number_run: int | None = Field(None, description="连续号段上限（0 = 关闭，null = 平台默认）")
    promo_as: str | None = Field(
        None, description="通知/验证码内容读作营销时：marketing（按营销处理）| refuse（拒绝）| off（不检查）"
    )


class PolicyOut(BaseModel):
    account_id: int
    permit_24h: bool
    international: bool
    verification_window: bool
    link_policy: str
    allowed_domains: list[str]
    limits: dict[str, str]
    optout_words: list[str]
    max_number_run: int | None
    promo_as: str


class FreezeIn(_In):
    reason: str = Field(description="冻结原因（必填）")


class UnfreezeIn(_In):
    reason: str = ""


class StatusOut(BaseModel):
    account_id: int
    status: str
    previous: str
    reason: str
    packages: int = Field(0, description="随账户冻结（或解冻）的套餐数")


class Violation(BaseModel):
    id: int
    account_id: int
    code: str
    detail: dict[str, Any]
    content: str
    created_at: int


class ViolationsOut(BaseModel):
    violations: list[Violation]


class NumbersIn(_In):
    """``numbers`` as a JSON array, or ``csv`` text whose first column holds the numbers."""

    numbers: list[str] | None = None
    csv: str | None = Field(None, description="CSV 文本，第一列为号码（可有表头）")


class BlacklistIn(NumbersIn):
    reason: str = ""


class OptoutsIn(NumbersIn):
    signature: str = Field("", description="只对这个签名退订；空 = 账户的全部签名")


class RejectedRow(BaseModel):
    row: int = Field(description="第几行（JSON：数组中的第几个；CSV：第几条记录，含表头；均从 1 起）")
    value: str = Field(description="提交的内容（已打码）")
    reason: str


class ImportOut(BaseModel):
    added: int = Field(description="新加入名单的号码数")
    submitted: int
    rejected: list[RejectedRow] = Field(description="未导入的行及原因；无效内容一概不入库")


class RemoveOut(BaseModel):
    removed: int
    rejected: list[RejectedRow]


class BlacklistEntry(BaseModel):
    number: str
    reason: str
    source: str
    created_at: int


class BlacklistOut(BaseModel):
    blacklist: list[BlacklistEntry]
    count: int


class Optout(BaseModel):
    number: str
    signature: str
    source: str
    created_at: int


class OptoutsOut(BaseModel):
    optouts: list[Optout]
    count: int


class LexiconWord(BaseModel):
    word: str
    category: str


class LexiconOut(BaseModel):
    version: int
    words: list[LexiconWord]
    allow: list[str]
    active_version: int = Field(description="本进程正在使用的版本")


class Category(BaseModel):
    code: str
    label: str


class CategoriesOut(BaseModel):
    categories: list[Category]


class LexiconVersion(BaseModel):
    version: int
    actor: str
    note: str
    added: int
    removed: int
    created_at: int


class VersionsOut(BaseModel):
    versions: list[LexiconVersion]


class LexiconChangeIn(_In):
    add: list[LexiconWord] = Field(default_factory=list, description="新增违禁词（类别见 /admin/lexicon/categories）")
    remove: list[str] = Field(default_factory=list)
    allow_add: list[str] = Field(default_factory=list, description="新增白名单短语")
    allow_remove: list[str] = Field(default_factory=list)
    note: str = ""


class LexiconChangeOut(BaseModel):
    version: int
    added: int
    removed: int
    note: str


class CheckIn(_In):
    content: str
    type: str = Field("notification", description="verification | notification | marketing")


class Finding(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str
    message: str


class CheckOut(BaseModel):
    version: int
    ok: bool
    violations: list[Finding]


class ComplaintIn(_In):
    number: str
    message_id: str | None = None
    note: str = ""


class EvidenceMessage(BaseModel):
    message_id: str
    account_id: int
    account_name: str | None
    number: str
    signature: str
    type: str
    content: str | None
    batch_id: str
    batch_size: int
    audience: str | None
    created_at: int
    submitted_at: int | None
    done_at: int | None
    status: str
    carrier: str | None
    carrier_stat: str | None
    carrier_err: str | None
    channel: str | None
    created_at_local: str | None
    submitted_at_local: str | None
    done_at_local: str | None


class ComplaintRecord(BaseModel):
    id: int
    number: str
    message_id: str | None
    account_id: int | None
    note: str
    recorded_by: str
    created_at: int
    created_at_local: str | None
    blacklisted: bool


class EvidenceOut(BaseModel):
    complaint: ComplaintRecord
    generated_at: int
    messages: list[EvidenceMessage]


class ComplaintOut(BaseModel):
    complaint_id: int
    number: str
    message_id: int | None
    account_id: int | None
    evidence: EvidenceOut


class ComplaintItem(BaseModel):
    id: int
    number: str
    message_id: int | None
    account_id: int | None
    note: str
    actor: str
    created_at: int


class ComplaintsOut(BaseModel):
    complaints: list[ComplaintItem]


class ReasonIn(_In):
    reason: str


class SuspendOut(BaseModel):
    id: int
    status: str
    reason: str


class DocumentMeta(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    created_at: int


class SignatureApplicationOut(BaseModel):
    id: int
    account_id: int
    name: str
    status: str
    reason: str | None
    purpose: str
    documents: list[DocumentMeta]


class DocumentIn(_In):
    filename: str
    content_type: str = "application/octet-stream"
    content_base64: str = Field(description="PDF、JPEG 或 PNG 文件内容（Base64），不超过 5 MB")


class DocumentOut(BaseModel):
    id: int
    signature_id: int
    filename: str
    size: int
    sha256: str
    content_type: str


# --- parsing, answering, documenting ---------------------------------------------------------------------


def _parse(model: type[M], body: bytes, code: str = "INVALID_REQUEST") -> M:
    """``common.parse_model``, answering ``code`` instead of INVALID_REQUEST where a route has its own."""
    try:
        return parse_model(model, body)
    except QxError as e:
        if e.code != "INVALID_REQUEST" or code == e.code:
            raise
        raise QxError(code, e.message) from e


def _ok(model: type[BaseModel], data: Any, status: int = 200) -> Response:
    """Answer ``data`` checked against its response model (the documented schema cannot drift)."""
    return json_response(model.model_validate(data).model_dump(mode="json"), status)


def _csv(rows: list[dict[str, Any]], columns: tuple[str, ...], name: str) -> Response:
    return Response(
        usecases.to_csv(rows, columns),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


CSV_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "JSON，或 format=csv 时为 CSV"}
}
FILE_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {}, "image/jpeg": {}, "image/png": {}}, "description": "文件内容"}
}
STAFF = ("STAFF_AUTH_REQUIRED", "STAFF_TOKEN_INVALID", "FORBIDDEN")
SIGNED = ("AUTH_MISSING", "APPKEY_INVALID", "SIGNATURE_INVALID", "TIMESTAMP_EXPIRED", "NONCE_REPLAYED", "IP_FORBIDDEN")


def _staff_errors(*codes: str) -> dict[int | str, dict[str, Any]]:
    return error_responses(*STAFF, *codes)


def _list(body: NumbersIn) -> ParsedList:
    return usecases.list_input(body.numbers, body.csv)


def compliance_routers(platform: Platform) -> list[APIRouter]:
    return [_admin_router(platform), review_router(platform), _customer_router(platform)]


def _admin_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix="/admin", tags=["admin: compliance"])
    db = platform.db
    svc = platform.compliance

    desk = platform.compliance_desk

    async def staff(request: Request) -> Actor:
        """The staff actor (the route's area guard has admitted the role; the use cases check it again)."""
        return await deps.staff_actor(platform, request)

    # -- policies and freezing (accounts.write: admin) -------------------------------------------------
    @router.get(
        "/accounts/{account_id}/policy", dependencies=[staff_area(platform, "compliance")],
        summary="账户合规策略", response_model=PolicyOut,
        responses=_staff_errors(),
    )  # fmt: skip
    async def get_policy(account_id: int, request: Request) -> Response:
        return _ok(PolicyOut, await desk.policy(await staff(request), account_id))

    @router.put(
        "/accounts/{account_id}/policy", dependencies=[staff_area(platform, "accounts.write")],
        summary="修改账户合规策略（24小时许可、验证码时段、国际、链接、频率…）",
        response_model=PolicyOut, openapi_extra=body_of(PolicyChanges),
        responses=_staff_errors("INVALID_JSON", "NOT_FOUND"),
    )  # fmt: skip
    async def put_policy(account_id: int, request: Request) -> Response:
        who = await staff(request)
        body = _parse(PolicyChanges, await request.body())
        return _ok(PolicyOut, await desk.set_policy(who, account_id, body.model_dump(exclude_unset=True)))

    @router.post(
        "/accounts/{account_id}/freeze", dependencies=[staff_area(platform, "accounts.write")],
        summary="冻结账户（需填写原因）", response_model=StatusOut,
        openapi_extra=body_of(FreezeIn), responses=_staff_errors("INVALID_JSON", "NOT_FOUND"),
    )  # fmt: skip
    async def freeze(account_id: int, request: Request) -> Response:
        who = await staff(request)
        reason = _parse(FreezeIn, await request.body()).reason
        return _ok(StatusOut, await desk.set_frozen(who, account_id, True, reason))

    @router.post(
        "/accounts/{account_id}/unfreeze", dependencies=[staff_area(platform, "accounts.write")],
        summary="解冻账户", response_model=StatusOut,
        openapi_extra=body_of(UnfreezeIn), responses=_staff_errors("INVALID_JSON", "NOT_FOUND"),
    )  # fmt: skip
    async def unfreeze(account_id: int, request: Request) -> Response:
        who = await staff(request)
        reason = _parse(UnfreezeIn, await request.body()).reason
        return _ok(StatusOut, await desk.set_frozen(who, account_id, False, reason))

    @router.get(
        "/violations", dependencies=[staff_area(platform, "compliance")],
        summary="违规记录（最新在前，可按账户过滤）", response_model=ViolationsOut,
        responses=_staff_errors(),
    )  # fmt: skip
    async def violations(request: Request, account_id: int | None = None, limit: int = 100) -> Response:
        return _ok(ViolationsOut, {"violations": await desk.violations(await staff(request), account_id, limit)})

    # -- blacklist and opt-outs --------------------------------------------------------------------
    @router.get(
        "/blacklist", dependencies=[staff_area(platform, "compliance")],
        summary="黑名单导出（format=json|csv）", response_model=BlacklistOut,
        responses=CSV_DOC | _staff_errors(),
    )  # fmt: skip
    async def blacklist_export(request: Request, format: str = "json") -> Response:
        rows = await desk.blacklist(await staff(request))
        if format == "csv":
            return _csv(rows, usecases.BLACKLIST_COLUMNS, "blacklist")
        return _ok(BlacklistOut, {"blacklist": rows, "count": len(rows)})

    @router.post(
        "/blacklist", dependencies=[staff_area(platform, "compliance")],
        summary="黑名单导入（numbers 数组或 csv 文本；无效行逐行说明，不入库）",
        response_model=ImportOut, openapi_extra=body_of(BlacklistIn),
        responses=_staff_errors("INVALID_JSON", "TOO_MANY_NUMBERS"),
    )  # fmt: skip
    async def blacklist_import(request: Request) -> Response:
        who = await staff(request)
        body = _parse(BlacklistIn, await request.body())
        return _ok(ImportOut, await desk.import_blacklist(who, _list(body), body.reason))

    @router.post(
        "/blacklist/remove", dependencies=[staff_area(platform, "compliance")],
        summary="移出黑名单", response_model=RemoveOut, openapi_extra=body_of(NumbersIn),
        responses=_staff_errors("INVALID_JSON", "TOO_MANY_NUMBERS"),
    )  # fmt: skip
    async def blacklist_remove(request: Request) -> Response:
        who = await staff(request)
        return _ok(RemoveOut, await desk.remove_blacklist(who, _list(_parse(NumbersIn, await request.body()))))

    @router.get(
        "/accounts/{account_id}/optouts", dependencies=[staff_area(platform, "compliance")],
        summary="账户退订名单导出（format=json|csv）", response_model=OptoutsOut,
        responses=CSV_DOC | _staff_errors(),
    )  # fmt: skip
    async def optouts_export(account_id: int, request: Request, format: str = "json") -> Response:
        rows = await desk.optouts(await staff(request), account_id)
        if format == "csv":
            return _csv(rows, usecases.OPTOUT_COLUMNS, "optouts")
        return _ok(OptoutsOut, {"optouts": rows, "count": len(rows)})

    @router.post(
        "/accounts/{account_id}/optouts", dependencies=[staff_area(platform, "compliance")],
        summary="账户退订名单导入（无效行逐行说明，不入库）",
        response_model=ImportOut, openapi_extra=body_of(OptoutsIn),
        responses=_staff_errors("INVALID_JSON", "TOO_MANY_NUMBERS"),
    )  # fmt: skip
    async def optouts_import(account_id: int, request: Request) -> Response:
        who = await staff(request)
        body = _parse(OptoutsIn, await request.body())
        return _ok(ImportOut, await desk.import_optouts(who, account_id, _list(body), body.signature))

    # -- lexicon -------------------------------------------------------------------------------------
    @router.get(
        "/lexicon",
        dependencies=[staff_area(platform, "compliance")],
        summary="当前词库（违禁词与白名单）",
        response_model=LexiconOut,
        responses=_staff_errors(),
    )
    async def lexicon(request: Request, category: str | None = None) -> Response:
        v, words, allow = await desk.lexicon(await staff(request), category)
        active = svc.checker.lexicon.version
        return _ok(LexiconOut, {"version": v, "words": words, "allow": allow, "active_version": active})

    @router.get(
        "/lexicon/categories",
        dependencies=[staff_area(platform, "compliance")],
        summary="违禁类别",
        response_model=CategoriesOut,
        responses=_staff_errors(),
    )
    async def categories(request: Request) -> Response:
        return _ok(CategoriesOut, {"categories": [{"code": k, "label": v} for k, v in CATEGORIES.items()]})

    @router.get(
        "/lexicon/versions",
        dependencies=[staff_area(platform, "compliance")],
        summary="词库版本历史",
        response_model=VersionsOut,
        responses=_staff_errors(),
    )
    async def versions(request: Request) -> Response:
        return _ok(VersionsOut, {"versions": await desk.lexicon_versions(await staff(request))})

    @router.post(
        "/lexicon/changes", dependencies=[staff_area(platform, "compliance")],
        summary="修改词库（生成新版本，立即生效，无需重启）", status_code=201,
        response_model=LexiconChangeOut, openapi_extra=body_of(LexiconChangeIn),
        responses=_staff_errors("INVALID_JSON", "LEXICON_INVALID", "CONFLICT"),
    )  # fmt: skip
    async def change_lexicon(request: Request) -> Response:
        who = await staff(request)
        body = _parse(LexiconChangeIn, await request.body(), "LEXICON_INVALID")
        return _ok(LexiconChangeOut, await desk.change_lexicon(who, body.model_dump()), 201)

    @router.post(
        "/lexicon/check", dependencies=[staff_area(platform, "compliance")],
        summary="试检内容（不发送，不记违规）", response_model=CheckOut,
        openapi_extra=body_of(CheckIn), responses=_staff_errors("INVALID_JSON", "TYPE_INVALID"),
    )  # fmt: skip
    async def check(request: Request) -> Response:
        body = _parse(CheckIn, await request.body())
        if body.type not in ("verification", "notification", "marketing"):
            raise QxError("TYPE_INVALID")
        found = svc.checker.check_content(body.content, body.type)
        return _ok(
            CheckOut,
            {
                "version": svc.checker.lexicon.version,
                "ok": not found,
                "violations": [{"code": v.code, "message": v.message_zh, **v.detail} for v in found],
            },
        )

    # -- complaints ----------------------------------------------------------------------------------
    @router.post(
        "/complaints", dependencies=[staff_area(platform, "compliance")],
        summary="登记投诉（号码拉黑，生成证据报告）", status_code=201, response_model=ComplaintOut,
        openapi_extra=body_of(ComplaintIn), responses=_staff_errors("INVALID_JSON", "NUMBER_INVALID", "NOT_FOUND"),
    )  # fmt: skip
    async def complaint(request: Request) -> Response:
        who = await staff(request)
        body = _parse(ComplaintIn, await request.body())
        try:
            message_id = int(body.message_id) if body.message_id is not None else None
        except ValueError as e:
            raise QxError("INVALID_REQUEST", "message_id 格式错误") from e
        number = complainant_number(body.number)
        return _ok(ComplaintOut, await desk.record_complaint(who, number, message_id, body.note), 201)

    @router.get(
        "/complaints",
        dependencies=[staff_area(platform, "compliance")],
        summary="投诉列表",
        response_model=ComplaintsOut,
        responses=_staff_errors(),
    )
    async def complaints(request: Request) -> Response:
        return _ok(ComplaintsOut, {"complaints": await desk.complaints(await staff(request))})

    @router.get(
        "/complaints/{complaint_id}/evidence", dependencies=[staff_area(platform, "compliance")],
        summary="投诉证据报告（format=json|csv）", response_model=EvidenceOut,
        responses=CSV_DOC | _staff_errors("NOT_FOUND"),
    )  # fmt: skip
    async def complaint_evidence(complaint_id: int, request: Request, format: str = "json") -> Response:
        report = await desk.evidence_report(await staff(request), complaint_id)
        if format == "csv":
            return Response(
                usecases.evidence.evidence_csv(report).encode(),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="complaint-{complaint_id}.csv"'},
            )
        return _ok(EvidenceOut, report)

    # -- signatures: suspension and qualification documents (review) ----------------------------------
    @router.post(
        "/signatures/{signature_id}/suspend", dependencies=[staff_area(platform, "review")],
        summary="暂停签名（需填写原因）", response_model=SuspendOut,
        openapi_extra=body_of(ReasonIn), responses=_staff_errors("INVALID_JSON", "NOT_FOUND"),
    )  # fmt: skip
    async def suspend(signature_id: int, request: Request) -> Response:
        who = await staff(request)
        reason = _parse(ReasonIn, await request.body()).reason
        return _ok(SuspendOut, await desk.suspend_signature(who, signature_id, reason))

    @router.get(
        "/signatures/{signature_id}/documents", dependencies=[staff_area(platform, "review")],
        summary="签名的资质文件与用途",
        response_model=SignatureApplicationOut, responses=_staff_errors("NOT_FOUND"),
    )  # fmt: skip
    async def signature_documents(signature_id: int, request: Request) -> Response:
        return _ok(SignatureApplicationOut, await desk.signature_application(await staff(request), signature_id))

    @router.get(
        "/documents/{document_id}", dependencies=[staff_area(platform, "review")], summary="下载资质文件",
        responses=FILE_DOC | _staff_errors("NOT_FOUND"),
    )  # fmt: skip
    async def download(document_id: int, request: Request) -> Response:
        content, content_type = await usecases.document_file(db, platform.settings.data_dir, document_id)
        return Response(content, media_type=content_type)

    return router


def _customer_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["customer: compliance"])
    db = platform.db

    @router.get(
        "/optouts", summary="退订名单导出（format=json|csv）", response_model=OptoutsOut,
        responses=CSV_DOC | error_responses(*SIGNED),
    )  # fmt: skip
    async def my_optouts(request: Request, format: str = "json") -> Response:
        actor, _ = await deps.customer(platform, request)
        rows = await usecases.own_optouts(db, actor, platform.tokens.tokens_of)
        if format == "csv":
            return _csv(rows, usecases.OPTOUT_COLUMNS, "optouts")
        return _ok(OptoutsOut, {"optouts": rows, "count": len(rows)})

    @router.post(
        "/optouts", summary="退订名单导入（numbers 数组或 csv 文本，可选 signature；无效行逐行说明，不入库）",
        response_model=ImportOut, openapi_extra=body_of(OptoutsIn),
        responses=error_responses(*SIGNED, "INVALID_JSON", "TOO_MANY_NUMBERS"),
    )  # fmt: skip
    async def import_optouts(request: Request) -> Response:
        actor, raw = await deps.customer(platform, request)
        body = _parse(OptoutsIn, raw)
        return _ok(ImportOut, await usecases.import_own_optouts(db, actor, _list(body), body.signature))

    @router.post(
        "/signatures/{signature_id}/documents", summary="上传签名资质文件（JSON：filename、content_base64）",
        status_code=201, response_model=DocumentOut, openapi_extra=body_of(DocumentIn),
        responses=error_responses(*SIGNED, "INVALID_JSON", "NOT_FOUND", "DOCUMENT_INVALID"),
    )  # fmt: skip
    async def upload(signature_id: int, request: Request) -> Response:
        actor, raw = await deps.customer(platform, request)
        body = _parse(DocumentIn, raw)
        content = usecases.decode_document(body.content_base64)
        out = await usecases.upload_document(
            db, platform.settings.data_dir, actor, signature_id, body.filename, body.content_type, content
        )
        return _ok(DocumentOut, out, 201)

    return router
