"""The console's 退订管理 (opt-out list) page, on the customer opt-out use cases (services/compliance/usecases).

- ``/optouts``: the account's opt-out list (numbers masked), add numbers (pasted, one per line or comma
  separated, or a CSV file whose first column holds them; bad rows reported, nothing invalid stored),
  remove numbers, and ``/optouts.csv``: the whole list as CSV (full numbers, the account's own data).
- Every console user reads the list (``console.read``); adding, removing and the export need a role that
  sends (``console.send``: owner, operator) — checked here before the handler and again in the use case.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from qixin.console.web import Console, Ctx
from qixin.errors import QxError
from qixin.services.compliance import usecases

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services

SHOWN = 500  # rows listed on the page; the export has them all
CHANGE = "console.send"


def _pasted(text: str) -> list[str]:
    return [x.strip() for x in text.replace("，", ",").replace("\r", "").replace("\n", ",").split(",") if x.strip()]


def _input(ctx: Ctx) -> Any:
    """The numbers of the form: an uploaded CSV (first column) or the pasted list."""
    if "file" in ctx.files and ctx.files["file"][1]:
        try:
            text = ctx.files["file"][1].decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = ctx.files["file"][1].decode("gb18030")
            except UnicodeDecodeError as e:
                raise QxError("FILE_INVALID", "无法识别文件编码，请使用 UTF-8 或 GBK 编码的 CSV") from e
        return usecases.list_input(None, text)
    numbers = _pasted(ctx.get("numbers"))
    if not numbers:
        raise QxError("NUMBERS_EMPTY")
    return usecases.list_input(numbers, None)


def optout_pages(c: Console, p: Services) -> None:
    async def page(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        rows = await usecases.own_optouts(p.db, ctx.actor, p.tokens.tokens_of)
        rows.sort(key=lambda r: -int(r["created_at"] or 0))
        return "optouts.html", {
            "rows": rows[:SHOWN], "total": len(rows), "shown": SHOWN,
            "report": ctx.form.get("_report"), "rejected": ctx.form.get("_rejected", []),
        }  # fmt: skip

    async def change(ctx: Ctx) -> Response | str:
        if not ctx.actor.may(CHANGE):
            return c.refuse(ctx, 403, "无权访问", "您的角色无权修改退订名单。")
        parsed = _input(ctx)
        if ctx.get("action") == "remove":
            out = await usecases.remove_own_optouts(p.db, ctx.actor, parsed)
            message = f"已移除 {out['removed']} 个号码"
        else:
            out = await usecases.add_own_optouts(p.db, ctx.actor, parsed, ctx.get("signature"))
            message = f"已添加 {out['added']} 个号码"
        rejected = out["rejected"]
        ctx.form["_rejected"] = rejected
        return message + (f"，{len(rejected)} 行无效（见下表）" if rejected else "")

    c.page("/optouts", kind="customer", area="console.read", get=page, post=change)

    async def export(request: Request) -> Response:
        session = await c.session_of(request)
        if session is None or session.user.is_staff or session.user.must_change:
            return RedirectResponse("/login", status_code=303)
        ctx = Ctx(request, session)
        if not ctx.actor.may(CHANGE):
            return c.refuse(ctx, 403, "无权访问", "您的角色无权导出退订名单。")
        rows = await usecases.own_optouts(p.db, ctx.actor, p.tokens.tokens_of)
        return Response(
            usecases.to_csv(rows, usecases.OPTOUT_COLUMNS), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="optouts.csv"', "Cache-Control": "no-store"},
        )  # fmt: skip

    c.router.add_api_route("/optouts.csv", export, methods=["GET"], include_in_schema=False)
