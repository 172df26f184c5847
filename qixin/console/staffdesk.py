"""The console's staff desk pages: 合规 (compliance), 统计 (statistics), 告警 (alerts), 公告 (announcements).

Each page calls the use cases the ``/admin`` API calls (services/compliance/desk.ComplianceDesk,
services/stats.Statistics, services/alerts.Alerts, services/announcements.Announcements), which check
the staff role again:

- ``/staff/compliance`` (area ``compliance``: reviewer, admin): the review queue's counts (the queue itself
  is 审核), a "test this text" box (the live checker, nothing stored), the blacklist (add, remove; numbers
  masked unless the role may read numbers), the lexicon (words by category, add, remove: a new version
  each time, live at once), its versions, the latest violations and complaints.
- ``/staff/statistics`` (``accounts.read``): sends across accounts from the hourly rollups — a chart by
  day and a table grouped by account, carrier, channel, type, province or signature.
- ``/staff/alerts`` (``channels``: ops, admin): alerts (open, unacknowledged, resolved), acknowledge, and
  the rules (threshold, duration, window, minimum messages, enabled).
- ``/staff/announcements`` (``channels``): publish a maintenance or incident notice to every account or
  a list, list them, withdraw.
- ``/staff/content-review`` (``review``: reviewer, admin): the batches the content classifier held for
  manual review (人工审核, services/compliance/review.ReviewQueue) — category, score, evidence, content,
  messages and money — approve (sent at once) or reject with a reason (refunded, the customer told why).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from qixin.console.web import SHANGHAI, Console, Ctx
from qixin.domain.compliance.lexicon import CATEGORIES
from qixin.domain.numbers import mask
from qixin.errors import QxError
from qixin.services.compliance import usecases
from qixin.services.queries import parse_id

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services

GROUPS = {"account_id": "账户", "carrier": "运营商", "channel": "通道", "type": "类型", "province": "省份",
          "signature": "签名"}  # fmt: skip
CARRIERS = {"cmcc": "移动", "cucc": "联通", "ctcc": "电信", "cbn": "广电", "intl": "国际", "": "未知"}
TYPES = {"verification": "验证码", "notification": "通知", "marketing": "营销"}
ALERT_STATES = {"": "全部", "open": "未恢复", "unacknowledged": "未确认", "resolved": "已恢复"}
KINDS = {"maintenance": "维护公告", "incident": "故障通告"}
WORDS_SHOWN = 300


def _lines(text: str) -> list[str]:
    return [x.strip() for x in text.replace("，", ",").replace("\r", "").replace("\n", ",").split(",") if x.strip()]


def _json(data: Any) -> str:
    return orjson.dumps(data).decode().replace("</", "<\\/")


def _number(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError as e:
        raise QxError("INVALID_REQUEST", f"{what}应为数字") from e


def _day(text: str, default: datetime) -> datetime:
    if not text:
        return default
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=SHANGHAI)
    except ValueError as e:
        raise QxError("INVALID_REQUEST", "日期格式应为 YYYY-MM-DD") from e


def staff_desk_pages(c: Console, p: Services) -> None:
    _compliance(c, p)
    _statistics(c, p)
    _alerts(c, p)
    _announcements(c, p)
    _content_review(c, p)


# -- 合规 -----------------------------------------------------------------------------------------------------


def _compliance(c: Console, p: Services) -> None:
    desk = p.compliance_desk

    async def page(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        a = ctx.actor
        category = ctx.get("category") or None
        if category is not None and category not in CATEGORIES:
            category = None
        find = ctx.get("q")
        version, words, allow = await desk.lexicon(a, category)
        counts: dict[str, int] = {}
        for w in (await desk.lexicon(a, None))[1] if category else words:
            counts[w["category"]] = counts.get(w["category"], 0) + 1
        if find:
            words = [w for w in words if find in w["word"]]
        reveal = a.may("numbers.read")
        blacklist = await desk.blacklist(a)
        for r in blacklist:
            r["shown"] = r["number"] if reveal else mask(r["number"])
        review = a.may("review")
        return "staff_compliance.html", {
            "version": version, "words": words[:WORDS_SHOWN], "words_total": len(words), "allow": allow,
            "counts": counts, "categories": CATEGORIES, "category": category or "", "q": find,
            "versions": (await desk.lexicon_versions(a))[:10], "blacklist": blacklist[:500],
            "blacklist_total": len(blacklist), "violations": await desk.violations(a, None, 20),
            "complaints": (await desk.complaints(a))[:20], "types": TYPES,
            "pending_signatures": len(await p.signatures.listing(a, status="pending")) if review else None,
            "pending_templates": len(await p.templates.listing(a, status="pending")) if review else None,
            "check": ctx.form.get("_check"), "form": ctx.form, "rejected": ctx.form.get("_rejected", []),
        }  # fmt: skip

    async def act(ctx: Ctx) -> str:
        a = ctx.actor
        action = ctx.get("action")
        if action == "check":
            content, kind = ctx.get("content"), ctx.get("type") or "marketing"
            if kind not in TYPES:
                raise QxError("TYPE_INVALID")
            if not content:
                raise QxError("INVALID_REQUEST", "请输入要检测的内容")
            a.require("compliance")
            found = p.compliance.checker.check_content(content, kind)
            ctx.form["_check"] = _json({"ok": not found, "version": p.compliance.checker.lexicon.version,
                                        "violations": [v.message_zh for v in found]})  # fmt: skip
            return "检测完成（不发送，不记违规）"
        if action in ("blacklist_add", "blacklist_remove"):
            numbers = _lines(ctx.get("numbers"))
            if not numbers:
                raise QxError("NUMBERS_EMPTY")
            parsed = usecases.list_input(numbers, None)
            ctx.form["_rejected"] = parsed.rejected  # type: ignore[assignment]
            bad = f"，{len(parsed.rejected)} 个无效" if parsed.rejected else ""
            if action == "blacklist_add":
                out = await desk.import_blacklist(a, parsed, ctx.get("reason") or "控制台添加")
                return f"已加入黑名单 {out['added']} 个号码" + bad
            out = await desk.remove_blacklist(a, parsed)
            return f"已移出黑名单 {out['removed']} 个号码" + bad
        if action == "complaint":
            message_id = ctx.get("message_id")
            if message_id and not message_id.isdigit():
                raise QxError("INVALID_REQUEST", "短信编号应为数字")
            out = await desk.record_complaint(a, ctx.get("number"), int(message_id) if message_id else None,
                                              ctx.get("note"))  # fmt: skip
            return f"投诉已登记（编号 {out['complaint_id']}），号码已加入黑名单"
        if action == "word_add":
            body = {"add": [{"word": w, "category": ctx.get("category")} for w in _lines(ctx.get("words"))],
                    "note": ctx.get("note")}  # fmt: skip
        elif action == "word_remove":
            body = {"remove": _lines(ctx.get("words")), "note": ctx.get("note")}
        elif action == "allow_add":
            body = {"allow_add": _lines(ctx.get("words")), "note": ctx.get("note")}
        elif action == "allow_remove":
            body = {"allow_remove": _lines(ctx.get("words")), "note": ctx.get("note")}
        else:
            raise QxError("INVALID_REQUEST", "未知操作")
        out = await desk.change_lexicon(a, body)
        return f"词库已更新为第 {out['version']} 版，立即生效"

    c.page("/staff/compliance", kind="staff", area="compliance", get=page, post=act)

    async def evidence(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        complaint_id = _number(ctx.request.path_params["complaint_id"], "投诉编号")
        report = await desk.evidence_report(ctx.actor, complaint_id)
        if not ctx.actor.may("numbers.read"):
            report["complaint"]["number"] = mask(report["complaint"]["number"])
            for m in report["messages"]:
                m["number"] = mask(m["number"])
        return "staff_evidence.html", {"report": report, "types": TYPES}

    async def evidence_file(request: Request, complaint_id: int) -> Response:
        session = await c.session_of(request)
        if session is None or not session.user.is_staff or session.user.must_change:
            return RedirectResponse("/login", status_code=303)
        ctx = Ctx(request, session)
        if not ctx.actor.may("compliance"):
            return c.refuse(ctx, 403, "无权访问", "您的角色无权下载证据报告。")
        try:
            report = await desk.evidence_report(ctx.actor, complaint_id)
        except QxError as e:
            return c.refuse(ctx, e.status, "操作失败", e.message)
        return Response(
            usecases.evidence.evidence_csv(report).encode(), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="complaint-{complaint_id}.csv"',
                     "Cache-Control": "no-store"},
        )  # fmt: skip

    c.router.add_api_route("/staff/compliance/complaints/{complaint_id}.csv", evidence_file, methods=["GET"],
                           include_in_schema=False)  # fmt: skip
    # after the .csv route: the page's {complaint_id} would also match "5.csv"
    c.page("/staff/compliance/complaints/{complaint_id}", kind="staff", area="compliance", get=evidence)


# -- 统计 -----------------------------------------------------------------------------------------------------


def _statistics(c: Console, p: Services) -> None:
    async def page(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        a = ctx.actor
        today = datetime.now(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
        since = _day(ctx.get("since"), today - timedelta(days=29))
        until = _day(ctx.get("until"), today) + timedelta(days=1)
        if until <= since:
            raise QxError("INVALID_REQUEST", "结束日期不能早于开始日期")
        group = ctx.get("group") or "account_id"
        if group not in GROUPS:
            raise QxError("INVALID_REQUEST", "分组方式可选：" + "、".join(GROUPS.values()))
        s, u = int(since.timestamp()), int(until.timestamp())
        days = await p.statistics.query(a, (), "day", s, u)
        groups = await p.statistics.query(a, (group,), None, s, u)
        names: dict[Any, str] = {}
        if group == "account_id":
            names = {r["account_id"]: r["name"] for r in await p.accounts.listing(a)}
        elif group == "carrier":
            names = dict(CARRIERS)
        elif group == "type":
            names = dict(TYPES)
        rows = sorted(groups["groups"], key=lambda g: -g["messages"])
        for g in rows:
            g["label"] = names.get(g[group], str(g[group] if g[group] not in (None, "") else "—"))
        by_day = {g["day"]: g for g in days["groups"]}
        labels = [(since + timedelta(days=i)).strftime("%Y-%m-%d") for i in range((until - since).days)]
        chart = {
            "days": labels, "sent": [by_day.get(d, {}).get("messages", 0) for d in labels],
            "delivered": [by_day.get(d, {}).get("by_status", {}).get("delivered", 0) for d in labels],
        }  # fmt: skip
        total = {
            "messages": sum(g["messages"] for g in rows), "parts": sum(g["parts"] for g in rows),
            "fee_li": sum(g["fee_li"] for g in rows),
            "delivered": sum(g["by_status"].get("delivered", 0) for g in rows),
            "failed": sum(g["by_status"].get(k, 0) for g in rows for k in ("failed", "expired", "undelivered")),
        }  # fmt: skip
        done = total["delivered"] + total["failed"]
        total["rate"] = f"{total['delivered'] / done:.1%}" if done else "—"
        return "staff_statistics.html", {
            "rows": rows, "total": total, "group": group, "groups": GROUPS, "chart_json": _json(chart),
            "since": since.strftime("%Y-%m-%d"), "until": (until - timedelta(days=1)).strftime("%Y-%m-%d"),
        }  # fmt: skip

    c.page("/staff/statistics", kind="staff", area="accounts.read", get=page)


# -- 告警 -----------------------------------------------------------------------------------------------------


def _alerts(c: Console, p: Services) -> None:
    async def page(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        state = ctx.get("state")
        if state not in ALERT_STATES:
            state = ""
        history = await p.alerts.history(ctx.actor, state or None, None, None, 100)
        return "staff_alerts.html", {
            "alerts": history["alerts"], "rules": await p.alerts.rules(ctx.actor), "state": state,
            "states": ALERT_STATES,
        }  # fmt: skip

    def _number(ctx: Ctx, name: str) -> int:
        try:
            return int(ctx.get(name))
        except ValueError as e:
            raise QxError("INVALID_REQUEST", f"{name} 必须是整数") from e

    async def act(ctx: Ctx) -> str:
        action = ctx.get("action")
        if action == "ack":
            out = await p.alerts.acknowledge(ctx.actor, _number(ctx, "alert_id"))
            return f"告警 {out['id']} 已确认"
        if action == "rule":
            changes: dict[str, Any] = {k: _number(ctx, k) for k in ("threshold", "for_seconds", "window_seconds",
                                                                     "min_messages")}  # fmt: skip
            changes["enabled"] = ctx.get("enabled") == "1"
            out = await p.alerts.set_rule(ctx.actor, _number(ctx, "rule_id"), changes)
            return f"规则 {out['id']}（{out['title']}）已保存"
        raise QxError("INVALID_REQUEST", "未知操作")

    c.page("/staff/alerts", kind="staff", area="channels", get=page, post=act)


# -- 公告 -----------------------------------------------------------------------------------------------------


def _announcements(c: Console, p: Services) -> None:
    async def page(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        out = await p.announcements.listing(ctx.actor, None, 100, include_withdrawn=True)
        return "staff_announcements.html", {"items": out["announcements"], "kinds": KINDS, "form": ctx.form}

    async def act(ctx: Ctx) -> str:
        if ctx.get("action") == "withdraw":
            try:
                item = int(ctx.get("id"))
            except ValueError as e:
                raise QxError("INVALID_REQUEST", "公告编号错误") from e
            await p.announcements.withdraw(ctx.actor, item)
            return f"公告 {item} 已撤回"
        accounts: Any = "all"
        if ctx.get("audience") == "list":
            try:
                accounts = [int(x) for x in _lines(ctx.get("accounts"))]
            except ValueError as e:
                raise QxError("INVALID_REQUEST", "账户 ID 应为数字，用逗号分隔") from e
        body: dict[str, Any] = {"kind": ctx.get("kind"), "title": ctx.get("title"), "body": ctx.get("body"),
                                "starts_at": ctx.get("starts_at") or None, "accounts": accounts}  # fmt: skip
        if ctx.get("ends_at"):
            body["ends_at"] = ctx.get("ends_at")
        out = await p.announcements.publish(ctx.actor, body)
        return f"公告 {out['id']} 已发布，已通知 {out['notified_accounts']} 个账户"

    c.page("/staff/announcements", kind="staff", area="channels", get=page, post=act)


# -- 内容审核 -----------------------------------------------------------------------------------------------------

REVIEW_STATES = {"pending": "待审核", "approved": "已通过", "rejected": "已驳回", "expired": "已过期"}


def _content_review(c: Console, p: Services) -> None:
    async def page(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        state = ctx.get("state") or "pending"
        if state not in REVIEW_STATES:
            state = "pending"
        holds = await p.reviews.list(ctx.actor, state, None, 200)
        return "staff_content_review.html", {"holds": holds, "state": state, "states": REVIEW_STATES}

    async def act(ctx: Ctx) -> str:
        batch_id = parse_id(ctx.get("batch_id"))
        if ctx.get("action") == "approve":
            out = await p.reviews.approve(ctx.actor, batch_id, ctx.get("note"))
            return f"批次 {batch_id} 已通过，{out['messages']} 条短信开始发送"
        if ctx.get("action") == "reject":
            out = await p.reviews.reject(ctx.actor, batch_id, ctx.get("reason"))
            return f"批次 {batch_id} 已驳回，{out['messages']} 条短信已退款"
        raise QxError("INVALID_REQUEST", "未知操作")

    c.page("/staff/content-review", kind="staff", area="review", get=page, post=act)
