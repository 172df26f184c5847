"""The address book (通讯录): an account's contacts, groups and tags, imported from CSV, sent to by group or tag.

Rules:
- A contact is one number of the account (stored normalised, unique per account) with a name and free
  fields (the import's other columns); a group holds any of the account's contacts, a contact any number
  of groups. A tag (标签) is a short label (1–32 characters) of the account; a contact carries any number
  of tags (at most ``MAX_TAGS``). Every read and change is scoped to the actor's account (another
  account's ids: NOT_FOUND).
- Console users read with ``console.read``; changing the book and sending need ``console.send`` (owner,
  operator). Every change is audited in its own transaction (``UseCase.change``).
- Import: CSV (UTF-8 or GBK) or XLSX (first sheet) with a header line; the number column is the one
  headed 号码 / 手机号 / 手机 / number / phone / mobile (else the first); 姓名 / name is the name; 标签 /
  tags holds the contact's tags, separated by ，、;；| (tags not yet in the book are created); every
  other column is a field. Bad rows (invalid number, duplicate in the file, a tag too long or too many)
  are reported with their line and never stored; a number already in the book is updated (name,
  fields; its tags are added to the ones it has) rather than duplicated. At most ``MAX_IMPORT`` rows
  per file.
- Sending to a group or a tag is the console's send (``ConsoleSender.send``: the account's key, accept's
  rules, billing and refusals) with its numbers as ``to`` — at most ``MAX_SEND`` (one batch); larger
  ones belong in a file job (文件发送).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from qixin.domain.numberfile import table_rows
from qixin.domain.numbers import mask, parse_numbers
from qixin.errors import QxError
from qixin.services.actor import Actor, UseCase
from qixin.services.console_send import ConsoleSender
from qixin.store import addressbook as store
from qixin.store.db import Database, Tx, now_ms

MAX_IMPORT = 100_000
MAX_SEND = 100_000
NUMBER_HEADERS = ("号码", "手机号", "手机号码", "手机", "电话", "number", "phone", "mobile")
NAME_HEADERS = ("姓名", "名称", "名字", "name")
TAG_HEADERS = ("标签", "tags", "tag")
MAX_TAGS = 20
MAX_TAG_LEN = 32
TAG_SPLIT = re.compile(r"[,，、;；|]")

Contact = tuple[str, str, dict[str, str], list[str]]  # number, name, fields, tags


def split_tags(text: str) -> list[str]:
    """The tags of a 标签 cell, in order, each once (INVALID_REQUEST for one too long or too many)."""
    out: list[str] = []
    for t in TAG_SPLIT.split(text or ""):
        t = t.strip()
        if not t or t in out:
            continue
        if len(t) > MAX_TAG_LEN:
            raise QxError("INVALID_REQUEST", f"标签「{t[:MAX_TAG_LEN]}…」超过 {MAX_TAG_LEN} 个字符")
        out.append(t)
    if len(out) > MAX_TAGS:
        raise QxError("INVALID_REQUEST", f"每个联系人最多 {MAX_TAGS} 个标签")
    return out


def parse_contacts(data: bytes, filename: str = "") -> tuple[list[Contact], list[dict[str, Any]]]:
    """The rows of a contacts CSV or XLSX as (number, name, fields, tags), and the bad rows (line, value
    masked, reason)."""
    rows: list[list[str]] = []
    filled = 0
    for row in table_rows(data, filename):
        filled += any(c.strip() for c in row)
        if filled > MAX_IMPORT + 1:  # the header and MAX_IMPORT contacts
            raise QxError("TOO_MANY_NUMBERS", f"单次最多导入 {MAX_IMPORT} 个联系人")
        rows.append(row)
    while rows and not any(c.strip() for c in rows[0]):
        rows.pop(0)
    if not rows:
        raise QxError("FILE_INVALID", "文件为空")
    header = [c.strip() for c in rows[0]]
    lowered = [h.lower() for h in header]
    has_header = not any(ch.isdigit() for ch in "".join(header)) or any(h in NUMBER_HEADERS for h in lowered)
    if not has_header:
        header = ["号码"] + [f"列{i + 1}" for i in range(1, len(header))]
        lowered = [h.lower() for h in header]
        body = list(enumerate(rows, start=1))
    else:
        body = list(enumerate(rows[1:], start=2))
    number_col = next((i for i, h in enumerate(lowered) if h in NUMBER_HEADERS), 0)
    name_col = next((i for i, h in enumerate(lowered) if h in NAME_HEADERS), None)
    tag_col = next((i for i, h in enumerate(lowered) if h in TAG_HEADERS), None)
    body = [(line, r) for line, r in body if any(c.strip() for c in r)]
    if len(body) > MAX_IMPORT:
        raise QxError("TOO_MANY_NUMBERS", f"单次最多导入 {MAX_IMPORT} 个联系人")
    good: list[Contact] = []
    bad: list[dict[str, Any]] = []
    seen: set[str] = set()
    for line, r in body:
        raw = r[number_col].strip() if number_col < len(r) else ""
        parsed = parse_numbers([raw])
        if not parsed.valid:
            bad.append({"row": line, "value": mask(raw[:32]), "reason": "不是有效的手机号码" if raw else "缺少号码"})
            continue
        number = parsed.valid[0]
        if number in seen:
            bad.append({"row": line, "value": mask(number), "reason": "文件内重复"})
            continue
        try:
            tags = split_tags(r[tag_col]) if tag_col is not None and tag_col < len(r) else []
        except QxError as e:
            bad.append({"row": line, "value": mask(number), "reason": e.message})
            continue
        seen.add(number)
        name = r[name_col].strip()[:64] if name_col is not None and name_col < len(r) else ""
        fields = {
            header[i][:32] or f"列{i + 1}": v.strip()[:200]
            for i, v in enumerate(r)
            if i not in (number_col, name_col, tag_col) and i < len(header) and v.strip()
        }
        good.append((number, name, fields, tags))
    return good, bad


class AddressBook(UseCase):
    def __init__(self, db: Database, sender: ConsoleSender) -> None:
        super().__init__(db)
        self.sender = sender

    @staticmethod
    def _account(actor: Actor, change: bool) -> int:
        if not actor.is_customer:
            raise QxError("FORBIDDEN", "通讯录属于客户账户")
        if actor.role is not None:
            actor.require("console.send" if change else "console.read")
        return actor.account_for(None)

    async def groups(self, actor: Actor) -> list[dict[str, Any]]:
        account = self._account(actor, False)
        rows = await self.read(lambda tx: store.groups(tx, account))
        return [{"id": int(r[0]), "name": str(r[1]), "created_at": int(r[2]), "members": int(r[3])} for r in rows]

    async def contacts(
        self, actor: Actor, group_id: int | None = None, before_id: int | None = None, limit: int = 100,
        tag_id: int | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """One page of contacts (numbers masked), newest first, of one group and/or one tag when given;
        ``next_before_id`` continues."""
        account = self._account(actor, False)
        limit = max(1, min(int(limit), 500))

        def q(tx: Tx) -> dict[str, Any]:
            if group_id is not None and store.group(tx, account, group_id) is None:
                raise QxError("NOT_FOUND", "分组不存在")
            if tag_id is not None and store.tag(tx, account, tag_id) is None:
                raise QxError("NOT_FOUND", "标签不存在")
            rows = store.contacts_page(tx, account, group_id, before_id, limit + 1, tag_id)
            ids = [int(r[0]) for r in rows[:limit]]
            names = store.group_names_of(tx, ids)
            tags = store.tag_names_of(tx, ids)
            items = [
                {"id": int(r[0]), "number": mask(str(r[1])), "name": str(r[2]), "fields": orjson.loads(r[3]),
                 "created_at": int(r[4]), "groups": names.get(int(r[0]), []), "tags": tags.get(int(r[0]), [])}
                for r in rows[:limit]
            ]  # fmt: skip
            return {"contacts": items, "total": store.count_contacts(tx, account),
                    "next_before_id": items[-1]["id"] if len(rows) > limit else None}  # fmt: skip

        return await self.read(q)

    async def create_group(self, actor: Actor, name: str) -> dict[str, Any]:
        account = self._account(actor, True)
        name = name.strip()
        if not name or len(name) > 64:
            raise QxError("INVALID_REQUEST", "分组名称须为 1–64 个字符")

        def fn(tx: Tx) -> dict[str, Any]:
            if store.group_named(tx, account, name) is not None:
                raise QxError("CONFLICT", f"分组「{name}」已存在")
            return {"id": store.insert_group(tx, account, name, now_ms()), "name": name}

        return await self.change(actor, "contacts.group_create", f"account:{account}", fn)

    async def delete_group(self, actor: Actor, group_id: int) -> dict[str, Any]:
        account = self._account(actor, True)

        def fn(tx: Tx) -> dict[str, Any]:
            if not store.delete_group(tx, account, group_id):
                raise QxError("NOT_FOUND", "分组不存在")
            return {"id": group_id}

        return await self.change(actor, "contacts.group_delete", f"contact_group:{group_id}", fn)

    async def import_file(
        self, actor: Actor, data: bytes, filename: str = "", group_id: int | None = None
    ) -> dict[str, Any]:
        """Add or update the contacts of a CSV or XLSX file (into ``group_id`` when given):
        ``{added, updated, rejected}``."""
        account = self._account(actor, True)
        good, bad = parse_contacts(data, filename)
        return await self._save(actor, account, good, bad, group_id)

    async def add_contact(
        self, actor: Actor, number: str, name: str = "", group_id: int | None = None, tags: str = ""
    ) -> dict[str, Any]:
        """One contact (``tags``: a 标签 cell, e.g. "VIP，上海")."""
        account = self._account(actor, True)
        parsed = parse_numbers([number])
        if not parsed.valid:
            raise QxError("NUMBER_INVALID")
        contact: Contact = (parsed.valid[0], name.strip()[:64], {}, split_tags(tags))
        return await self._save(actor, account, [contact], [], group_id)

    async def _save(
        self, actor: Actor, account: int, good: list[Contact], bad: list[dict[str, Any]], group_id: int | None
    ) -> dict[str, Any]:
        def fn(tx: Tx) -> dict[str, Any]:
            if group_id is not None and store.group(tx, account, group_id) is None:
                raise QxError("NOT_FOUND", "分组不存在")
            now = now_ms()
            known = store.contact_ids(tx, account, [c[0] for c in good])
            fresh = [(n, name, orjson.dumps(f).decode()) for n, name, f, _ in good if n not in known]
            store.insert_contacts(tx, account, fresh, now)
            store.update_contacts(tx, [(known[n], name, orjson.dumps(f).decode()) for n, name, f, _ in good
                                       if n in known], now)  # fmt: skip
            ids = store.contact_ids(tx, account, [c[0] for c in good]) if fresh or group_id is not None else known
            if group_id is not None:
                store.add_members(tx, group_id, list(ids.values()))
            names = sorted({t for c in good for t in c[3]})
            created = 0
            if names:
                tag_ids = store.tag_ids(tx, account, names)
                for t in names:
                    if t not in tag_ids:
                        tag_ids[t] = store.insert_tag(tx, account, t, now)
                        created += 1
                store.add_taggings(tx, [(tag_ids[t], ids[c[0]]) for c in good for t in c[3]])
            return {"added": len(fresh), "updated": len(good) - len(fresh), "rejected": bad, "group_id": group_id,
                    "tags_created": created}  # fmt: skip

        return await self.change(actor, "contacts.import", f"account:{account}", fn,
                                 detail=lambda o: {k: o[k] for k in ("added", "updated", "group_id", "tags_created")}
                                 | {"rejected": len(o["rejected"])})  # fmt: skip

    async def set_membership(self, actor: Actor, group_id: int, contact_ids: list[int], member: bool) -> int:
        """Put contacts into a group or take them out; answers how many of them were the account's."""
        account = self._account(actor, True)

        def fn(tx: Tx) -> int:
            if store.group(tx, account, group_id) is None:
                raise QxError("NOT_FOUND", "分组不存在")
            ids = store.owned_contacts(tx, account, contact_ids)
            (store.add_members if member else store.remove_members)(tx, group_id, ids)
            return len(ids)

        action = "contacts.group_add" if member else "contacts.group_remove"
        return await self.change(actor, action, f"contact_group:{group_id}", fn)

    async def delete_contacts(self, actor: Actor, contact_ids: list[int]) -> int:
        account = self._account(actor, True)

        def fn(tx: Tx) -> int:
            ids = store.owned_contacts(tx, account, contact_ids)
            store.delete_contacts(tx, ids)
            return len(ids)

        return await self.change(actor, "contacts.delete", f"account:{account}", fn)

    async def send_to_group(self, actor: Actor, group_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """The console's send (accept's rules, billing, refusals) to every number of the group."""
        account = self._account(actor, True)

        def q(tx: Tx) -> list[str]:
            if store.group(tx, account, group_id) is None:
                raise QxError("NOT_FOUND", "分组不存在")
            return store.group_numbers(tx, account, group_id, MAX_SEND + 1)

        return await self._send(actor, await self.read(q), body, "分组")

    async def send_to_tag(self, actor: Actor, tag_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """The console's send (accept's rules, billing, refusals) to every contact with the tag."""
        account = self._account(actor, True)

        def q(tx: Tx) -> list[str]:
            if store.tag(tx, account, tag_id) is None:
                raise QxError("NOT_FOUND", "标签不存在")
            return store.tag_numbers(tx, account, tag_id, MAX_SEND + 1)

        return await self._send(actor, await self.read(q), body, "标签")

    async def _send(self, actor: Actor, numbers: list[str], body: dict[str, Any], what: str) -> dict[str, Any]:
        if not numbers:
            raise QxError("NUMBERS_EMPTY", f"该{what}没有联系人")
        if len(numbers) > MAX_SEND:
            raise QxError("TOO_MANY_NUMBERS", f"{what}超过 {MAX_SEND} 人，请用文件发送")
        return await self.sender.send(actor, {**body, "to": numbers})

    # -- tags -------------------------------------------------------------------------------------------
    async def tags(self, actor: Actor) -> list[dict[str, Any]]:
        account = self._account(actor, False)
        rows = await self.read(lambda tx: store.tags(tx, account))
        return [{"id": int(r[0]), "name": str(r[1]), "created_at": int(r[2]), "contacts": int(r[3])} for r in rows]

    async def create_tag(self, actor: Actor, name: str) -> dict[str, Any]:
        account = self._account(actor, True)
        names = split_tags(name)
        if len(names) != 1 or names[0] != name.strip():
            raise QxError("INVALID_REQUEST", f"标签名称须为 1–{MAX_TAG_LEN} 个字符，且不含 ，、;；| 等分隔符")
        tag_name = names[0]

        def fn(tx: Tx) -> dict[str, Any]:
            if store.tag_ids(tx, account, [tag_name]):
                raise QxError("CONFLICT", f"标签「{tag_name}」已存在")
            return {"id": store.insert_tag(tx, account, tag_name, now_ms()), "name": tag_name}

        return await self.change(actor, "contacts.tag_create", f"account:{account}", fn)

    async def delete_tag(self, actor: Actor, tag_id: int) -> dict[str, Any]:
        account = self._account(actor, True)

        def fn(tx: Tx) -> dict[str, Any]:
            if not store.delete_tag(tx, account, tag_id):
                raise QxError("NOT_FOUND", "标签不存在")
            return {"id": tag_id}

        return await self.change(actor, "contacts.tag_delete", f"contact_tag:{tag_id}", fn)

    async def set_tagged(self, actor: Actor, tag_id: int, contact_ids: list[int], tagged: bool) -> int:
        """Put a tag on contacts or take it off; answers how many of them were the account's."""
        account = self._account(actor, True)

        def fn(tx: Tx) -> int:
            if store.tag(tx, account, tag_id) is None:
                raise QxError("NOT_FOUND", "标签不存在")
            ids = store.owned_contacts(tx, account, contact_ids)
            if tagged:
                store.add_taggings(tx, [(tag_id, cid) for cid in ids])
            else:
                store.remove_taggings(tx, tag_id, ids)
            return len(ids)

        action = "contacts.tag_add" if tagged else "contacts.tag_remove"
        return await self.change(actor, action, f"contact_tag:{tag_id}", fn)
