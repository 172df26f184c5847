"""The console's 通讯录 (address book) over real HTTP and its use case: groups, CSV import with a bad-row
report (UTF-8 and GBK), membership, deletion, sending to a group through the console's send path, roles
and tenant isolation."""

from __future__ import annotations

import io
import re
from datetime import date
from urllib.parse import urlencode

import httpx
import pytest
from console_helpers import PASSWORD
from openpyxl import Workbook
from test_console_pages import CSRF_RE, login

from qixin.errors import QxError
from qixin.services.actor import Actor
from qixin.services.addressbook import parse_contacts
from qixin.services.queries import MessageFilter


def token(text: str) -> str:
    m = CSRF_RE.search(text)
    assert m, text[:300]
    return m[1]


async def post_pairs(http, pairs: list[tuple[str, str]]) -> httpx.Response:  # type: ignore[no-untyped-def]
    """A form POST with repeated fields (the checked boxes)."""
    return await http.post("/contacts", content=urlencode(pairs),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip


def test_parse_contacts_report() -> None:
    data = (
        "姓名,手机号,城市\n张三,13900008001,上海\n李四,abc,北京\n王五,+86 139-0000-8001,广州\n,13900008002,\n".encode()
    )
    good, bad = parse_contacts(data)
    assert good == [("13900008001", "张三", {"城市": "上海"}, []), ("13900008002", "", {}, [])]
    assert [(b["row"], b["reason"]) for b in bad] == [(3, "不是有效的手机号码"), (4, "文件内重复")]
    # no header: the first column is the number
    good, bad = parse_contacts(b"13900008003,x\n13900008004\n")
    assert [g[0] for g in good] == ["13900008003", "13900008004"] and bad == []
    good, _ = parse_contacts("号码,姓名\n13900008005,赵六\n".encode("gb18030"))
    assert good == [("13900008005", "赵六", {}, [])]
    # a 标签 column: tags split on ，、;；| (each once), not a field; a tag too long or too many is a bad row
    many = "，".join(f"t{i}" for i in range(21))
    data = f"手机号,标签,城市\n13900008011,VIP，上海、VIP; 老客户,杭州\n13900008012,{'长' * 33},\n13900008013,{many},\n"
    good, bad = parse_contacts(data.encode("gb18030"))
    assert good == [("13900008011", "", {"城市": "杭州"}, ["VIP", "上海", "老客户"])]
    assert [(b["row"], b["reason"][:2]) for b in bad] == [(3, "标签"), (4, "每个")]
    # XLSX (by its content): numbers stored as numbers, a date cell as a field
    wb = Workbook()
    ws = wb.active
    ws.append(["手机号", "姓名", "生日"])
    ws.append([13900008006, "钱七", date(1990, 5, 1)])
    ws.append(["12345", "坏号码", None])
    buf = io.BytesIO()
    wb.save(buf)
    good, bad = parse_contacts(buf.getvalue(), "book.xlsx")
    assert good == [("13900008006", "钱七", {"生日": "1990-05-01T00:00:00"}, [])] and bad[0]["row"] == 3
    with pytest.raises(QxError) as e:
        parse_contacts(b"")
    assert e.value.code == "FILE_INVALID"


async def test_contacts_page_import_group_send_and_roles(running) -> None:  # type: ignore[no-untyped-def]
    api = running.account()
    other = running.account(name="另一家")
    users = running.platform.console_users
    await users.create_user(Actor.cli(), api.account_id, "所有者", "13900004001", "owner", PASSWORD)
    await users.create_user(Actor.cli(), api.account_id, "只读", "13900004002", "viewer", PASSWORD)
    owner = await login(running, "13900004001")
    viewer = await login(running, "13900004002")
    try:
        page = await owner.get("/contacts")
        assert page.status_code == 200 and "暂无联系人" in page.text
        t = token(page.text)
        r = await owner.post("/contacts", data={"csrf": t, "action": "group_create", "name": "VIP 客户"})
        assert r.status_code == 200 and "已创建分组「VIP 客户」" in r.text
        gid = int(re.search(r'id="group-(\d+)">VIP 客户', r.text)[1])  # type: ignore[index]
        r = await owner.post("/contacts", data={"csrf": t, "action": "group_create", "name": "VIP 客户"})
        assert r.status_code == 400 and "已存在" in r.text
        # one contact first, then a CSV that updates it and adds two; a bad row and a duplicate reported
        r = await owner.post("/contacts", data={"csrf": t, "action": "add", "number": "13900008101", "name": "旧名"})
        assert "新增 1 个联系人" in r.text
        csv_text = (
            "姓名,手机号,城市\n张三,13900008101,上海\n李四,1390000,北京\n王五,13900008102,广州\n"
            "赵六,13900008103,\n张三,13900008101,\n"
        )
        files = {"file": ("vip.csv", csv_text.encode("gb18030"), "text/csv")}
        r = await owner.post("/contacts", data={"csrf": t, "action": "import", "group_id": str(gid)}, files=files)
        assert r.status_code == 200 and "新增 2 个联系人，更新 1 个，2 行无效" in r.text, r.text[:1000]
        assert "不是有效的手机号码" in r.text and "文件内重复" in r.text
        page = await owner.get(f"/contacts?group={gid}")
        assert "VIP 客户（3）" in page.text and "139****8102" in page.text and "13900008102" not in page.text
        assert "城市：上海" in page.text and "张三" in page.text and "旧名" not in page.text
        ids = [int(x) for x in re.findall(r'name="contact" value="(\d+)"', page.text)]
        assert len(ids) == 3
        # send to the group: the console's send path, one message per member
        r = await owner.post(f"/contacts?group={gid}", data={"csrf": t, "action": "send", "group_id": str(gid),
                                                             "signature": "企信", "type": "notification",
                                                             "content": "会员您好，本周六店庆"})  # fmt: skip
        assert r.status_code == 200 and "已提交 3 条" in r.text, r.text[:1000]
        await running.wait_final(3)
        found = await running.platform.message_search.search(Actor.customer(api.account_id, api.app_key),
                                                             MessageFilter(), limit=10)  # fmt: skip
        assert sorted(it["to"] for it in found["items"]) == ["13900008101", "13900008102", "13900008103"]
        # take one out of the group, delete another
        r = await post_pairs(owner, [("csrf", t), ("action", "group_remove"), ("group_id", str(gid)),
                                     ("contact", str(ids[0]))])  # fmt: skip
        assert "已移出分组 1 个联系人" in r.text
        r = await post_pairs(owner, [("csrf", t), ("action", "delete"), ("contact", str(ids[1])), ("contact", "0")])
        assert "已删除 1 个联系人" in r.text  # id 0 is nobody's
        page = await owner.get(f"/contacts?group={gid}")
        assert "VIP 客户（1）" in page.text and re.search(r'id="contacts-total">2<', page.text)
        # a viewer reads, changes nothing, sends nothing
        page = await viewer.get(f"/contacts?group={gid}")
        assert page.status_code == 200 and "导入联系人" not in page.text and "发送给分组" not in page.text
        r = await viewer.post("/contacts", data={"csrf": token(page.text), "action": "send", "group_id": str(gid),
                                                 "signature": "企信", "content": "x"})  # fmt: skip
        assert r.status_code == 403
        viewer_actor = Actor.console_user(0, api.account_id, "viewer")
        with pytest.raises(QxError) as e:
            await running.platform.addressbook.send_to_group(viewer_actor, gid, {"content": "x"})
        assert e.value.code == "FORBIDDEN"
        # another account sees no group of this one
        stranger = Actor.customer(other.account_id, other.app_key)
        with pytest.raises(QxError) as e:
            await running.platform.addressbook.contacts(stranger, gid)
        assert e.value.code == "NOT_FOUND"
        assert (await running.platform.addressbook.contacts(stranger))["total"] == 0
        assert (await owner.get("/contacts?group=999999")).status_code == 404
        # an empty group cannot be sent to
        r = await owner.post("/contacts", data={"csrf": t, "action": "group_create", "name": "空组"})
        empty = int(re.search(r'id="group-(\d+)">空组', r.text)[1])  # type: ignore[index]
        r = await owner.post("/contacts", data={"csrf": t, "action": "send", "group_id": str(empty),
                                                "signature": "企信", "content": "x"})  # fmt: skip
        assert r.status_code == 400 and "该分组没有联系人" in r.text
    finally:
        await owner.aclose()
        await viewer.aclose()


async def test_contact_tags_filter_import_send_and_roles(running) -> None:  # type: ignore[no-untyped-def]
    """标签: create, import with a 标签 column (new tags created, existing contacts' tags added to), tag and
    untag checked contacts, filter by tag (and by group and tag), send to a tag through the console's send
    path, delete a tag (contacts stay); a viewer is refused server-side; another account sees none."""
    api = running.account()
    other = running.account(name="另一家")
    users = running.platform.console_users
    await users.create_user(Actor.cli(), api.account_id, "所有者", "13900004011", "owner", PASSWORD)
    await users.create_user(Actor.cli(), api.account_id, "只读", "13900004012", "viewer", PASSWORD)
    owner = await login(running, "13900004011")
    viewer = await login(running, "13900004012")
    try:
        page = await owner.get("/contacts")
        assert page.status_code == 200 and "暂无标签" in page.text
        t = token(page.text)
        r = await owner.post("/contacts", data={"csrf": t, "action": "tag_create", "name": "VIP"})
        assert r.status_code == 200 and "已创建标签「VIP」" in r.text
        vip = int(re.search(r'id="tag-(\d+)"[^>]*>VIP（0）', r.text)[1])  # type: ignore[index]
        for bad_name in ("VIP", "a，b", "长" * 33):
            r = await owner.post("/contacts", data={"csrf": t, "action": "tag_create", "name": bad_name})
            assert r.status_code == 400, bad_name
        r = await owner.post("/contacts", data={"csrf": t, "action": "add", "number": "13900008201", "name": "甲",
                                                "tags": "老客户"})  # fmt: skip
        assert "新增 1 个联系人" in r.text
        csv_text = "手机号,姓名,标签\n13900008201,甲,VIP\n13900008202,乙,VIP、上海\n13900008203,丙,\n"
        files = {"file": ("tags.csv", csv_text.encode(), "text/csv")}
        r = await owner.post("/contacts", data={"csrf": t, "action": "import"}, files=files)
        assert r.status_code == 200 and "新增 2 个联系人，更新 1 个" in r.text, r.text[:800]
        tags = {x["name"]: x for x in await running.platform.addressbook.tags(
            Actor.console_user(0, api.account_id, "viewer"))}  # fmt: skip
        assert {k: v["contacts"] for k, v in tags.items()} == {"VIP": 2, "上海": 1, "老客户": 1}
        page = await owner.get(f"/contacts?tag={vip}")
        assert (
            page.status_code == 200 and "标签「VIP」" in page.text and re.search(r'id="contacts-total">3<', page.text)
        )
        assert "139****8201" in page.text and "139****8202" in page.text and "139****8203" not in page.text
        assert "发送给标签「VIP」（2 人）" in page.text
        # the first contact keeps 老客户 and gained VIP (an import adds tags, never drops them)
        row = re.search(r"139\*\*\*\*8201.*?</tr>", page.text, re.S)[0]  # type: ignore[index]
        assert '<span class="tag">VIP</span>' in row and '<span class="tag">老客户</span>' in row
        # tag a checked contact, untag another
        all_page = await owner.get("/contacts")
        ids = dict(re.findall(r'name="contact" value="(\d+)"></td><td>(139\*\*\*\*\d{4})', all_page.text))
        by_number = {v: int(k) for k, v in ids.items()}
        r = await post_pairs(owner, [("csrf", t), ("action", "tag_add"), ("tag_id", str(vip)),
                                     ("contact", str(by_number["139****8203"])), ("contact", "0")])  # fmt: skip
        assert "已为 1 个联系人添加标签" in r.text
        r = await post_pairs(owner, [("csrf", t), ("action", "tag_remove"), ("tag_id", str(vip)),
                                     ("contact", str(by_number["139****8201"]))])  # fmt: skip
        assert "已为 1 个联系人移除标签" in r.text
        # group × tag: the intersection
        r = await owner.post("/contacts", data={"csrf": t, "action": "group_create", "name": "华东"})
        gid = int(re.search(r'id="group-(\d+)">华东', r.text)[1])  # type: ignore[index]
        await post_pairs(owner, [("csrf", t), ("action", "group_add"), ("group_id", str(gid)),
                                 ("contact", str(by_number["139****8202"])),
                                 ("contact", str(by_number["139****8201"]))])  # fmt: skip
        page = await owner.get(f"/contacts?group={gid}&tag={vip}")
        assert "139****8202" in page.text and "139****8201" not in page.text and "139****8203" not in page.text
        # send to the tag: the console's send path, one message per tagged contact (8202, 8203)
        r = await owner.post(f"/contacts?tag={vip}", data={"csrf": t, "action": "send", "tag_id": str(vip),
                                                           "signature": "企信", "type": "notification",
                                                           "content": "会员您好，积分已到账"})  # fmt: skip
        assert r.status_code == 200 and "已提交 2 条" in r.text, r.text[:1000]
        await running.wait_final(2)
        found = await running.platform.message_search.search(Actor.customer(api.account_id, api.app_key),
                                                             MessageFilter(), limit=10)  # fmt: skip
        assert sorted(it["to"] for it in found["items"]) == ["13900008202", "13900008203"]
        # a viewer sees the tags and the filter, changes and sends nothing (refused on the server)
        page = await viewer.get(f"/contacts?tag={vip}")
        assert page.status_code == 200 and "VIP（2）" in page.text and "发送给标签" not in page.text
        vt = token(page.text)
        for data in ({"action": "tag_create", "name": "x"}, {"action": "tag_delete", "tag_id": str(vip)},
                     {"action": "send", "tag_id": str(vip), "signature": "企信", "content": "x"}):  # fmt: skip
            r = await viewer.post("/contacts", data={"csrf": vt, **data})
            assert r.status_code == 403, data
        with pytest.raises(QxError) as e:
            await running.platform.addressbook.send_to_tag(Actor.console_user(0, api.account_id, "viewer"), vip, {})
        assert e.value.code == "FORBIDDEN"
        # tenant isolation: another account's tag is NOT_FOUND, its book has no tags
        stranger = Actor.customer(other.account_id, other.app_key)
        for call in (running.platform.addressbook.contacts(stranger, None, None, 100, vip),
                     running.platform.addressbook.send_to_tag(stranger, vip, {"content": "x"}),
                     running.platform.addressbook.delete_tag(stranger, vip)):  # fmt: skip
            with pytest.raises(QxError) as e:
                await call
            assert e.value.code == "NOT_FOUND"
        assert await running.platform.addressbook.tags(stranger) == []
        assert (await owner.get("/contacts?tag=999999")).status_code == 404
        # no CSRF token: refused, nothing created
        r = await owner.post("/contacts", data={"action": "tag_create", "name": "无令牌"})
        assert r.status_code == 403 and "无令牌" not in (await owner.get("/contacts")).text
        # delete the tag: the contacts stay
        r = await owner.post("/contacts", data={"csrf": t, "action": "tag_delete", "tag_id": str(vip)})
        assert "标签已删除" in r.text and f'id="tag-{vip}"' not in r.text
        assert re.search(r'id="contacts-total">3<', r.text)
    finally:
        await owner.aclose()
        await viewer.aclose()
