"""The console's 通讯录 (address book) page, on services/addressbook.AddressBook.

``/contacts`` lists the groups (with their sizes), the tags (with their counts) and the contacts (numbers
masked; ``?group=ID`` for one group, ``?tag=ID`` for one tag, both for their intersection, ``before=ID``
for the next page); owners and operators create and delete groups and tags, import a CSV or XLSX (bad
rows reported; a 标签 column tags the contacts), add one contact, put selected contacts into a group or
take them out, tag or untag them, delete them, and send to a group or a tag
(``AddressBook.send_to_group`` / ``send_to_tag``: the console's send with their numbers).
Everyone with ``console.read`` sees the page; every change needs ``console.send`` (checked here and in
the use case).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi.responses import Response

from qixin.console.web import Console, Ctx, message_body
from qixin.errors import QxError

if TYPE_CHECKING:
    from qixin.api.services import ApiServices as Services

CHANGE = "console.send"


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError as e:
        raise QxError("INVALID_REQUEST", f"{what}错误") from e


def contact_pages(c: Console, p: Services) -> None:
    book = p.addressbook

    async def page(ctx: Ctx) -> tuple[str, dict[str, Any]]:
        a = ctx.actor
        group_id = _int(ctx.get("group"), "分组") if ctx.get("group") else None
        tag_id = _int(ctx.get("tag"), "标签") if ctx.get("tag") else None
        before = _int(ctx.get("before"), "页码") if ctx.get("before") else None
        groups = await book.groups(a)
        tags = await book.tags(a)
        current = next((g for g in groups if g["id"] == group_id), None)
        if group_id is not None and current is None:
            raise QxError("NOT_FOUND", "分组不存在")
        current_tag = next((t for t in tags if t["id"] == tag_id), None)
        if tag_id is not None and current_tag is None:
            raise QxError("NOT_FOUND", "标签不存在")
        listing = await book.contacts(a, group_id, before, 100, tag_id)
        sending = a.may(CHANGE) and (current is not None or current_tag is not None)
        return "contacts.html", {
            "groups": groups, "current": current, "contacts": listing["contacts"], "total": listing["total"],
            "tags": tags, "current_tag": current_tag,
            "next_before_id": listing["next_before_id"], "rejected": ctx.form.get("_rejected", []),
            "signatures": await p.signatures.listing(a, status="approved") if sending else [],
            "templates": await p.templates.listing(a, status="approved") if sending else [], "form": ctx.form,
        }  # fmt: skip

    async def act(ctx: Ctx) -> Response | str:
        a = ctx.actor
        if not a.may(CHANGE):
            return c.refuse(ctx, 403, "无权访问", "您的角色无权修改通讯录或发送。")
        action = ctx.get("action")
        selected = [_int(v, "联系人") for k, v in ctx.forms if k == "contact" and v.strip()]
        group_id = _int(ctx.get("group_id"), "分组") if ctx.get("group_id") else None
        tag_id = _int(ctx.get("tag_id"), "标签") if ctx.get("tag_id") else None
        if action == "tag_create":
            out = await book.create_tag(a, ctx.get("name"))
            return f"已创建标签「{out['name']}」"
        if action == "tag_delete" and tag_id is not None:
            await book.delete_tag(a, tag_id)
            return "标签已删除（联系人仍保留在通讯录中）"
        if action in ("tag_add", "tag_remove"):
            if not selected:
                raise QxError("INVALID_REQUEST", "请先勾选联系人")
            if tag_id is None:
                raise QxError("INVALID_REQUEST", "请选择标签")
            n = await book.set_tagged(a, tag_id, selected, action == "tag_add")
            return f"已为 {n} 个联系人{'添加' if action == 'tag_add' else '移除'}标签"
        if action == "group_create":
            out = await book.create_group(a, ctx.get("name"))
            return f"已创建分组「{out['name']}」"
        if action == "group_delete" and group_id is not None:
            await book.delete_group(a, group_id)
            return "分组已删除（联系人仍保留在通讯录中）"
        if action in ("import", "add"):
            if action == "import":
                filename, data = ctx.files.get("file", ("", b""))
                if not data:
                    raise QxError("FILE_INVALID", "请选择要导入的 CSV 或 XLSX 文件")
                out = await book.import_file(a, data, filename, group_id)
            else:
                out = await book.add_contact(a, ctx.get("number"), ctx.get("name"), group_id, ctx.get("tags"))
            ctx.form["_rejected"] = out["rejected"]
            bad = f"，{len(out['rejected'])} 行无效（见下表）" if out["rejected"] else ""
            return f"新增 {out['added']} 个联系人，更新 {out['updated']} 个" + bad
        if action in ("group_add", "group_remove", "delete"):
            if not selected:
                raise QxError("INVALID_REQUEST", "请先勾选联系人")
            if action == "delete":
                return f"已删除 {await book.delete_contacts(a, selected)} 个联系人"
            if group_id is None:
                raise QxError("INVALID_REQUEST", "请选择分组")
            n = await book.set_membership(a, group_id, selected, action == "group_add")
            return f"已{'加入' if action == 'group_add' else '移出'}分组 {n} 个联系人"
        if action == "send" and (group_id is not None or tag_id is not None):
            if group_id is not None:
                out = await book.send_to_group(a, group_id, message_body(ctx))
            else:
                assert tag_id is not None
                out = await book.send_to_tag(a, tag_id, message_body(ctx))
            refused = out.get("rejected_count", 0)
            return (
                f"已提交 {out.get('accepted_count', 0)} 条，批次 {out.get('batch_id')}，费用 {out.get('total_fee')} 元"
                + (f"，{refused} 个号码被拒" if refused else "")
            )
        raise QxError("INVALID_REQUEST", "未知操作")

    c.page("/contacts", kind="customer", area="console.read", get=page, post=act)
