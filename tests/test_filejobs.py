"""File jobs (services/filejobs.py): upload → preview → job → progress, over real HTTP, the CLI and restarts.

Every test uses the real accept path, the real database (SQLite, and PostgreSQL where marked) and, for
the HTTP tests, the embedded platform on loopback.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from conftest import TEST_COMPLIANCE, Api, Running, start_running
from limits.storage import MemoryStorage
from typer.testing import CliRunner

from qixin.app import Core, FileJobsRole, Runtime, build
from qixin.domain.numberfile import read_number_file
from qixin.domain.signing import signed_headers
from qixin.errors import QxError
from qixin.services.accounts import add_template, create_account, review
from qixin.services.actor import Actor
from qixin.services.compliance.store import add_blacklist, add_optouts, update_policy
from qixin.services.filejobs import FINAL, JobOptions
from qixin.settings import ComplianceSettings, Settings


def numbers(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        out.add(f"1{rng.choice('3589')}{rng.randrange(10**9):09d}")
    return sorted(out, key=lambda _: rng.random())


def xlsx(rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet()
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def multipart(fields: dict[str, str], file: tuple[str, bytes] | None) -> tuple[bytes, str]:
    boundary = "qx" + secrets.token_hex(12)
    out = b""
    for k, v in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    if file is not None:
        out += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file[0]}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + file[1]
            + b"\r\n"
        )
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


async def upload(api: Api, fields: dict[str, str], file: tuple[str, bytes] | None, path: str = "/v1/batches"):  # type: ignore[no-untyped-def]
    raw, ctype = multipart(fields, file)
    bare, _, query = path.partition("?")
    headers = signed_headers(api.app_key, api.secret, "POST", bare, raw, query=parse_qsl(query))
    headers["Content-Type"] = ctype
    return await api.http.post(path, content=raw, headers=headers)


async def wait_job(api: Api, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = (await api.get(f"/v1/batches/{job_id}")).json()
        if got["status"] in FINAL:
            return got
        assert asyncio.get_running_loop().time() < deadline, f"job not finished after {timeout}s: {got}"
        await asyncio.sleep(0.05)


def message_counts(platform: Any, account_id: int) -> dict[str, int]:
    rows = platform.db.read_sync(
        lambda tx: tx.all("SELECT number, COUNT(*) FROM messages WHERE account_id = ? GROUP BY number", (account_id,))
    )
    return {str(n): int(c) for n, c in rows}


def balance(platform: Any, account_id: int) -> int:
    return int(platform.db.read_sync(lambda tx: tx.one("SELECT balance_li FROM accounts WHERE id = ?",
                                                       (account_id,)))[0])  # fmt: skip


@pytest.fixture
async def platform(db_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    """The embedded platform with small chunks, so a 10,000-number file is several accept requests."""
    settings = Settings(
        data_dir=tmp_path, database_url=db_url, sim_receipt_delay=(0.01, 0.05), compliance=TEST_COMPLIANCE,
        simulators=("smpp",), filejob_chunk_size=2_500, filejob_poll_interval=0.2,
    )  # fmt: skip
    r, server, task = await start_running(settings)
    try:
        yield r
    finally:
        for c in r.clients:
            await c.aclose()
        server.should_exit = True
        await task
        await r.runtime.stop()


# -- the reader ---------------------------------------------------------------------------------------------


def test_reader_formats_columns_and_limits() -> None:
    f = read_number_file("13800138000\n139-0013-9000, +8613700137000；13600136000\n\n".encode(), "paste")
    assert f.numbers == ["13800138000", "139-0013-9000", "+8613700137000", "13600136000"]
    csv_text = "姓名,手机号\n张三,13800138000\n李四,\n王五,13900139000\n".encode("gb18030")
    f = read_number_file(csv_text, "a.csv", params_columns={"name": "姓名"})
    assert f.numbers == ["13800138000", "13900139000"] and f.params == [{"name": "张三"}, {"name": "王五"}]
    f = read_number_file(xlsx([[13800138000, "x"], [1.39001390e10, "y"]]), "a.xlsx")  # no header, numeric cells
    assert f.numbers == ["13800138000", "13900139000"] and f.header == []
    # the fast cell reader gives what openpyxl's own does (shared strings, numbers, booleans, gaps)
    from openpyxl import Workbook

    from qixin.domain.numberfile import _xlsx_rows

    wb = Workbook()
    ws = wb.active
    ws.append(["手机号", "姓名", "金额", "ok"])
    ws.append([13800138000, "张三", 1.5, True])
    ws.append(["13900139000", None, 2, False])
    ws["F5"] = "远处"
    ws.append([1.39001390e10, "=1+1"])
    buf = io.BytesIO()
    wb.save(buf)

    def trimmed(rows: Any) -> list[list[Any]]:
        out = []
        for r in rows:
            r = list(r)
            while r and r[-1] is None:
                r.pop()
            if r:
                out.append(r)
        return out

    assert trimmed(_xlsx_rows(buf.getvalue(), fast=True)) == trimmed(_xlsx_rows(buf.getvalue(), fast=False))
    assert trimmed(_xlsx_rows(buf.getvalue()))[3] == [None, None, None, None, None, "远处"]
    with pytest.raises(QxError) as e:
        read_number_file(b"phone,name\n13800138000,a\n", "a.csv", params_columns={"name": "nom"})
    assert e.value.code == "FILE_COLUMN_UNKNOWN"
    with pytest.raises(QxError) as e:
        read_number_file(b"13800138000\n13900139000\n13700137000\n", "a.txt", max_numbers=2)
    assert e.value.code == "FILE_TOO_MANY_NUMBERS"
    with pytest.raises(QxError) as e:
        read_number_file(b"PK\x03\x04 not really a zip", "a.xlsx")
    assert e.value.code == "FILE_INVALID"


# -- API: a 10,000-number XLSX to 100 % -----------------------------------------------------------------------


async def test_xlsx_of_ten_thousand_through_the_api_stored_and_billed_once(platform: Running) -> None:
    api = platform.account(balance_li=10_000_000, price_li=35)
    nums = numbers(10_000)
    data = xlsx([["手机号", "备注"], *[[int(n), "x"] for n in nums]])
    fields = {"signature": "企信", "content": "您的订单已发货，请注意查收。"}
    pv = await upload(api, fields, ("list.xlsx", data), "/v1/batches?preview=1")
    assert pv.status_code == 200, pv.text
    preview = pv.json()
    assert (preview["total"], preview["valid"], preview["invalid"], preview["duplicate"]) == (10_000, 10_000, 0, 0)
    assert preview["chunks"] == 4 and preview["parts"] == 1 and preview["total_fee_li"] == 10_000 * 35
    assert all("****" in x for x in preview["examples"]["valid"])
    assert message_counts(platform.platform, api.account_id) == {}  # a preview sends nothing
    assert balance(platform.platform, api.account_id) == 10_000_000

    resp = await upload(api, fields, ("list.xlsx", data))
    assert resp.status_code == 202, resp.text
    job = await wait_job(api, resp.json()["job_id"])
    assert job["status"] == "done" and job["percent"] == 100 and job["chunks_done"] == 4
    assert job["accepted"] == 10_000 and job["rejected"] == 0 and job["fee_li"] == 10_000 * 35
    counts = message_counts(platform.platform, api.account_id)
    assert len(counts) == 10_000 and set(counts.values()) == {1} and set(counts) == set(nums)
    assert balance(platform.platform, api.account_id) == 10_000_000 - 10_000 * 35
    # the chunks are ordinary batches: their reports work, and the job is listed
    report = await api.get(f"/v1/batches/{job['batch_ids'][0]}")
    assert report.status_code == 200 and report.json()["accepted"] == 2_500
    listed = (await api.get("/v1/batches")).json()["jobs"]
    assert [j["job_id"] for j in listed] == [job["job_id"]]
    # another account sees neither the job nor its batches
    other = platform.account()
    assert (await other.get(f"/v1/batches/{job['job_id']}")).status_code == 404
    assert (await other.request("POST", f"/v1/batches/{job['job_id']}/cancel")).json()["code"] == "FILE_JOB_NOT_FOUND"
    # finished: cannot be cancelled
    again = await api.request("POST", f"/v1/batches/{job['job_id']}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "FILE_JOB_FINISHED"


async def test_upload_refusals_have_stable_codes(platform: Running) -> None:
    api = platform.account()
    base = {"signature": "企信", "content": "通知内容"}
    bad = await upload(api, base, ("a.xlsx", b"PK\x03\x04garbage"))
    assert bad.status_code == 400 and bad.json()["code"] == "FILE_INVALID"
    none = await upload(api, base, None)
    assert none.json()["code"] == "FILE_INVALID"
    col = await upload(api, {**base, "number_column": "电话"}, ("a.csv", b"mobile\n13800138000\n"))
    assert col.json()["code"] == "FILE_COLUMN_UNKNOWN"
    sig = await upload(api, {**base, "signature": "没有"}, ("a.txt", b"13800138000\n"))
    assert sig.json()["code"] == "SIGNATURE_NOT_APPROVED"
    # pasted numbers as JSON work the same way
    pasted = await api.request("POST", "/v1/batches?preview=1", {**base, "numbers": "13800138000\n13800138000"})
    assert pasted.status_code == 200 and pasted.json()["duplicate"] == 1 and pasted.json()["valid"] == 1


# -- preview equals what accept does ---------------------------------------------------------------------------


async def test_preview_counts_equal_what_the_job_then_does(platform: Running) -> None:
    api = platform.account(balance_li=1_000_000, price_li=50)
    good = numbers(30, seed=7)
    opted, black = good[:4], good[4:7]
    platform.platform.db.write_sync(lambda tx: add_optouts(tx, api.account_id, opted, "test"))
    platform.platform.db.write_sync(lambda tx: add_blacklist(tx, black, "test"))
    lines = [*good, "12345", "not-a-number", "+86" + good[10], good[11], "0086 " + good[12], "1380013"]
    fields = {"signature": "企信", "type": "marketing", "content": "新品上市，全场八折。回T退订", "audience": "老客户"}
    pv = (await upload(api, fields, ("m.txt", "\n".join(lines).encode()), "/v1/batches?preview=1")).json()
    assert (pv["total"], pv["invalid"], pv["duplicate"], pv["opted_out"], pv["blacklisted"]) == (36, 3, 3, 4, 3)
    assert pv["valid"] == 30 - 4 - 3 and pv["total_fee_li"] == pv["valid"] * 50

    resp = await upload(api, fields, ("m.txt", "\n".join(lines).encode()))
    job = await wait_job(api, resp.json()["job_id"])
    assert job["status"] == "done"
    assert job["accepted"] == pv["valid"] and job["fee_li"] == pv["total_fee_li"]
    assert job["refused"] == pv["refused"] and job["rejected"] == sum(pv["refused"].values())
    assert set(message_counts(platform.platform, api.account_id)) == set(good) - set(opted) - set(black)


async def test_preview_rate_limited_equals_the_job_and_touches_no_counter(tmp_path: Path) -> None:
    """Frequency limits in a preview: the numbers it reports RATE_LIMITED (each limit with its own count:
    the account's earlier sends per template, any sender's sends per number) are those the job then
    refuses, and the preview leaves every counter as it was (it checks, it does not reserve)."""
    rules = ComplianceSettings(sending_windows=False, max_number_run=0, template_limit="2/day",
                               any_sender_limit="3/day")  # fmt: skip
    s = build(Settings(data_dir=tmp_path, compliance=rules, filejob_chunk_size=100))
    core = Runtime(s, [Core(s)])
    await core.start()
    try:
        acct = s.db.write_sync(lambda tx: create_account(tx, "客户", "企信", 10**9, 10, box=s.directory.box))
        other = s.db.write_sync(lambda tx: create_account(tx, "别家", "企信", 10**9, 10, box=s.directory.box))
        s.db.write_sync(lambda tx: update_policy(tx, other["account_id"], {"limits": {"template": "10/day"}}))
        s.compliance.invalidate()

        async def send(account: dict[str, Any], to: list[str], content: str) -> dict[str, Any]:
            opts = JobOptions(signature="企信", content=content)
            job = await s.filejobs.create(Actor.cli(), account["account_id"], "\n".join(to).encode(), "x.txt", opts)
            await s.filejobs.run(int(job["job_id"]))
            return await s.filejobs.progress(Actor.cli(), job["job_id"])

        nums = numbers(300, seed=21)
        once, twice, elsewhere = nums[:40], nums[40:70], nums[70:90]
        await send(acct, once + twice, "通知一")
        await send(acct, twice, "通知二")  # the account's free-text counter of these numbers: 2 of 2/day
        for i in range(3):  # another account: 3 of any sender's 3/day
            await send(other, elsewhere, f"别家通知{i}")
        lines = [*nums, "+86" + nums[5], nums[150], "12345"]  # repeats in later chunks, one invalid
        data = "\n".join(lines).encode()
        opts = JobOptions(signature="企信", content="通知三")
        mem = s.compliance.gate.storage
        assert isinstance(mem, MemoryStorage)
        before = (dict(mem.storage), dict(mem.expirations))
        pv = await s.filejobs.preview(Actor.cli(), acct["account_id"], data, "r.txt", opts)
        assert (dict(mem.storage), dict(mem.expirations)) == before  # no counter touched
        assert pv["refused"] == {"RATE_LIMITED": 50, "NUMBER_DUPLICATE": 2, "NUMBER_INVALID": 1}
        assert pv["valid"] == 250 and pv["chunks"] == 4
        assert pv["examples"]["RATE_LIMITED"] and all("****" in x for x in pv["examples"]["RATE_LIMITED"])
        assert pv == await s.filejobs.preview(Actor.cli(), acct["account_id"], data, "r.txt", opts)  # repeatable

        s.filejobs._parsed.clear()  # the job reads the file itself
        job = await s.filejobs.create(Actor.cli(), acct["account_id"], data, "r.txt", opts)
        await s.filejobs.run(int(job["job_id"]))
        final = await s.filejobs.progress(Actor.cli(), job["job_id"])
        assert final["status"] == "done"
        assert final["accepted"] == pv["valid"] and final["refused"] == pv["refused"]
        assert final["fee_li"] == pv["total_fee_li"]
        sent = message_counts(s, acct["account_id"])
        assert all(sent[n] == 2 for n in once) and all(sent[n] == 2 for n in twice)  # twice: refused now
        assert all(n not in sent for n in elsewhere) and sum(1 for n in nums[90:] if sent.get(n) == 1) == 210
    finally:
        await core.stop()


# -- personalised: a column per template variable ---------------------------------------------------------


async def test_personalised_batch_fills_variables_from_columns(platform: Running) -> None:
    api = platform.account(balance_li=1_000_000, allow_free_text=False)

    def setup(tx):  # type: ignore[no-untyped-def]
        tid = add_template(tx, api.account_id, "发货", "notification", "${name}您好，订单${order}已发货。",
                           {"name": "text:10", "order": "text:20"})  # fmt: skip
        review(tx, "templates", tid, True)
        return tid

    tid = platform.platform.db.write_sync(setup)
    nums = numbers(12, seed=3)
    rows = [["手机号", "姓名", "订单号"]] + [[n, f"客户{i % 4}", f"A{i:03d}"] for i, n in enumerate(nums)]
    rows.append([nums[0], "重复", "A999"])  # a repeat: not sent again, whatever its variables
    data = "\n".join(",".join(r) for r in rows).encode()
    fields = {"template_id": str(tid), "params_columns": "name=姓名,order=订单号", "signature": "企信"}
    pv = (await upload(api, fields, ("p.csv", data), "/v1/batches?preview=1")).json()
    assert pv["valid"] == 12 and pv["duplicate"] == 1
    resp = await upload(api, fields, ("p.csv", data))
    assert resp.status_code == 202, resp.text
    job = await wait_job(api, resp.json()["job_id"])
    assert job["status"] == "done" and job["accepted"] == 12
    got = platform.platform.db.read_sync(
        lambda tx: tx.all("SELECT m.number, COALESCE(m.content, b.content) FROM messages m"
                          " JOIN batches b ON b.id = m.batch_id WHERE m.account_id = ?", (api.account_id,))
    )  # fmt: skip
    texts = {str(n): str(c) for n, c in got}
    assert len(texts) == 12
    for i, n in enumerate(nums):
        assert texts[n] == f"【企信】客户{i % 4}您好，订单A{i:03d}已发货。"
    unknown = await upload(api, {**fields, "params_columns": "name=名字,order=订单号"}, ("p.csv", data))
    assert unknown.json()["code"] == "FILE_COLUMN_UNKNOWN"


# -- cancel ------------------------------------------------------------------------------------------------


async def test_cancel_stops_further_chunks(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, compliance=TEST_COMPLIANCE, filejob_chunk_size=100)
    s = build(settings)
    core = Runtime(s, [Core(s)])  # no runner role: the test runs the job itself
    await core.start()
    try:
        acct = s.db.write_sync(lambda tx: create_account(tx, "客户", "企信", 1_000_000, 10, box=s.directory.box))
        data = "\n".join(numbers(1_000, seed=5)).encode()
        opts = JobOptions(signature="企信", content="取消测试")
        job = await s.filejobs.create(Actor.cli(), acct["account_id"], data, "c.txt", opts)
        jid = int(job["job_id"])
        seen = 0
        three = asyncio.Event()
        cancelled: dict[str, Any] = {}

        def on_chunk() -> None:
            nonlocal seen
            seen += 1
            if seen == 3:
                three.set()

        async def cancel_after_three() -> None:
            await asyncio.wait_for(three.wait(), 20)
            cancelled.update(await s.filejobs.cancel(Actor.customer(acct["account_id"], acct["app_key"]), jid))

        watcher = asyncio.create_task(cancel_after_three())
        await asyncio.wait_for(s.filejobs.run(jid, on_chunk=on_chunk), 30)
        await asyncio.wait_for(watcher, 5)
        final = await s.filejobs.progress(Actor.cli(), jid)
        assert final["status"] == "cancelled" and cancelled["status"] == "cancelled"
        assert 3 <= final["chunks_done"] < 10  # the chunk in flight when it was cancelled may still commit
        assert len(message_counts(s, acct["account_id"])) == final["accepted"] == final["chunks_done"] * 100
        with pytest.raises(QxError) as e:
            await s.filejobs.cancel(Actor.cli(), jid)
        assert e.value.code == "FILE_JOB_FINISHED"
        assert not await s.filejobs.run(jid)  # a cancelled job is never run again
    finally:
        await core.stop()


async def test_cancel_between_the_requests_of_a_personalised_chunk_counts_what_went_out(tmp_path: Path) -> None:
    s = build(Settings(data_dir=tmp_path, compliance=TEST_COMPLIANCE))
    core = Runtime(s, [Core(s)])
    await core.start()
    try:
        acct = s.db.write_sync(lambda tx: create_account(tx, "客户", "企信", 1_000_000, 10, box=s.directory.box))

        def setup(tx):  # type: ignore[no-untyped-def]
            tid = add_template(tx, acct["account_id"], "t", "notification", "${name}您好", {"name": "text:10"})
            review(tx, "templates", tid, True)
            return tid

        tid = s.db.write_sync(setup)
        rows = "手机号,姓名\n" + "".join(f"{n},客户{i}\n" for i, n in enumerate(numbers(300, seed=8)))
        opts = JobOptions(signature="企信", template_id=str(tid), params_columns={"name": "姓名"})
        job = await s.filejobs.create(Actor.cli(), acct["account_id"], rows.encode(), "p.csv", opts)
        runner = asyncio.create_task(s.filejobs.run(int(job["job_id"])))  # one chunk, 300 requests
        deadline = asyncio.get_running_loop().time() + 20
        while len(message_counts(s, acct["account_id"])) < 5:
            assert asyncio.get_running_loop().time() < deadline and not runner.done()
            await asyncio.sleep(0.005)
        await s.filejobs.cancel(Actor.cli(), job["job_id"])
        await asyncio.wait_for(runner, 20)
        final = await s.filejobs.progress(Actor.cli(), job["job_id"])
        sent = len(message_counts(s, acct["account_id"]))
        assert final["status"] == "cancelled" and 5 <= sent < 300
        assert final["accepted"] == sent and final["processed"] == sent and final["fee_li"] == sent * 10
    finally:
        await core.stop()


async def test_a_chunk_the_balance_cannot_pay_fails_the_job_and_keeps_the_chunks_before(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, compliance=TEST_COMPLIANCE, filejob_chunk_size=100, filejob_max_bytes=20_000)
    s = build(settings)
    core = Runtime(s, [Core(s)])
    await core.start()
    try:
        acct = s.db.write_sync(lambda tx: create_account(tx, "客户", "企信", 250 * 10, 10, box=s.directory.box))
        opts = JobOptions(signature="企信", content="余额测试")
        big = ("\n".join(numbers(2_000, seed=2))).encode()  # 24 kB: over the 20,000-byte limit
        with pytest.raises(QxError) as e:
            await s.filejobs.preview(Actor.cli(), acct["account_id"], big, "big.txt", opts)
        assert e.value.code == "FILE_TOO_LARGE"
        data = "\n".join(numbers(1_000, seed=4)).encode()
        job = await s.filejobs.create(Actor.cli(), acct["account_id"], data, "b.txt", opts)
        assert await s.filejobs.run(int(job["job_id"]))
        final = await s.filejobs.progress(Actor.cli(), job["job_id"])
        assert final["status"] == "failed" and final["error"]["code"] == "INSUFFICIENT_BALANCE"
        assert final["chunks_done"] == 2 and final["accepted"] == 200 and final["fee_li"] == 2_000
        assert len(message_counts(s, acct["account_id"])) == 200 and balance(s, acct["account_id"]) == 500
    finally:
        await core.stop()


# -- restart mid-file ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
async def test_restart_mid_file_sends_nobody_twice_and_loses_nobody(
    db: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path / 'qixin.db'}" if db == "sqlite" else request.getfixturevalue("pg_url")
    settings = Settings(data_dir=tmp_path, database_url=url, compliance=TEST_COMPLIANCE, filejob_chunk_size=500,
                        filejob_poll_interval=0.2)  # fmt: skip
    nums = numbers(5_000, seed=11)
    data = xlsx([["mobile"], *[[n] for n in nums]])
    opts = JobOptions(signature="企信", content="重启测试")

    # first process: runs 3 chunks, then stops (its task cancelled, as a shutdown does)
    s1 = build(settings)
    first = Runtime(s1, [Core(s1)])
    await first.start()
    acct = s1.db.write_sync(lambda tx: create_account(tx, "客户", "企信", 10_000_000, 10, box=s1.directory.box))
    account_id = acct["account_id"]
    job = await s1.filejobs.create(Actor.cli(), account_id, data, "r.xlsx", opts)
    jid = int(job["job_id"])
    done = 0
    runner: asyncio.Task[bool] | None = None

    def on_chunk() -> None:
        nonlocal done
        done += 1
        if done == 3 and runner is not None:
            runner.cancel()

    runner = asyncio.create_task(s1.filejobs.run(jid, on_chunk=on_chunk))
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(runner, 30)
    mid = await s1.filejobs.progress(Actor.cli(), jid)
    assert mid["status"] == "running" and mid["chunks_done"] == 3
    # the crash window: chunk 3's accept committed, but the process died before recording the chunk
    plan = s1.filejobs._plans.get(jid)
    assert plan is None  # consumed by run(); rebuild it the way a resuming runner does
    from qixin.services.filejobs import make_plan

    plan = make_plan(read_number_file(data, "r.xlsx"), 500)
    [(suffix, chunk, _)] = plan.requests(3)
    body, raw = s1.filejobs._body(jid, suffix, opts, "企信", chunk, None)
    key = await s1.directory.key(acct["app_key"])
    assert key is not None
    await s1.accept.accept(key, body, raw)
    assert len(message_counts(s1, account_id)) == 4 * 500
    await first.stop()

    # second process over the same database: the runner role resumes the job on start
    s2 = build(settings)
    second = Runtime(s2, [Core(s2), FileJobsRole(s2)])
    await second.start()
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while (got := await s2.filejobs.progress(Actor.cli(), jid))["status"] not in FINAL:
            assert asyncio.get_running_loop().time() < deadline, got
            await asyncio.sleep(0.05)
        assert got["status"] == "done" and got["chunks_done"] == 10 and got["accepted"] == 5_000
        counts = message_counts(s2, account_id)
        assert set(counts) == set(nums) and set(counts.values()) == {1}  # every number exactly once
        assert balance(s2, account_id) == 10_000_000 - 5_000 * 10  # billed exactly once
    finally:
        await second.stop()


# -- CLI: a CSV with a progress bar ----------------------------------------------------------------------------


def test_csv_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qixin.cli import app

    monkeypatch.setenv("QIXIN_SENDING_WINDOWS", "off")
    monkeypatch.setenv("QIXIN_FILEJOB_CHUNK_SIZE", "300")
    cli = CliRunner()
    made = cli.invoke(app, ["account", "create", "--name", "客户", "--signature", "企信", "--balance", "100",
                            "--price", "0.04", "--json", "--data-dir", str(tmp_path)])  # fmt: skip
    assert made.exit_code == 0, made.output
    account_id = json.loads(made.stdout)["account_id"]
    nums = numbers(1_000, seed=9)
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("name,phone\n" + "".join(f"n{i},{n}\n" for i, n in enumerate(nums)) + "x,bad\n")
    args = ["send", "--account", str(account_id), "--file", str(csv_file), "--content", "命令行群发",
            "--data-dir", str(tmp_path)]  # fmt: skip
    pv = cli.invoke(app, [*args, "--preview", "--json"])
    assert pv.exit_code == 0, pv.output
    preview = json.loads(pv.stdout)
    assert (preview["valid"], preview["invalid"], preview["chunks"]) == (1_000, 1, 4)
    sent = cli.invoke(app, [*args, "--json"], input="y\n")
    assert sent.exit_code == 0, sent.output
    out = json.loads(sent.stdout.strip().splitlines()[-1])
    assert out["status"] == "done" and out["accepted"] == 1_000 and out["refused"] == {"NUMBER_INVALID": 1}
    assert out["fee_li"] == 1_000 * 40 and out["percent"] == 100
    bad = cli.invoke(app, ["send", "--account", str(account_id), "--file", str(csv_file), "--content", "x",
                           "--number-column", "电话", "--yes", "--data-dir", str(tmp_path)])  # fmt: skip
    assert bad.exit_code == 2 and "FILE_COLUMN_UNKNOWN" in bad.output
