"""The HTTP surface: thin routes that translate HTTP to service calls (no business rule here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from qixin.api import deps
from qixin.api.admin import admin_router
from qixin.api.billing import admin_billing_router, customer_billing_router
from qixin.api.common import error_response, field, json_response, parse_json
from qixin.api.compliance import check_signature_name, check_template, compliance_routers
from qixin.api.health import health_router
from qixin.api.limits import BodyLimit
from qixin.errors import QxError
from qixin.services import accounts, queries
from qixin.services.accounts import ApiKey
from qixin.services.compliance import documents
from qixin.services.staff import audit

if TYPE_CHECKING:
    from qixin.app import Platform


SEND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["to", "signature"],
    "properties": {
        "to": {
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 100000}],
            "description": "接收号码：138…、+86…、86…、0086… 或它们的数组（最多 100,000 个）",
        },
        "content": {
            "type": "string",
            "description": "短信正文（不含签名；平台加上【签名】后计算长度与条数）",
        },
        "signature": {"type": "string", "description": "已审核通过的签名名称，不含【】"},
        "type": {
            "type": "string",
            "enum": ["verification", "notification", "marketing"],
            "default": "notification",
        },
        "template_id": {
            "type": "string",
            "description": "模板发送：已审核通过的模板 ID（与 content 二选一）",
        },
        "params": {"type": "object", "description": "模板变量"},
        "out_id": {"type": "string", "maxLength": 64, "description": "客户自己的业务编号，回执中原样返回"},
        "send_at": {
            "oneOf": [{"type": "integer"}, {"type": "string"}],
            "description": "定时发送：Unix 秒，或 ISO 8601（不带时区时按北京时间）",
        },
        "idempotency_key": {"type": "string", "maxLength": 128, "description": "同一键重复提交只受理一次"},
        "audience": {
            "type": "string",
            "maxLength": 500,
            "description": "发送对象说明（如“近90天下单的会员”），营销短信必填，投诉时作为证据",
        },
    },
}

SIGNED_HEADERS_DOC = (
    "签名请求：请求头 X-Qx-AppKey、X-Qx-Timestamp（Unix 秒，±300 秒）、X-Qx-Nonce（8–64 字符，窗口内不得重复）、"
    "X-Qx-Signature = hex(HMAC-SHA256(app_secret, METHOD\\nPATH\\nQUERY\\nTIMESTAMP\\nNONCE\\nSHA256(body)))。"
)


def create_api(platform: Platform, lifespan_platform: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if lifespan_platform:
            await platform.start()
        try:
            yield
        finally:
            if lifespan_platform:
                await platform.stop()

    app = FastAPI(
        title="qixin 企信 API",
        version="0.1.0",
        description="企业短信平台客户接口。" + SIGNED_HEADERS_DOC + " 错误统一返回 {code, message}。",
        lifespan=lifespan,
    )

    @app.exception_handler(QxError)
    async def _qx(_: Request, exc: QxError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        return error_response(QxError("INVALID_REQUEST"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_response(QxError("NOT_FOUND"))
        if exc.status_code == 405:
            response = error_response(QxError("METHOD_NOT_ALLOWED"))
            response.headers.update(exc.headers or {})  # Allow: the methods the path has
            return response
        return error_response(QxError("INVALID_REQUEST", str(exc.detail)))

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> Response:
        platform.log.exception("unhandled error", exc_info=exc)
        return error_response(QxError("INTERNAL_ERROR"))

    async def signed(request: Request) -> tuple[ApiKey, bytes]:
        return await deps.signed(platform, request)

    @app.post(
        "/v1/sms",
        summary="发送短信（单发、批量、模板）",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": SEND_SCHEMA}}}},
    )
    async def send_sms(request: Request) -> Response:
        return await handle_send(platform, request)

    @app.get("/v1/sms/{message_id}", summary="查询单条短信状态")
    async def get_sms(message_id: str, request: Request) -> Response:
        key, _ = await signed(request)
        return json_response(await platform.db.read(lambda tx: queries.message(tx, key.account_id, message_id)))

    @app.get("/v1/batches/{batch_id}", summary="查询批次（按状态计数）")
    async def get_batch(batch_id: str, request: Request) -> Response:
        key, _ = await signed(request)
        return json_response(await platform.db.read(lambda tx: queries.batch(tx, key.account_id, batch_id)))

    @app.get("/v1/account", summary="查询账户余额")
    async def get_account(request: Request) -> Response:
        key, _ = await signed(request)
        return json_response(await platform.db.read(lambda tx: queries.account(tx, key.account_id)))

    @app.post("/v1/signatures", summary="提交签名申请（待审核）")
    async def apply_signature(request: Request) -> Response:
        key, body = await signed(request)
        data = parse_json(body)
        name = field(data, "name", str)
        purpose = field(data, "purpose", str, required=False, default="")
        check_signature_name(name)

        def job(tx: Any) -> int:
            sid = accounts.add_signature(tx, key.account_id, name)
            documents.set_purpose(tx, key.account_id, sid, purpose)
            audit(tx, "customer", key.app_key, "signature.apply", f"signature:{sid}", {"name": name})
            return sid

        sid = await platform.db.write(job)
        return json_response({"id": sid, "name": name, "status": "pending"}, 201)

    @app.get("/v1/signatures", summary="签名列表")
    async def list_signatures(request: Request) -> Response:
        key, _ = await signed(request)
        rows = await platform.db.read(
            lambda tx: tx.all(
                "SELECT id, name, status, reason FROM signatures WHERE account_id = ? ORDER BY id", (key.account_id,)
            )
        )
        return json_response(
            {"signatures": [dict(zip(("id", "name", "status", "reason"), r, strict=True)) for r in rows]}
        )

    @app.post("/v1/templates", summary="提交模板申请（待审核）")
    async def apply_template(request: Request) -> Response:
        key, body = await signed(request)
        data = parse_json(body)
        name = field(data, "name", str)
        category = field(data, "category", str)
        content = field(data, "content", str)
        variables = field(data, "variables", dict, required=False, default={})
        check_template(platform, category, content, variables)

        def job(tx: Any) -> int:
            tid = accounts.add_template(tx, key.account_id, name, category, content, variables)
            audit(tx, "customer", key.app_key, "template.apply", f"template:{tid}", {"name": name})
            return tid

        tid = await platform.db.write(job)
        return json_response({"id": str(tid), "status": "pending"}, 201)

    @app.get("/v1/templates/{template_id}", summary="查询模板及审核状态")
    async def get_template(template_id: int, request: Request) -> Response:
        key, _ = await signed(request)
        tpl = await platform.db.read(lambda tx: queries.template(tx, key.account_id, template_id))
        return json_response(tpl)

    app.include_router(admin_router(platform))
    app.include_router(admin_billing_router(platform))
    app.include_router(customer_billing_router(platform))
    for router in compliance_routers(platform):
        app.include_router(router)

    def openapi_with_security() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemes = {
            "AppKey": {"type": "apiKey", "in": "header", "name": "X-Qx-AppKey"},
            "Timestamp": {
                "type": "apiKey",
                "in": "header",
                "name": "X-Qx-Timestamp",
                "description": "Unix 秒，±300 秒",
            },
            "Nonce": {"type": "apiKey", "in": "header", "name": "X-Qx-Nonce", "description": "8–64 字符，不得重复"},
            "Signature": {
                "type": "apiKey",
                "in": "header",
                "name": "X-Qx-Signature",
                "description": SIGNED_HEADERS_DOC,
            },
            "StaffToken": {"type": "http", "scheme": "bearer", "description": "qixin staff create 发放的员工令牌"},
        }
        schema.setdefault("components", {})["securitySchemes"] = schemes
        for path, ops in schema.get("paths", {}).items():
            for op in ops.values():
                if path.startswith("/v1/"):
                    op["security"] = [{"AppKey": [], "Timestamp": [], "Nonce": [], "Signature": []}]
                elif path.startswith("/admin/"):
                    op["security"] = [{"StaffToken": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi_with_security  # type: ignore[method-assign]

    app.include_router(health_router(platform))  # /healthz, /readyz, /admin/health, / (api/health.py)

    return app


async def handle_send(platform: Platform, request: Request) -> Response:
    """POST /v1/sms: authenticate, accept, answer. Shared by the FastAPI route and the fast path."""
    key, body = await deps.signed(platform, request)
    result = await platform.accept.accept(key, parse_json(body), body)
    platform.after_accept()
    return json_response(result)


class FastSend:
    """An ASGI shell: ``POST /v1/sms``, the busiest route, goes straight to ``handle_send`` without the
    framework's middleware stack (it answers errors itself, the same way the exception handlers do);
    every other request — and the route's OpenAPI description — is the FastAPI app's."""

    def __init__(self, app: FastAPI, platform: Platform) -> None:
        self.app = app
        self.platform = platform

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/v1/sms":
            request = Request(scope, receive)
            try:
                response = await handle_send(self.platform, request)
            except QxError as exc:
                response = error_response(exc)
            except Exception as exc:
                self.platform.log.exception("unhandled error", exc_info=exc)
                response = error_response(QxError("INTERNAL_ERROR"))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def asgi_app(platform: Platform, lifespan_platform: bool = True) -> BodyLimit:
    """The application servers run: the FastAPI app behind the send fast path, behind the body limits."""
    return BodyLimit(FastSend(create_api(platform, lifespan_platform), platform))
