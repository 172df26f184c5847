"""Export jobs (services/exports.py): POST /v1/exports and /admin/exports → progress → file, over real
HTTP on SQLite and PostgreSQL; tenant isolation; a restart resumes a CSV at its checkpoint (an XLSX
starts again) with every row exactly once; retention purges finished jobs and their files."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import httpx
import pytest
from conftest import Api, Running

from qixin.services import queries
from qixin.services.actor import Actor
from qixin.services.exports import ExportJobs
from qixin.services.queries import MessageFilter
from qixin.store.db import Tx, now_ms


async def _until_done(api: Api | httpx.AsyncClient, path: str, headers: dict[str, str] | None = None,
                      timeout: float = 30.0) -> dict[str, Any]:  # fmt: skip
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await (api.get(path) if isinstance(api, Api) else api.get(path, headers=headers))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["status"] in ("done", "failed"):
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"export still {body['status']} after {timeout}s: {body}")
        await asyncio.sleep(0.05)


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    text = data.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


async def test_customer_export_job_progress_file_and_isolation(running: Running) -> None:
    a, b = running.account(name="甲"), running.account(name="乙")
    numbers = [f"1398000{i:04d}" for i in range(30)]
    assert (await a.send(to=numbers, content="您的订单已发货")).status_code == 200
    assert (await b.send(to=["13981110000"], content="您的订单已发货")).status_code == 200

    # the worker is held: the job waits queued, its file is not ready
    await running.platform.exports.stop()
    r = await a.request("POST", "/v1/exports", {"format": "csv", "type": "notification"})
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["status"] == "queued" and job["numbers_masked"] is False
    r = await a.get(f"/v1/exports/{job['id']}/file")
    assert r.status_code == 409 and r.json()["code"] == "EXPORT_NOT_READY"
    # another account sees nothing of it
    for path in (f"/v1/exports/{job['id']}", f"/v1/exports/{job['id']}/file"):
        r = await b.get(path)
        assert r.status_code == 404 and r.json()["code"] == "EXPORT_JOB_NOT_FOUND", path
    assert (await b.get("/v1/exports")).json()["items"] == []
    # bad input: stable codes, nothing created
    bad = (({"format": "pdf"}, "INVALID_REQUEST"), ({"type": "bogus"}, "TYPE_INVALID"),
           ({"account_id": b.account_id}, "INVALID_REQUEST"), ({"number": "12"}, "NUMBER_INVALID"))  # fmt: skip
    for body, code in bad:
        r = await a.request("POST", "/v1/exports", body)
        assert r.status_code == 400 and r.json()["code"] == code, (body, r.text)
    assert len((await a.get("/v1/exports")).json()["items"]) == 1

    await running.platform.exports.start()
    done = await _until_done(a, f"/v1/exports/{job['id']}")
    assert done["status"] == "done" and done["rows_written"] == 30 and done["total_estimate"] == 30
    assert done["percent"] == 100.0 and done["size"] > 0
    r = await a.get(f"/v1/exports/{job['id']}/file")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = _csv_rows(r.content)
    assert sorted(x["to"] for x in rows) == sorted(numbers)  # its own numbers, unmasked, nobody else's
    assert {x["account_id"] for x in rows} == {str(a.account_id)}
    r = await b.get(f"/v1/exports/{job['id']}/file")
    assert r.status_code == 404
    audit = await running.platform.db.read(
        lambda tx: tx.all("SELECT actor_type FROM audit_log WHERE action = 'export.create'")
    )
    assert [x[0] for x in audit] == ["customer"]


async def test_staff_export_jobs_mask_by_role_and_stay_on_the_staff_side(running: Running) -> None:
    a = running.account(name="甲")
    assert (await a.send(to=["13982220000", "13982220001"], content="您的订单已发货")).status_code == 200
    admin = await running.platform.staff_users.create(Actor.cli(), "adm-exp", "admin")
    ops = await running.platform.staff_users.create(Actor.cli(), "ops-exp", "ops")
    h_admin = {"Authorization": f"Bearer {admin['token']}"}
    h_ops = {"Authorization": f"Bearer {ops['token']}"}
    async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        r = await http.post("/admin/exports", json={"account_id": a.account_id, "format": "xlsx"}, headers=h_admin)
        assert r.status_code == 200, r.text
        full = r.json()
        assert full["numbers_masked"] is False
        r = await http.post("/admin/exports", json={"account_id": a.account_id}, headers=h_ops)
        masked = r.json()
        assert masked["numbers_masked"] is True
        done = await _until_done(http, f"/admin/exports/{masked['id']}", h_ops)
        r = await http.get(f"/admin/exports/{masked['id']}/file", headers=h_ops)
        assert r.status_code == 200
        assert sorted(x["to"] for x in _csv_rows(r.content)) == ["139****0000", "139****0001"]
        assert done["rows_written"] == 2
        # ops may not read numbers: the admin's unmasked export does not exist for them
        r = await http.get(f"/admin/exports/{full['id']}", headers=h_ops)
        assert r.status_code == 404 and r.json()["code"] == "EXPORT_JOB_NOT_FOUND"
        assert [j["id"] for j in (await http.get("/admin/exports", headers=h_ops)).json()["items"]] == [masked["id"]]
        await _until_done(http, f"/admin/exports/{full['id']}", h_admin)
        r = await http.get(f"/admin/exports/{full['id']}/file", headers=h_admin)
        assert r.status_code == 200 and "spreadsheetml" in r.headers["content-type"]
        from openpyxl import load_workbook

        ws = load_workbook(io.BytesIO(r.content), read_only=True).active
        assert ws is not None
        got = list(ws.iter_rows(values_only=True))
        assert len(got) == 3 and {str(x[3]) for x in got[1:]} == {"13982220000", "13982220001"}
        # staff jobs are not the customer's, and the customer's are not staff's
        r = await a.get(f"/v1/exports/{full['id']}")
        assert r.status_code == 404
        cust = (await a.request("POST", "/v1/exports", {})).json()
        r = await http.get(f"/admin/exports/{cust['id']}", headers=h_admin)
        assert r.status_code == 404
        r = await http.post("/admin/exports", json={}, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_a_restart_resumes_the_csv_and_restarts_the_xlsx_every_row_once(
    running: Running, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setattr(queries, "EXPORT_PAGE", 10)  # pages of 10 rows: checkpoints inside the file
    a = running.account(name="甲")
    numbers = [f"1398333{i:04d}" for i in range(55)]
    assert (await a.send(to=numbers, content="您的订单已发货")).status_code == 200
    platform = running.platform
    await platform.exports.stop()
    actor = Actor.customer(a.account_id, a.app_key)
    # the first "process" stops after 20 rows (as a crash: its lease stays until it runs out)
    first = ExportJobs(platform.db, platform.message_search, platform.exports.data_dir, checkpoint_rows=10)
    first.stop_after_rows = 20
    job = await first.create(actor, MessageFilter(), fmt)
    assert await first.run_pending() == 0
    mid = await first.progress(actor, job["id"])
    assert mid["status"] == "running" and mid["rows_written"] == 20 and mid["total_estimate"] == 55
    second = ExportJobs(platform.db, platform.message_search, platform.exports.data_dir, checkpoint_rows=10)
    assert await second.run_pending() == 0  # the lease is still the first runner's
    await platform.db.write(lambda tx: tx.execute("UPDATE export_jobs SET lease_until = 0"))  # the lease ran out
    assert await second.run_pending() == 1
    done = await second.progress(actor, job["id"])
    assert done["status"] == "done" and done["rows_written"] == 55
    path, _, _ = await second.file(actor, job["id"])
    if fmt == "csv":
        got = [x["to"] for x in _csv_rows(path.read_bytes())]
    else:
        from openpyxl import load_workbook

        ws = load_workbook(path, read_only=True).active
        assert ws is not None
        got = [str(r[3]) for r in list(ws.iter_rows(values_only=True))[1:]]
    assert len(got) == 55 and sorted(got) == sorted(numbers)  # nobody twice, nobody lost


async def test_retention_purges_finished_export_jobs_and_their_files(running: Running) -> None:
    a = running.account(name="甲")
    assert (await a.send(to=["13984440000"], content="您的订单已发货")).status_code == 200
    job = (await a.request("POST", "/v1/exports", {})).json()
    await _until_done(a, f"/v1/exports/{job['id']}")
    path, _, _ = await running.platform.exports.file(Actor.customer(a.account_id, a.app_key), job["id"])
    assert path.exists()
    keep = running.platform.retention.export_keep_days
    out = await running.platform.retention.purge(Actor.cli())
    assert out["purged"]["export_jobs"] == 0 and path.exists()  # finished just now: kept

    def age(tx: Tx) -> None:
        tx.execute("UPDATE export_jobs SET finished_at = ?", (now_ms() - (keep + 1) * 86_400_000,))

    await running.platform.db.write(age)
    assert (await running.platform.retention.purge(Actor.cli(), dry_run=True))["purged"]["export_jobs"] == 1
    out = await running.platform.retention.purge(Actor.cli())
    assert out["purged"]["export_jobs"] == 1 and not path.exists()
    r = await a.get(f"/v1/exports/{job['id']}")
    assert r.status_code == 404


def test_cli_exports_create_runs_the_job_and_lists_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    from pathlib import Path

    from typer.testing import CliRunner

    from qixin.cli import app

    runner = CliRunner(env={"COLUMNS": "200"})
    d = str(tmp_path)
    assert runner.invoke(app, ["migrate", "--data-dir", d]).exit_code == 0
    out = runner.invoke(app, ["exports", "create", "--status", "delivered", "--data-dir", d])
    assert out.exit_code == 0, out.output
    job = json.loads(out.output)
    assert job["status"] == "done" and job["rows_written"] == 0 and job["numbers_masked"] is False
    assert Path(job["path"]).read_bytes().startswith("\ufeffid,".encode())
    listed = runner.invoke(app, ["exports", "list", "--data-dir", d])
    assert [j["id"] for j in json.loads(listed.output)["items"]] == [job["id"]]
    bad = runner.invoke(app, ["exports", "create", "--format", "pdf", "--data-dir", d])
    assert bad.exit_code == 2 and "INVALID_REQUEST" in bad.output


async def test_csv_pages_are_the_items_written_cell_by_cell(running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """The export's page encoder (domain/export.csv_rows over store/exports.export_rows) against the rule it
    stands for: each item of ``MessageSearch.pages`` written cell by cell through ``safe_cell``. Pages of 7
    rows, so some pages hold a risky cell (written again cell by cell) and some none (the fast path); failed
    messages (their reason), masked numbers, quotes, commas and line breaks, empty and NULL cells."""
    from qixin.domain.export import safe_cell

    monkeypatch.setattr(queries, "EXPORT_PAGE", 7)
    a = running.account(name="甲")
    numbers = [f"1398555{i:04d}" for i in range(40)]
    assert (await a.send(to=numbers, content="您的订单已发货")).status_code == 200
    await running.wait_final(40)  # then nothing moves them while the two encodings read
    platform = running.platform
    channel = (await platform.db.read(lambda tx: tx.one("SELECT name FROM channels ORDER BY name")))[0]
    odd = ["=cmd|' /C calc'!A0", "+1", "-2+3", "@A1", "\t=1", "\r=1", '"=quoted"', "a,b", 'say "hi"', "two\nlines",
           "x\r\ny", "", None, "普通", "-"]  # fmt: skip

    def vary(tx: Tx) -> None:
        ids = [int(r[0]) for r in tx.all("SELECT id FROM messages WHERE account_id = ? ORDER BY id", (a.account_id,))]
        for i, mid in enumerate(ids):
            if i < 14:  # the newest 26 rows (the last pages) keep nothing risky
                tx.execute("UPDATE messages SET out_id = ? WHERE id = ?", (odd[i % len(odd)], mid))
            if i % 3 == 0:
                status, stat = ("undelivered", "MK:0001") if i % 2 else ("failed", None)
                tx.execute(
                    "UPDATE messages SET status = ?, carrier_stat = ?, carrier_err = ?, channel = ? WHERE id = ?",
                    (status, stat, "-1" if i == 9 else "", channel if i % 4 else None, mid),
                )
            if i == 30:
                tx.execute("UPDATE messages SET status = 'expired', error_code = 'RECEIPT_TIMEOUT' WHERE id = ?",
                           (mid,))  # fmt: skip

    await platform.db.write(vary)
    search = platform.message_search
    for reveal in (True, False):
        where = {"account_id": a.account_id}
        ref = io.StringIO()
        w = csv.writer(ref, lineterminator="\r\n")
        w.writerow(queries.EXPORT_COLUMNS)
        async for page in search.pages(where, reveal):
            for it in page:
                w.writerow([safe_cell(it.get(c)) for c in queries.EXPORT_COLUMNS])
        expected = ("\ufeff" + ref.getvalue()).encode()
        got = [queries.csv_header(queries.EXPORT_COLUMNS)]
        async for data, _n, _last in search.csv_pages(where, reveal):
            got.append(data)
        assert b"".join(got) == expected, reveal
        assert b"'=cmd" in expected and (b"138****" in expected) is False
        assert (b"139****" in expected) is not reveal


@pytest.mark.parametrize(
    "value", ["=1", "+1", "-1", "@A1", "\t=1", "\r=1", "=a,b", '=say "hi"', "=two\nlines", "-", "a-b", "x\r\ny", -5]
)
@pytest.mark.parametrize("column", [3, 10, 14, 20])  # to, carrier_stat, out_id, done_at (the first and last text)
def test_csv_rows_escape_each_risky_cell_alone(value: Any, column: int) -> None:
    """One risky (or harmless) cell in a page of plain rows, at the start, inside or at the end of a line,
    quoted or not: the page is the rows written cell by cell through ``safe_cell``."""
    from qixin.domain.export import csv_rows, safe_cell

    plain = [1, 2, 3, "13800138000", "cmcc", "北京", "notification", 1, 35, "delivered", "DELIVRD", "000", None,
             None, "o", "smpp-sim", "企信", None, 4, 5, None]  # fmt: skip
    rows = [tuple(plain) for _ in range(3)]
    odd = list(plain)
    odd[column] = value
    rows.insert(1, tuple(odd))
    ref = io.StringIO()
    csv.writer(ref, lineterminator="\r\n").writerows([safe_cell(v) for v in r] for r in rows)
    assert csv_rows(rows, True) == ref.getvalue().encode()
