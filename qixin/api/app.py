"""The HTTP surface: thin routes that translate HTTP to service calls (no business rule here)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from qixin.api import deps
from qixin.api import models as m
from qixin.api.admin import admin_router
from qixin.api.alerts import alert_routers
from qixin.api.aliyun import aliyun_router
from qixin.api.areas import annotate_openapi
from qixin.api.batches import FileJobProgress, batch_routers
from qixin.api.billing import admin_billing_router, customer_billing_router
from qixin.api.common import (
    ERROR_SCHEMA,
    body_of,
    error_response,
    error_responses,
    json_response,
    parse_json,
    parse_model,
    unexpected_response,
)
from qixin.api.compliance import compliance_routers
from qixin.api.connections import connections_router
from qixin.api.docs import mount_docs
from qixin.api.exports import export_routers
from qixin.api.health import health_router
from qixin.api.limits import ROUTE_LIMITS, BodyLimit, MiB, route
from qixin.api.messages import message_routers
from qixin.api.numbers import number_routers
from qixin.api.retention import retention_routers
from qixin.api.stats import stats_routers
from qixin.console.routes import console_router, mount_static
from qixin.errors import QxError
from qixin.services.actor import Actor
from qixin.services.queries import parse_id
from qixin.store.db import connection_errors

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services
    from qixin.app import Runtime

AUTH_ERRORS = ("AUTH_MISSING", "APPKEY_INVALID", "SIGNATURE_INVALID", "TIMESTAMP_EXPIRED", "NONCE_REPLAYED",
               "IP_FORBIDDEN", "INVALID_JSON")  # fmt: skip
SEND_ERRORS = (
    *AUTH_ERRORS, "ACCOUNT_FROZEN", "FREE_TEXT_FORBIDDEN", "SIGNATURE_NOT_APPROVED", "TEMPLATE_NOT_APPROVED",
    "TEMPLATE_PARAM_MISSING", "TEMPLATE_PARAM_INVALID", "CONTENT_EMPTY", "CONTENT_TOO_LONG", "TYPE_INVALID",
    "NUMBERS_EMPTY", "TOO_MANY_NUMBERS", "NO_VALID_NUMBERS", "SEND_AT_INVALID", "CONTENT_FORBIDDEN",
    "CONTENT_SPECIAL_CHAR", "UNSUBSCRIBE_MISSING", "LINK_FORBIDDEN", "AUDIENCE_REQUIRED", "INSUFFICIENT_BALANCE",
    "BALANCE_EXPIRED", "IDEMPOTENCY_CONFLICT", "SEND_AT_TOO_FAR", "BODY_TOO_LARGE",
)  # fmt: skip


SIGNED_HEADERS_DOC = (
    "签名请求：请求头 X-Qx-AppKey、X-Qx-Timestamp（Unix 秒，±300 秒）、X-Qx-Nonce（8–64 字符，窗口内不得重复）、"
    "X-Qx-Signature = hex(HMAC-SHA256(app_secret, METHOD\\nPATH\\nQUERY\\nTIMESTAMP\\nNONCE\\nSHA256(body)))。"
)


def create_api(platform: Services, lifespan: Any = None) -> FastAPI:
    app = FastAPI(
        title="qixin 企信 API",
        version="0.1.0",
        description="企业短信平台客户接口。" + SIGNED_HEADERS_DOC + " 错误统一返回 {code, message}。",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    mount_docs(app)  # /docs, /redoc and /static, served locally (qixin/api/docs.py)

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
        return unexpected_response(platform.log, exc)

    async def _database(_: Request, exc: Exception) -> Response:
        return unexpected_response(platform.log, exc)

    for cls in connection_errors():  # answered here, not by the generic handler (which re-raises to the server)
        app.add_exception_handler(cls, _database)

    async def customer(request: Request) -> tuple[Actor, bytes]:
        return await deps.customer(platform, request)

    @app.post(
        "/v1/sms",
        summary="发送短信（单发、批量、模板）",
        openapi_extra=body_of(m.SendRequest),
        responses=error_responses(*SEND_ERRORS, ok=m.SendAnswer, ok_status=200),
    )
    async def send_sms(request: Request) -> Response:
        return await handle_send(platform, request)

    @app.get(
        "/v1/sms/{message_id}", summary="查询单条短信状态", response_model=m.Message,
        responses=error_responses(*AUTH_ERRORS, "NOT_FOUND"),
    )  # fmt: skip
    async def get_sms(message_id: str, request: Request) -> Response:
        actor, _ = await customer(request)
        return json_response(await platform.queries.message(actor, message_id))

    @app.get(
        "/v1/batches/{batch_id}", summary="查询批次（按状态计数）；文件发送任务的 id：任务进度",
        response_model=m.Batch | FileJobProgress, responses=error_responses(*AUTH_ERRORS, "NOT_FOUND"),
    )  # fmt: skip
    async def get_batch(batch_id: str, request: Request) -> Response:
        actor, _ = await customer(request)
        job = await platform.filejobs.find(actor, batch_id)  # job and batch ids never collide (one generator)
        if job is not None:
            return json_response(job)
        return json_response(await platform.queries.batch(actor, batch_id))

    @app.get("/v1/account", summary="查询账户余额", response_model=m.Account, responses=error_responses(*AUTH_ERRORS))
    async def get_account(request: Request) -> Response:
        actor, _ = await customer(request)
        return json_response(await platform.accounts.get(actor))

    @app.post(
        "/v1/signatures", summary="提交签名申请（待审核）", status_code=201, openapi_extra=body_of(m.SignatureApply),
        responses=error_responses(*AUTH_ERRORS, "SIGNATURE_NAME_INVALID", "CONFLICT", ok=m.SignatureOut, ok_status=201),
    )  # fmt: skip
    async def apply_signature(request: Request) -> Response:
        actor, body = await customer(request)
        req = parse_model(m.SignatureApply, body)
        out = await platform.signatures.apply(actor, req.name, req.purpose)
        return json_response({"id": out["id"], "name": out["name"], "status": out["status"]}, 201)

    @app.get(
        "/v1/signatures", summary="签名列表", response_model=m.SignatureList, responses=error_responses(*AUTH_ERRORS)
    )
    async def list_signatures(request: Request) -> Response:
        actor, _ = await customer(request)
        rows = await platform.signatures.listing(actor)
        keys = ("id", "name", "status", "reason")
        return json_response({"signatures": [{k: r[k] for k in keys} for r in rows]})

    @app.post(
        "/v1/templates", summary="提交模板申请（待审核）", status_code=201, openapi_extra=body_of(m.TemplateApply),
        responses=error_responses(*AUTH_ERRORS, "TEMPLATE_REVIEW_FAILED", "TYPE_INVALID", ok=m.Applied, ok_status=201),
    )  # fmt: skip
    async def apply_template(request: Request) -> Response:
        actor, body = await customer(request)
        req = parse_model(m.TemplateApply, body)
        out = await platform.templates.apply(actor, req.name, req.category, req.content, req.variables)
        return json_response({"id": out["id"], "status": out["status"]}, 201)

    @app.get(
        "/v1/templates/{template_id}", summary="查询模板及审核状态", response_model=m.TemplateOut,
        responses=error_responses(*AUTH_ERRORS, "NOT_FOUND"),
    )  # fmt: skip
    async def get_template(template_id: str, request: Request) -> Response:
        actor, _ = await customer(request)
        return json_response(await platform.templates.get(actor, parse_id(template_id)))

    for router in (
        *message_routers(platform),
        *export_routers(platform),  # after message_routers: /exports/messages (the streamed export) first
        *stats_routers(platform),
        *batch_routers(platform),
        *retention_routers(platform),
        *number_routers(platform),
    ):
        app.include_router(router)
    app.include_router(admin_router(platform))
    app.include_router(connections_router(platform))
    app.include_router(admin_billing_router(platform))
    app.include_router(customer_billing_router(platform))
    for router in compliance_routers(platform):
        app.include_router(router)
    for router in alert_routers(platform):
        app.include_router(router)

    def openapi_with_security() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        annotate_openapi(app, schema)  # each /admin route's area and roles (api/areas.py)
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
        schema["components"].setdefault("schemas", {})["ErrorBody"] = ERROR_SCHEMA
        for path, ops in schema.get("paths", {}).items():
            for op in ops.values():
                if path.startswith("/v1/"):
                    op["security"] = [{"AppKey": [], "Timestamp": [], "Nonce": [], "Signature": []}]
                elif path.startswith("/admin/"):
                    op["security"] = [{"StaffToken": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi_with_security  # type: ignore[method-assign]

    @app.get("/metrics", summary="Prometheus 指标（员工令牌：ops 或 admin）", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        await deps.staff_actor(platform, request, "channels")
        body = await asyncio.to_thread(platform.metrics.render)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    app.include_router(aliyun_router(platform))  # POST / with x-acs-action or Action (api/aliyun.py)
    app.include_router(health_router(platform))  # /healthz, /readyz, /admin/health (api/health.py)
    mount_static(app)  # /console-static: the console's stylesheet and script
    app.include_router(console_router(platform))  # the web console: GET /, /login, … (qixin/console/)

    return app


async def handle_send(platform: Services, request: Request) -> Response:
    """POST /v1/sms: authenticate, accept, answer. Shared by the FastAPI route and the fast path."""
    key, body, claim = await deps.signed_deferred(platform, request)
    try:
        return json_response(await platform.accept.accept(key, parse_json(body), body, guard=claim))
    except Exception as e:
        if claim is not None:
            await claim.settle(e)  # the accept did not commit: spend the nonce on its own
        raise


class FastSend:
    """An ASGI shell: ``POST /v1/sms``, the busiest route, goes straight to ``handle_send`` without the
    framework's middleware stack (it answers errors itself, the same way the exception handlers do);
    every other request — and the route's OpenAPI description — is the FastAPI app's."""

    def __init__(self, app: FastAPI, platform: Services) -> None:
        self.app = app
        self.platform = platform

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500
        if scope["method"] == "POST" and scope["path"] == "/v1/sms":
            request = Request(scope, receive)
            try:
                response = await handle_send(self.platform, request)
            except QxError as exc:
                response = error_response(exc)
            except Exception as exc:
                response = unexpected_response(self.platform.log, exc)
            status = response.status_code
            await response(scope, receive, send)
            route = "/v1/sms"
        else:

            async def send_status(message: MutableMapping[str, Any]) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await self.app(scope, receive, send_status)
            finally:
                matched = scope.get("route")
                route = getattr(matched, "path", None) or "unmatched"
        self.platform.metrics.observe_http(scope["method"], route, status, time.perf_counter() - t0)


def asgi_app(platform: Services, runtime: Runtime | None = None) -> BodyLimit:
    """The application servers run: the FastAPI app behind the send fast path. With ``runtime``, the
    server's lifespan starts and stops its roles."""

    lifespan = None
    if runtime is not None:

        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await runtime.start()
            try:
                yield
            finally:
                await runtime.stop()

    uploads = route("POST", r"/v1/batches", platform.settings.filejob_max_bytes + MiB)  # file + form fields
    # body limits first (api/limits.py)
    return BodyLimit(FastSend(create_api(platform, lifespan), platform), (*ROUTE_LIMITS, uploads))
