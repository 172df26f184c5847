"""The web console's routes: login (password + SMS code), customer pages, staff pages (docs/console.md).

Every route translates a form or a query into one use-case call (``services/``) and renders a template;
who may open which page is declared with the page (``Console.page``; web.py has the rules).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from qixin.api.billing import statement_file
from qixin.api.deps import client_ip
from qixin.api.docs import Static
from qixin.console.contacts import contact_pages
from qixin.console.filesend import file_pages
from qixin.console.lists import optout_pages
from qixin.console.staffdesk import staff_desk_pages
from qixin.console.web import HERE, LOGIN_CSRF_COOKIE, SESSION_COOKIE, SHANGHAI, Console, Ctx, message_body
from qixin.domain.delivery import REASONS
from qixin.domain.money import yuan_to_li
from qixin.domain.roles import CUSTOMER_ROLES
from qixin.errors import QxError
from qixin.services.queries import MessageFilter

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services

CARRIER_NAMES = {"cmcc": "移动", "cucc": "联通", "ctcc": "电信", "cbn": "广电", "intl": "国际", "": "未知"}


def mount_static(app: Any) -> None:
    """The console's own stylesheet and script (vendored libraries come from /static/vendor)."""
    app.mount("/console-static", Static(directory=HERE / "static"), name="console-static")


def console_router(platform: Services) -> APIRouter:
    router = APIRouter()
    c = Console(platform, router)
    users = platform.console_users
    _login_routes(c, router)
    _customer_pages(c, platform)
    file_pages(c, platform)
    optout_pages(c, platform)
    contact_pages(c, platform)
    _staff_pages(c, platform)
    staff_desk_pages(c, platform)

    @router.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        session = await c.session_of(request) or await users.session(request.cookies.get(SESSION_COOKIE), "code")
        form = dict(await c.read_form(request))
        if session is None or not c.csrf_ok(request, form, session.csrf):
            return c.refuse(Ctx(request, session), 403, "请求被拒绝", QxError("CSRF_INVALID").message)
        await users.logout(session, client_ip(request))
        out = RedirectResponse("/login", status_code=303)
        out.delete_cookie(SESSION_COOKIE, path="/")
        return out

    return router


# -- login ------------------------------------------------------------------------------------------------


def _login_routes(c: Console, router: APIRouter) -> None:
    users = c.p.console_users

    def login_page(request: Request, error: str | None = None, status: int = 200, phone: str = "") -> Response:
        import secrets

        token = secrets.token_urlsafe(24)
        page = c.render(Ctx(request, None), "login.html", status=status, login_csrf=token, error=error, phone=phone)
        c.set_cookie(request, page, LOGIN_CSRF_COOKIE, token, 3600)
        return page

    @router.get("/login", include_in_schema=False)
    async def login_form(request: Request) -> Response:
        if await c.session_of(request) is not None:
            return RedirectResponse("/", status_code=303)
        return login_page(request)

    @router.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = dict(await c.read_form(request))
        if not c.csrf_ok(request, form, request.cookies.get(LOGIN_CSRF_COOKIE, "")):
            return c.refuse(Ctx(request, None), 403, "请求被拒绝", QxError("CSRF_INVALID").message)
        phone = form.get("phone", "").strip()
        try:
            started = await users.login(phone, form.get("password", ""), client_ip(request))
        except QxError as e:
            return login_page(request, e.message, 401 if e.status == 401 else e.status, phone)
        out = RedirectResponse("/login/code", status_code=303)
        c.set_cookie(request, out, SESSION_COOKIE, started.token, int(users.code_ms / 1000))
        out.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        return out

    @router.api_route("/login/code", methods=["GET", "POST"], include_in_schema=False)
    async def login_code(request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        pending = await users.session(token, stage="code")
        if pending is None or token is None:
            return RedirectResponse("/login", status_code=303)
        ctx = Ctx(request, None)
        error = None
        if request.method == "POST":
            form = dict(await c.read_form(request))
            if not c.csrf_ok(request, form, pending.csrf):
                return c.refuse(ctx, 403, "请求被拒绝", QxError("CSRF_INVALID").message)
            try:
                s = await users.verify_code(token, form.get("code", ""), client_ip(request), form.get("totp", ""))
            except QxError as e:
                if e.code == "LOGIN_LOCKED":
                    return login_page(request, e.message, 423)
                error = e.message
            else:
                out = RedirectResponse("/password" if s.user.must_change else ("/staff" if s.user.is_staff else "/"),
                                       status_code=303)  # fmt: skip
                c.set_cookie(request, out, SESSION_COOKIE, token, int(users.session_ms / 1000))
                return out
        return c.render(ctx, "code.html", status=401 if error else 200, error=error, phone=pending.user.phone,
                        code_csrf=pending.csrf, totp=pending.user.totp)  # fmt: skip

    @router.api_route("/password", methods=["GET", "POST"], include_in_schema=False)
    async def password(request: Request) -> Response:
        session = await c.session_of(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        ctx = Ctx(request, session)
        error = notice = None
        if request.method == "POST":
            form = dict(await c.read_form(request))
            if not c.csrf_ok(request, form, session.csrf):
                return c.refuse(ctx, 403, "请求被拒绝", QxError("CSRF_INVALID").message)
            if form.get("new", "") != form.get("again", ""):
                error = "两次输入的新密码不一致"
            else:
                try:
                    await users.change_password(session, form.get("old", ""), form.get("new", ""), ctx.ip)
                except QxError as e:
                    error = e.message
                else:
                    return RedirectResponse("/staff" if session.user.is_staff else "/", status_code=303)
        return c.render(ctx, "password.html", status=400 if error else 200, error=error, notice=notice)


# -- customer pages ---------------------------------------------------------------------------------------


def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _customer_pages(c: Console, p: Services) -> None:
    async def dashboard(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        actor = ctx.actor
        now = datetime.now(SHANGHAI)
        since = min(_month_start(now), now - timedelta(days=29)).replace(hour=0, minute=0, second=0, microsecond=0)
        since_s = int(since.timestamp())
        days = await p.statistics.query(actor, (), "day", since_s, None)
        carriers = await p.statistics.query(actor, ("carrier",), None, since_s, None)
        today = now.strftime("%Y-%m-%d")
        month = now.strftime("%Y-%m")
        by_day = {g["day"]: g for g in days["groups"]}
        labels = [(since + timedelta(days=i)).strftime("%Y-%m-%d") for i in range((now - since).days + 1)]
        labels = labels[-30:]

        def total(prefix: str) -> dict[str, Any]:
            gs = [g for d, g in by_day.items() if d.startswith(prefix)]
            delivered = sum(g["by_status"].get("delivered", 0) for g in gs)
            done = delivered + sum(g["by_status"].get(s, 0) for g in gs for s in ("failed", "expired"))
            return {
                "messages": sum(g["messages"] for g in gs), "parts": sum(g["parts"] for g in gs),
                "fee_li": sum(g["fee_li"] for g in gs), "rate": f"{delivered / done:.1%}" if done else "—",
            }  # fmt: skip

        chart = {
            "days": labels,
            "sent": [by_day.get(d, {}).get("messages", 0) for d in labels],
            "delivered": [by_day.get(d, {}).get("by_status", {}).get("delivered", 0) for d in labels],
            "carriers": [{"name": CARRIER_NAMES.get(g["carrier"], g["carrier"]), "value": g["messages"]}
                         for g in carriers["groups"]],
        }  # fmt: skip
        balance = await p.billing.balance(actor) if actor.may("console.billing") else None
        account = await p.accounts.get(actor)
        recent = await p.console_views.recent_batches(actor, limit=10)
        notices = (await p.announcements.listing(actor, None, 5))["announcements"]
        return "dashboard.html", {"announcements": notices,
            "today": total(today), "month": total(month), "balance": balance, "account": account,
            "chart_json": orjson.dumps(chart).decode().replace("</", "<\\/"), "recent": recent,
        }  # fmt: skip

    c.page("/", kind="customer", area="console.read", get=dashboard)

    async def send_page(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        sigs = await p.signatures.listing(ctx.actor, status="approved")
        tpls = await p.templates.listing(ctx.actor, status="approved")
        return "send.html", {"signatures": sigs, "templates": tpls, "result": ctx.form.get("_result"), "form": ctx.form}

    async def send(ctx: Ctx) -> str:
        numbers = [n for n in ctx.get("to").replace("，", ",").replace("\n", ",").split(",") if n.strip()]
        body = message_body(ctx) | {"to": numbers[0] if len(numbers) == 1 else numbers}
        if not numbers:
            raise QxError("NUMBERS_EMPTY")
        out = await p.console_send.send(ctx.actor, body)
        ctx.form["_result"] = orjson.dumps(out).decode()
        refused = out.get("rejected_count", 0)
        return (
            f"已提交 {out.get('accepted_count', 0)} 条，批次 {out.get('batch_id')}，费用 {out.get('total_fee')} 元"
            + (f"，{refused} 个号码被拒" if refused else "")
        )

    c.page("/send", kind="customer", area="console.send", get=send_page, post=send)

    async def records(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        f = MessageFilter(
            number=ctx.get("number") or None, batch_id=ctx.get("batch_id") or None, status=ctx.get("status") or None,
            since=ctx.get("since") or None, until=ctx.get("until") or None,
        )  # fmt: skip
        page = await p.message_search.search(ctx.actor, f, cursor=ctx.get("cursor") or None, limit=50)
        report = await p.message_search.batch_report(ctx.actor, f.batch_id) if f.batch_id else None
        query = {k: ctx.get(k) for k in ("number", "batch_id", "status", "since", "until") if ctx.get(k)}
        return "records.html", {"items": page["items"], "next_cursor": page["next_cursor"], "q": query,
                                "report": report, "carriers": CARRIER_NAMES, "reasons": REASONS}  # fmt: skip

    c.page("/records", kind="customer", area="console.read", get=records)

    async def signatures(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        return "signatures.html", {
            "signatures": await p.signatures.listing(ctx.actor), "templates": await p.templates.listing(ctx.actor),
        }  # fmt: skip

    async def apply(ctx: Ctx) -> str:
        ctx.actor.require("console.apply")
        if ctx.get("what") == "signature":
            out = await p.signatures.apply(ctx.actor, ctx.get("name"), ctx.get("purpose"))
            return f"签名「{out['name']}」已提交审核"
        variables: dict[str, Any] = {}
        for line in ctx.get("variables").splitlines():
            k, sep, v = line.partition("=")
            if sep:
                variables[k.strip()] = v.strip()
        out = await p.templates.apply(ctx.actor, ctx.get("name"), ctx.get("category"), ctx.get("content"), variables)
        return f"模板已提交审核（编号 {out['id']}）"

    c.page("/signatures", kind="customer", area="console.read", get=signatures, post=apply)

    async def billing_page(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        a = ctx.actor
        return "billing.html", {
            "balance": await p.billing.balance(a), "packages": await p.billing.packages(a),
            "ledger": (await p.billing.ledger(a, None, 50))["entries"], "statements": await p.billing.statements(a),
            "prices": await p.billing.prices(a),
        }  # fmt: skip

    c.page("/billing", kind="customer", area="console.billing", get=billing_page)

    async def download(request: Request, statement_id: int, fmt: str) -> Response:
        session = await c.session_of(request)
        if session is None or session.user.is_staff or session.user.must_change:
            return RedirectResponse("/login", status_code=303)
        ctx = Ctx(request, session)
        if not ctx.actor.may("console.billing"):
            return c.refuse(ctx, 403, "无权访问", "您的角色无权下载对账单。")
        try:
            return statement_file(await p.billing.statement(ctx.actor, statement_id), fmt)
        except QxError as e:
            return c.refuse(ctx, e.status, "操作失败", e.message)

    c.router.add_api_route("/billing/statements/{statement_id}.{fmt}", download, methods=["GET"],
                           include_in_schema=False)  # fmt: skip

    async def keys(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        return "keys.html", {"keys": await p.accounts.keys(ctx.actor), "secret": ctx.form.get("_secret")}

    async def key_action(ctx: Ctx) -> str:
        action = ctx.get("action")
        if action == "create":
            out = await p.accounts.create_key(ctx.actor)
        elif action == "rotate":
            out = await p.accounts.rotate_key(ctx.actor, ctx.get("app_key"))
        elif action == "callback":
            await p.accounts.set_callback(ctx.actor, ctx.get("app_key"), ctx.get("callback_url") or None)
            return "回调地址已保存"
        elif action == "test_event":
            out = await p.accounts.send_test_event(ctx.actor, ctx.get("app_key"))
            return f"测试事件已加入推送队列，将推送到 {out['callback_url']}（签名方式与回执相同）"
        elif action == "ips":
            ips = [x for x in ctx.get("ips").replace("\n", ",").split(",") if x.strip()]
            await p.accounts.set_ip_allowlist(ctx.actor, ctx.get("app_key"), ips)
            return "IP 白名单已保存"
        else:
            raise QxError("INVALID_REQUEST", "未知操作")
        ctx.form["_secret"] = orjson.dumps({"app_key": out["app_key"], "app_secret": out["app_secret"]}).decode()
        return "密钥已生成，密钥（secret）只显示这一次，请立即保存"

    c.page("/keys", kind="customer", area="console.keys", get=keys, post=key_action)

    async def users_page(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        return "users.html", {
            "users": await p.console_users.listing(ctx.actor, None), "roles": CUSTOMER_ROLES,
            "ranges": await p.console_users.login_ranges(ctx.actor),
        }  # fmt: skip

    async def users_action(ctx: Ctx) -> str:
        action = ctx.get("action")
        u = p.console_users
        if action == "invite":
            out = await u.create_user(ctx.actor, None, ctx.get("name"), ctx.get("phone"), ctx.get("role"),
                                      ctx.get("password"))  # fmt: skip
            return f"已添加用户 {out['name']}（{out['phone']}），首次登录须修改密码"
        if action == "remove":
            await u.remove(ctx.actor, int(ctx.get("user_id") or 0))
            return "用户已移除"
        if action == "unlock":
            await u.unlock(ctx.actor, int(ctx.get("user_id") or 0))
            return "用户已解锁"
        if action == "ranges":
            await u.set_login_ranges(ctx.actor, None, ctx.get("ranges").replace("\n", ",").split(","))
            return "登录 IP 范围已保存"
        raise QxError("INVALID_REQUEST", "未知操作")

    c.page("/users", kind="customer", area="console.users", get=users_page, post=users_action)


# -- staff pages -----------------------------------------------------------------------------------------


def _staff_pages(c: Console, p: Services) -> None:
    async def review(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        return "staff_review.html", {
            "signatures": await p.signatures.listing(ctx.actor, status="pending"),
            "templates": await p.templates.listing(ctx.actor, status="pending"),
        }  # fmt: skip

    async def decide(ctx: Ctx) -> str:
        approve = ctx.get("decision") == "approve"
        item = int(ctx.get("id") or 0)
        use = p.signatures if ctx.get("what") == "signature" else p.templates
        await use.review(ctx.actor, item, approve, ctx.get("reason") or None)
        return ("已通过" if approve else "已驳回") + f"（编号 {item}）"

    c.page("/staff/review", kind="staff", area="review", get=review, post=decide)

    async def home(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        a = ctx.actor
        return "staff_home.html", {
            "pending_signatures": len(await p.signatures.listing(a, status="pending")) if a.may("review") else None,
            "pending_templates": len(await p.templates.listing(a, status="pending")) if a.may("review") else None,
            "accounts": len(await p.accounts.listing(a)) if a.may("accounts.read") else None,
        }  # fmt: skip

    c.page("/staff", kind="staff", area=None, get=home)

    async def accounts(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        return "staff_accounts.html", {
            "accounts": await p.accounts.listing(ctx.actor),
            "created": ctx.form.get("_created"),
        }

    async def account_action(ctx: Ctx) -> str:
        action = ctx.get("action")
        a = ctx.actor
        if action == "create":
            out = await p.accounts.create(
                a, ctx.get("name"), ctx.get("signature"), yuan_to_li(ctx.get("balance") or "0"),
                yuan_to_li(ctx.get("price") or "0"),
            )  # fmt: skip
            ctx.form["_created"] = orjson.dumps(out).decode()
            return f"账户 {out['account_id']} 已创建"
        account_id = int(ctx.get("account_id") or 0)
        if action == "topup":
            await p.billing.topup(a, account_id, yuan_to_li(ctx.get("amount")), f"console-{time.time_ns()}",
                                  ctx.get("note") or "控制台充值")  # fmt: skip
            return f"账户 {account_id} 已充值 {ctx.get('amount')} 元"
        if action in ("freeze", "unfreeze"):
            if action == "freeze" and not ctx.get("reason"):
                raise QxError("INVALID_REQUEST", "冻结须填写原因")
            await p.compliance_desk.set_frozen(a, account_id, action == "freeze", ctx.get("reason"))
            return f"账户 {account_id} 已" + ("冻结" if action == "freeze" else "解冻")
        raise QxError("INVALID_REQUEST", "未知操作")

    c.page("/staff/accounts", kind="staff", area="accounts.read", get=accounts, post=account_action)

    async def channels(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        health = p.health()
        rows = p.channels.health() if p.channels.started else health["channels"]
        probes = await p.flash_probe.report(ctx.actor)  # the periodic 闪测 of every channel
        return "staff_channels.html", {"channels": rows, "dispatch": health["dispatch"], "probes": probes}

    c.page("/staff/channels", kind="staff", area="channels", get=channels)

    async def audit(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        before = int(ctx.get("before") or 0) or None
        rows = await p.staff_users.audit(ctx.actor, 100, before, ctx.get("action") or None)
        return "staff_audit.html", {"rows": rows, "q_action": ctx.get("action")}

    c.page("/staff/audit", kind="staff", area="audit.read", get=audit)

    async def staff_users(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        staff = await p.staff_users.listing(ctx.actor)
        return "staff_users.html", {"staff": staff, "users": await p.console_users.listing(ctx.actor, None)}

    async def staff_users_action(ctx: Ctx) -> str:
        if ctx.get("action") == "unlock":
            await p.console_users.unlock(ctx.actor, int(ctx.get("user_id") or 0))
            return "已解锁"
        raise QxError("INVALID_REQUEST", "未知操作")

    c.page("/staff/users", kind="staff", area="staff.write", get=staff_users, post=staff_users_action)
