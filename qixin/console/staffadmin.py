"""Staff console pages for running the platform: the read-only view of a customer's console, one
account's limits and policies, channels (add / edit / disable), and staff users (create).

- 只读查看 ``/staff/view`` (accounts.read): POST ``action=start`` with ``account_id`` starts viewing that
  account's console in this session (``ConsoleUsers.start_view``, audited) and opens its 概览; ``stop``
  ends it (audited). While viewing, customer pages read as the account's owner and every POST to them is
  refused (console/web.py); the use cases refuse any change by that actor (READ_ONLY).
- 账户设置 ``/staff/account?id=N`` (accounts.read to see): the 24-hour permit, international sending,
  verification-code window and the TPS and daily caps (accounts.write: ``ComplianceDesk.set_policy``,
  ``FlowControl.set``), and the channels dedicated to the account (channels: ``ChannelDesk.update`` of
  each channel's ``accounts``).
- 通道 ``/staff/channels`` (channels): live health, and add / edit / disable / enable through
  ``ChannelDesk``. Secrets are write-only: the form never shows the password back (left empty on edit, it
  stays) and secret options are listed by name only and kept unless given again.
- 员工 ``/staff/users`` (staff.write, admin only): create a staff member who can log in to the console
  (``ConsoleUsers.create_staff``; the API token is shown once), unlock console users.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from fastapi.responses import RedirectResponse, Response

from qixin.console.web import Console, Ctx
from qixin.domain.roles import ROLES
from qixin.errors import QxError
from qixin.services.channels import CARRIER_CODES, MSG_TYPES, PROTOCOLS

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services

CARRIER_LABELS = {"cmcc": "移动", "cucc": "联通", "ctcc": "电信", "cbn": "广电", "intl": "国际", "unknown": "未知"}
TYPE_LABELS = {"verification": "验证码", "notification": "通知", "marketing": "营销"}
CHANNEL_TEXT = ("name", "protocol", "host", "username", "service_code")
CHANNEL_INTS = ("port", "tps", "window", "connections", "priority", "weight")


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError as e:
        raise QxError("INVALID_REQUEST", f"{what}必须是整数") from e


def staff_admin_pages(c: Console, p: Services) -> None:
    _view(c, p)
    _account(c, p)
    _channels(c, p)
    _staff_users(c, p)


# -- 只读查看 ----------------------------------------------------------------------------------------------


def _view(c: Console, p: Services) -> None:
    async def page(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        return "staff_accounts.html", {"accounts": await p.accounts.listing(ctx.actor), "created": None}

    async def act(ctx: Ctx) -> Response | str:
        assert ctx.session is not None
        if ctx.get("action") == "start":
            await p.console_users.start_view(ctx.session, _int(ctx.get("account_id"), "账户 ID"), ctx.ip)
            return RedirectResponse("/", status_code=303)
        if ctx.get("action") == "stop":
            await p.console_users.stop_view(ctx.session, ctx.ip)
            return RedirectResponse("/staff/accounts", status_code=303)
        raise QxError("INVALID_REQUEST", "未知操作")

    c.page("/staff/view", kind="staff", area="accounts.read", get=page, post=act)


# -- 账户设置 ----------------------------------------------------------------------------------------------


def _account(c: Console, p: Services) -> None:
    async def page(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        a = ctx.actor
        account_id = _int(ctx.get("id"), "账户 ID")
        account = await p.accounts.get(a, account_id)
        policy = await p.compliance_desk.policy(a, account_id) if a.may("compliance") else None
        channels = await p.channel_desk.listing(a) if a.may("channels") else None
        return "staff_account.html", {
            "account": account, "policy": policy, "flow": await p.flow.get(a, account_id), "channels": channels,
            "carriers": CARRIER_LABELS,
        }  # fmt: skip

    async def act(ctx: Ctx) -> str:
        a = ctx.actor
        account_id = _int(ctx.get("id"), "账户 ID")
        action = ctx.get("action")
        if action == "policy":
            changes = {k: ctx.get(k) == "1" for k in ("permit_24h", "international", "verification_window")}
            await p.compliance_desk.set_policy(a, account_id, changes)
            return "策略已保存"
        if action == "flow":
            tps = _int(ctx.get("tps") or "0", "TPS")
            daily = _int(ctx.get("daily_cap") or "0", "每日上限")
            await p.flow.set(a, account_id, tps, daily)
            return "流量控制已保存（0 为不限）"
        if action == "dedicated":
            wanted = {_int(v, "通道") for k, v in ctx.forms if k == "channel" and v.strip()}
            changed = 0
            for ch in await p.channel_desk.listing(a):
                has = account_id in ch["accounts"]
                if has != (ch["id"] in wanted):
                    accounts = sorted(set(ch["accounts"]) ^ {account_id})
                    await p.channel_desk.update(a, int(ch["id"]), {"accounts": accounts})
                    changed += 1
            return f"专属通道已保存（{changed} 个通道有变化）"
        raise QxError("INVALID_REQUEST", "未知操作")

    c.page("/staff/account", kind="staff", area="accounts.read", get=page, post=act)


# -- 通道 ----------------------------------------------------------------------------------------------


def channel_values(ctx: Ctx, creating: bool) -> dict[str, Any]:
    """The ChannelDesk fields of the channel form: empty text fields are left out when editing, the
    password only when given (write-only), options as a JSON object."""
    values: dict[str, Any] = {}
    for k in CHANNEL_TEXT:
        if ctx.get(k) or creating:
            values[k] = ctx.get(k)
    for k in CHANNEL_INTS:
        if ctx.get(k):
            values[k] = _int(ctx.get(k), k)
    if ctx.form.get("secret"):
        values["secret"] = ctx.form["secret"]
    for k in ("carriers", "msg_types", "accounts"):
        if k in ctx.form:
            values[k] = ",".join(x.strip() for x in ctx.get(k).replace("，", ",").split(",") if x.strip())
    if ctx.get("options"):
        try:
            options = orjson.loads(ctx.get("options"))
        except orjson.JSONDecodeError as e:
            raise QxError("INVALID_REQUEST", '协议参数须为 JSON 对象，如 {"version": 48}') from e
        if not isinstance(options, dict):
            raise QxError("INVALID_REQUEST", "协议参数须为 JSON 对象")
        values["options"] = options
    if not creating:
        values["enabled"] = ctx.get("enabled") == "1"
    return values


def _channels(c: Console, p: Services) -> None:
    async def page(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        health = p.health()
        rows = p.channels.health() if p.channels.started else health["channels"]
        configured = await p.channel_desk.listing(ctx.actor)
        probes = await p.flash_probe.report(ctx.actor)  # the periodic 闪测 of every channel
        editing = None
        if ctx.get("edit"):
            edit_id = _int(ctx.get("edit"), "通道")
            editing = next((ch for ch in configured if ch["id"] == edit_id), None)
            if editing is None:
                raise QxError("NOT_FOUND", "通道不存在")
        return "staff_channels.html", {
            "channels": rows, "dispatch": health["dispatch"], "configured": configured, "editing": editing,
            "protocols": PROTOCOLS, "carrier_codes": CARRIER_CODES, "msg_types": MSG_TYPES,
            "carrier_labels": CARRIER_LABELS, "type_labels": TYPE_LABELS, "form": ctx.form,
            "options_json": lambda o: orjson.dumps(o).decode() if o else "", "probes": probes,
        }  # fmt: skip

    async def act(ctx: Ctx) -> str:
        a = ctx.actor
        action = ctx.get("action")
        if action == "create":
            out = await p.channel_desk.create(a, channel_values(ctx, True))
            return f"通道「{out['name']}」已添加"
        channel_id = _int(ctx.get("channel_id"), "通道")
        if action == "update":
            out = await p.channel_desk.update(a, channel_id, channel_values(ctx, False), keep_secret_options=True)
            return f"通道「{out['name']}」已保存（版本 {out['version']}）"
        if action in ("disable", "enable"):
            out = await p.channel_desk.update(a, channel_id, {"enabled": action == "enable"})
            return f"通道「{out['name']}」已" + ("启用" if action == "enable" else "停用")
        raise QxError("INVALID_REQUEST", "未知操作")

    c.page("/staff/channels", kind="staff", area="channels", get=page, post=act)


# -- 员工 ----------------------------------------------------------------------------------------------


def _staff_users(c: Console, p: Services) -> None:
    async def page(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        staff = await p.staff_users.listing(ctx.actor)
        return "staff_users.html", {
            "staff": staff, "users": await p.console_users.listing(ctx.actor, None), "roles": ROLES,
            "created": ctx.form.get("_created"), "form": ctx.form,
        }  # fmt: skip

    async def act(ctx: Ctx) -> str:
        action = ctx.get("action")
        if action == "unlock":
            await p.console_users.unlock(ctx.actor, _int(ctx.get("user_id") or "0", "用户"))
            return "已解锁"
        if action == "create":
            out = await p.console_users.create_staff(ctx.actor, ctx.get("name"), ctx.get("role"), ctx.get("phone"),
                                                     ctx.form.get("password", ""))  # fmt: skip
            ctx.form["_created"] = orjson.dumps(
                {k: out[k] for k in ("staff_id", "name", "role", "phone", "token")}
            ).decode()
            ctx.form.pop("password", None)
            return f"员工 {out['name']} 已创建，首次登录须修改密码"
        if action == "revoke":
            out = await p.staff_users.revoke(ctx.actor, _int(ctx.get("staff_id"), "员工"))
            return f"员工 {out['staff_id']} 已停用"
        raise QxError("INVALID_REQUEST", "未知操作")

    c.page("/staff/users", kind="staff", area="staff.write", get=page, post=act)
