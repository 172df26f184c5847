"""The console's 文件发送 page over real HTTP (no browser): role refusal, CSRF, upload → preview → confirm →
job page polled to done, messages stored."""

from __future__ import annotations

import asyncio
import html
import re

import pytest
from console_helpers import PASSWORD
from test_console_pages import CSRF_RE, login

from qixin.errors import QxError
from qixin.services.accounts import add_template, review
from qixin.services.actor import Actor
from qixin.services.filejobs import JobOptions

HIDDEN_RE = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def cell(page: str, id_: str) -> str:
    m = re.search(rf'id="{id_}">([^<]*)<', page)
    assert m, (id_, page[:2000])
    return m[1].strip()


async def test_file_send_page(running) -> None:  # type: ignore[no-untyped-def]
    api = running.account()
    users = running.platform.console_users
    await users.create_user(Actor.cli(), api.account_id, "操作员", "13900003001", "operator", PASSWORD)
    await users.create_user(Actor.cli(), api.account_id, "只读", "13900003002", "viewer", PASSWORD)
    operator = await login(running, "13900003001")
    viewer = await login(running, "13900003002")
    csv = "手机号\n13900010001\n13900010002\n13900010003\n13900010002\n12345\n".encode()
    fields = {"action": "preview", "content": "文件发送测试", "signature": "企信", "type": "notification"}
    upload = {"file": ("numbers.csv", csv, "text/csv")}
    try:
        # a viewer may not send: the page and the POST are refused by the server
        r = await viewer.get("/send/file")
        assert r.status_code == 403 and "无权访问" in r.text
        token = CSRF_RE.search((await viewer.get("/records")).text)[1]
        r = await viewer.post("/send/file", data={"csrf": token, **fields}, files=upload)
        assert r.status_code == 403
        assert "/send/file" not in (await viewer.get("/records")).text  # no nav entry either
        # the operator: the nav entry is enabled, the form renders
        page = await operator.get("/send/file")
        assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
        assert 'href="/send/file"' in page.text
        token = CSRF_RE.search(page.text)[1]
        # without the CSRF token: refused, no job
        r = await operator.post("/send/file", data=fields, files=upload)
        assert r.status_code == 403 and "CSRF" in r.text
        r = await operator.post("/send/file", data={**fields, "action": "confirm"}, files=upload)
        assert r.status_code == 403
        assert await running.platform.filejobs.listing(Actor.cli(), api.account_id) == []
        # preview: 3 valid, 1 duplicate, 1 invalid; nothing stored yet
        r = await operator.post("/send/file", data={"csrf": token, **fields}, files=upload)
        assert r.status_code == 200, r.text[:2000]
        assert "确认发送" in r.text
        assert (cell(r.text, "pv-valid"), cell(r.text, "pv-duplicate"), cell(r.text, "pv-invalid")) == ("3", "1", "1")
        assert cell(r.text, "pv-fee") == "0.105 元"  # 3 × 35 厘
        assert "13900010001" not in r.text  # examples are masked
        assert await running.platform.filejobs.listing(Actor.cli(), api.account_id) == []
        # confirm: the job is created from the file the preview page carried back
        hidden = {k: html.unescape(v) for k, v in HIDDEN_RE.findall(r.text.split('value="confirm"')[1])}
        hidden["csrf"] = token
        hidden["action"] = "confirm"
        assert hidden["content"] == "文件发送测试" and hidden["file_data"]
        r = await operator.post("/send/file", data=hidden)
        assert r.status_code == 303, r.text[:2000]
        job_url = r.headers["location"]
        assert re.fullmatch(r"/send/file/jobs/\d+", job_url)
        page = await operator.get(job_url)
        assert (
            page.status_code == 200
            and 'id="job-progress"' in page.text
            and ("hx-trigger" in page.text or 'data-status="done"' in page.text)
        )
        # the page's htmx fragment, polled until the job is final (bounded)
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            frag = await operator.get(job_url + "/progress")
            assert frag.status_code == 200
            if 'data-status="done"' in frag.text:
                break
            assert 'data-status="running"' in frag.text, frag.text
            assert asyncio.get_running_loop().time() < deadline, frag.text
            await asyncio.sleep(0.1)
        assert "hx-trigger" not in frag.text  # polling stops once final
        assert cell(frag.text, "job-percent") == "100%"
        assert (cell(frag.text, "job-accepted"), cell(frag.text, "job-rejected")) == ("3", "2")
        assert "号码重复" in frag.text and "号码格式错误" in frag.text
        await running.wait_final(3)
        jobs = await running.platform.filejobs.listing(Actor.cli(), api.account_id)
        assert len(jobs) == 1 and jobs[0]["accepted"] == 3 and jobs[0]["batch_ids"]
        report = await running.platform.message_search.batch_report(Actor.cli(), jobs[0]["batch_ids"][0],
                                                                     api.account_id)  # fmt: skip
        assert sorted(m["to"] for m in report["messages"]) == ["13900010001", "13900010002", "13900010003"]
        # the viewer cannot see the job page; cancelling a finished job is refused with a message
        assert (await viewer.get(job_url)).status_code == 403
        r = await operator.post(job_url + "/cancel", data={"csrf": token})
        assert r.status_code == 400 and "已结束" in r.text
        r = await operator.post(job_url + "/cancel", data={})
        assert r.status_code == 403
        assert "numbers.csv" in (await operator.get("/send/file")).text  # recent jobs
    finally:
        await operator.aclose()
        await viewer.aclose()


async def test_file_send_template_columns_and_use_case_refusal(running) -> None:  # type: ignore[no-untyped-def]
    api = running.account(allow_free_text=False)

    def setup(tx):  # type: ignore[no-untyped-def]
        tid = add_template(tx, api.account_id, "发货", "notification", "${name}您好，订单${order}已发货。",
                           {"name": "text:10", "order": "text:20"})  # fmt: skip
        review(tx, "templates", tid, True)
        return tid

    tid = running.platform.db.write_sync(setup)
    users = running.platform.console_users
    await users.create_user(Actor.cli(), api.account_id, "所有者", "13900003011", "owner", PASSWORD)
    viewer = await users.create_user(Actor.cli(), api.account_id, "只读", "13900003012", "viewer", PASSWORD)
    # the use case refuses a console user whose role may not send, whatever the entry point
    as_viewer = Actor.console_user(int(viewer["user_id"]), api.account_id, "viewer")
    with pytest.raises(QxError) as e:
        await running.platform.filejobs.preview(as_viewer, None, b"13900010001\n", "a.txt", JobOptions(content="x"))
    assert e.value.code == "FORBIDDEN"
    http = await login(running, "13900003011")
    try:
        page = await http.get("/send/file")
        assert f'value="{tid}"' in page.text  # the approved template is offered
        token = CSRF_RE.search(page.text)[1]
        csv = "手机号,姓名,订单号\n13900011001,张三,A001\n13900011002,李四,A002\n".encode()
        fields = {"csrf": token, "action": "preview", "template_id": str(tid), "signature": "企信",
                  "params_columns": "name=姓名\norder=订单号"}  # fmt: skip
        r = await http.post("/send/file", data=fields, files={"file": ("p.csv", csv, "text/csv")})
        assert r.status_code == 200, r.text[:2000]
        assert cell(r.text, "pv-valid") == "2" and "张三您好，订单A001已发货。" in r.text
        # a column that is not in the file: the use case's refusal, shown on the form
        r = await http.post("/send/file", data={**fields, "params_columns": "name=名字\norder=订单号"},
                            files={"file": ("p.csv", csv, "text/csv")})  # fmt: skip
        assert r.status_code == 400 and 'class="error"' in r.text
        # free text is not allowed for this account: refused at preview with the catalogue's message
        r = await http.post("/send/file", data={"csrf": token, "action": "preview", "content": "自由文本"},
                            files={"file": ("p.csv", csv, "text/csv")})  # fmt: skip
        assert r.status_code == 400 and 'class="error"' in r.text
        assert await running.platform.filejobs.listing(Actor.cli(), api.account_id) == []
    finally:
        await http.aclose()
