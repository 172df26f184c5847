"""The console's page machinery: templates, the session cookie, CSRF, role checks, forms.

Rules:
- The session cookie ``qx_session`` carries a random token (only its SHA-256 is stored): HttpOnly,
  SameSite=Lax, Secure when the request came over TLS. Pages are server-rendered (Jinja2, autoescaped).
- Every POST carries the session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``); before
  login the token is the one the login page set in ``qx_login_csrf``. Anything else is refused with a
  Chinese page and 403 before the handler runs.
- Every page names who may see it: customer pages a ``domain/roles.CUSTOMER_GRANTS`` area, staff pages
  a staff area (``ROLE_GRANTS``). The check runs here, on the server, before the handler; the use cases
  check again. A user who must change the password is sent to /password first.
- A staff session may view one customer account's console read-only (``/staff/view``, audited start and
  stop): customer pages then read as that account's owner, under a banner 「只读查看：账户 X」; every POST
  to a customer page is refused here (403), and the use cases refuse any change by that actor
  (``READ_ONLY``, services/actor.py).
- Routes only translate: they call the use cases of ``services/`` and render; a QxError from a use case
  is shown on the page it came from (the page re-rendered with the error).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from qixin.api.deps import client_ip
from qixin.api.docs import local_page, vendor_path
from qixin.domain.numbers import mask
from qixin.errors import QxError
from qixin.services.actor import Actor
from qixin.services.console_users import ConsoleSession

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services

HERE = Path(__file__).parent
SESSION_COOKIE = "qx_session"
LOGIN_CSRF_COOKIE = "qx_login_csrf"
SHANGHAI = ZoneInfo("Asia/Shanghai")

ROLE_NAMES = {
    "owner": "所有者", "operator": "操作员", "finance": "财务", "viewer": "只读",
    "admin": "管理员", "reviewer": "审核员", "ops": "运维",
}  # fmt: skip
STATUS_NAMES = {
    "queued": "排队中", "submitted": "已提交", "delivered": "已送达", "failed": "失败", "expired": "超时",
    "undelivered": "未送达", "cancelled": "已取消",
    "pending": "待审核", "approved": "已通过", "rejected": "已驳回", "active": "正常", "frozen": "已冻结",
    "disabled": "已停用", "removed": "已移除", "revoked": "已吊销", "scheduled": "定时",
}  # fmt: skip


def _time(ms: Any) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(int(ms) / 1000, SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def _yuan(li: Any) -> str:
    li = int(li or 0)
    sign = "-" if li < 0 else ""
    li = abs(li)
    return f"{sign}{li // 1000}.{li % 1000:03d}"


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(("html",)), trim_blocks=True,
        lstrip_blocks=True,
    )  # fmt: skip
    env.filters["time"] = _time
    env.filters["yuan"] = _yuan
    env.filters["mask"] = mask
    env.filters["fromjson"] = orjson.loads
    env.filters["role"] = lambda r: ROLE_NAMES.get(r, r)
    env.filters["status"] = lambda s: STATUS_NAMES.get(s, s)
    env.filters["category"] = lambda c: {"verification": "验证码", "notification": "通知", "marketing": "营销"}.get(
        c, c
    )
    env.globals["vendor"] = lambda pkg, f: vendor_path(pkg, f)
    env.globals["asset"] = lambda f: f"/console-static/{f}"
    return env


@dataclass
class Ctx:
    """One console request: who (``session``, ``actor``), the form of a POST, where it came from."""

    request: Request
    session: ConsoleSession | None
    form: dict[str, str] = field(default_factory=dict)
    forms: list[tuple[str, str]] = field(default_factory=list)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # multipart uploads: name -> (filename, data)
    customer_page: bool = False  # a customer page (a staff session viewing an account reads it read-only)

    @property
    def ip(self) -> str | None:
        return client_ip(self.request)

    @property
    def actor(self) -> Actor:
        assert self.session is not None
        return self.session.actor(self.ip, self.customer_page)

    @property
    def viewing(self) -> int | None:
        """The account a staff session views read-only (None: not viewing)."""
        s = self.session
        return s.view_account_id if s is not None and s.user.is_staff else None

    def get(self, name: str, default: str = "") -> str:
        return self.form.get(name, self.request.query_params.get(name, default)).strip()


Handler = Callable[[Ctx], Awaitable[Any]]


class Console:
    """Registers pages on ``router`` with their access rule; renders templates."""

    def __init__(self, platform: Services, router: APIRouter) -> None:
        self.p = platform
        self.router = router
        self.env = environment()

    # -- rendering ----------------------------------------------------------------------------------
    def render(self, ctx: Ctx | None, template: str, status: int = 200, **data: Any) -> HTMLResponse:
        session = ctx.session if ctx else None
        html = self.env.get_template(template).render(
            viewing=ctx.viewing if ctx else None, customer_view=bool(ctx and ctx.viewing and ctx.customer_page),
            session=session, user=session.user if session else None, csrf=session.csrf if session else "",
            path=ctx.request.url.path if ctx else "", may=(lambda area: ctx.actor.may(area)) if session and ctx else
            (lambda area: False), **data,
        )  # fmt: skip
        return local_page(HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"}))

    def refuse(self, ctx: Ctx, status: int, title: str, message: str) -> HTMLResponse:
        return self.render(ctx, "error.html", status=status, title=title, message=message)

    # -- sessions and cookies -----------------------------------------------------------------------
    @staticmethod
    def secure(request: Request) -> bool:
        return request.url.scheme == "https"

    def set_cookie(self, request: Request, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name, value, max_age=max_age, httponly=True, samesite="lax", secure=self.secure(request), path="/"
        )

    async def session_of(self, request: Request) -> ConsoleSession | None:
        return await self.p.console_users.session(request.cookies.get(SESSION_COOKIE))

    @staticmethod
    async def read_form(request: Request) -> list[tuple[str, str]]:
        if request.method != "POST":
            return []
        body = (await request.body()).decode("utf-8", errors="replace")
        return parse_qsl(body, keep_blank_values=True)

    @staticmethod
    async def read_multipart(request: Request) -> tuple[list[tuple[str, str]], dict[str, tuple[str, bytes]]]:
        """The text fields and the uploaded files of a multipart/form-data POST (the file-send page)."""
        forms: list[tuple[str, str]] = []
        files: dict[str, tuple[str, bytes]] = {}
        async with request.form() as data:
            for name, value in data.multi_items():
                if isinstance(value, str):
                    forms.append((name, value))
                else:
                    files[name] = (value.filename or "", await value.read())
        return forms, files

    @staticmethod
    def csrf_ok(request: Request, form: dict[str, str], expected: str) -> bool:
        got = form.get("csrf") or request.headers.get("x-csrf-token") or ""
        return bool(expected) and secrets.compare_digest(got, expected)

    # -- page registration --------------------------------------------------------------------------
    def page(
        self, path: str, *, kind: str, area: str | None, get: Handler | None = None, post: Handler | None = None
    ) -> None:
        """A page for ``kind`` ("customer" or "staff") users whose role is in ``area``. ``post`` returns a
        response, or None to show the page again (``get``) with ``ctx.form['_notice']`` if it set one; a
        QxError it raises is shown on the page."""

        async def endpoint(request: Request) -> Response:
            session = await self.session_of(request)
            files: dict[str, tuple[str, bytes]] = {}
            if request.method == "POST" and request.headers.get("content-type", "").startswith("multipart/form-data"):
                forms, files = await self.read_multipart(request)
            else:
                forms = await self.read_form(request)
            ctx = Ctx(request, session, dict(forms), forms, files)
            if session is None:
                if request.method == "POST":
                    return self.refuse(ctx, 403, "请求被拒绝", QxError("CSRF_INVALID").message)
                return RedirectResponse("/login", status_code=303)
            if request.method == "POST" and not self.csrf_ok(request, ctx.form, session.csrf):
                return self.refuse(ctx, 403, "请求被拒绝", QxError("CSRF_INVALID").message)
            if session.user.must_change:
                return RedirectResponse("/password", status_code=303)
            ctx.customer_page = kind == "customer"
            viewing = ctx.customer_page and ctx.viewing is not None
            if (kind == "staff") != session.user.is_staff and not viewing:
                return RedirectResponse("/staff" if session.user.is_staff else "/", status_code=303)
            if viewing and request.method == "POST":
                return self.refuse(ctx, 403, "只读查看", f"只读查看模式（账户 {ctx.viewing}）：不能执行修改操作。"
                                   "请先退出只读查看，再以员工身份在员工页面操作。")  # fmt: skip
            if area is not None and not ctx.actor.may(area):
                return self.refuse(
                    ctx, 403, "无权访问", f"您的角色（{ROLE_NAMES.get(session.user.role, '')}）无权访问此页面。"
                )
            notice: str | None = None
            error: str | None = None
            if request.method == "POST" and post is not None:
                try:
                    out = await post(ctx)
                except QxError as e:
                    error = e.message
                else:
                    if isinstance(out, Response):
                        return out
                    notice = out if isinstance(out, str) else None
            assert get is not None
            try:
                template, data = await get(ctx)
            except QxError as e:
                return self.refuse(ctx, e.status if e.status >= 400 else 400, "操作失败", e.message)
            data.setdefault("notice", notice)
            data.setdefault("error", error)
            return self.render(ctx, template, status=400 if error else 200, **data)

        methods = ["GET"] + (["POST"] if post is not None else [])
        self.router.add_api_route(path, endpoint, methods=methods, include_in_schema=False)


def message_body(ctx: Ctx) -> dict[str, Any]:
    """The message options of a send form (signature, type, free text or template with ``name=value``
    lines, optional audience and time) as a POST /v1/sms body without ``to``."""
    body: dict[str, Any] = {"signature": ctx.get("signature"), "type": ctx.get("type") or "notification"}
    if ctx.get("template_id"):
        body["template_id"] = ctx.get("template_id")
        params: dict[str, str] = {}
        for line in ctx.get("params").splitlines():
            k, sep, v = line.partition("=")
            if sep:
                params[k.strip()] = v.strip()
        body["params"] = params
    else:
        body["content"] = ctx.get("content")
    if ctx.get("audience"):
        body["audience"] = ctx.get("audience")
    if ctx.get("send_at"):
        body["send_at"] = ctx.get("send_at")
    return body
