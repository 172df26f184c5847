"""Batch sends that skip numbers a recent number check classed 空号 (``skip_empty``) and optionally 沉默号
(``skip_silent``): refused per number with their own code, never sent, never billed; a newer check that
classes the number otherwise, or an old check, no longer skips it; tokens are reported as the token."""

from __future__ import annotations

from typing import Any

from conftest import Running

from qixin.domain.numbercheck import Upstream
from qixin.services.accounts import create_account
from qixin.services.actor import Actor
from qixin.services.numbercheck import NumberChecks
from qixin.services.numberproviders import SimulatorProvider
from qixin.services.pricing import create_plan
from qixin.store.db import Database, now_ms
from qixin.store.migrate import migrate

DAY = 86_400_000
# the embedded simulator provider answers by the last digit: 0 empty, 1 silent, other digits real
EMPTY, SILENT, REAL = "13800000710", "13800000721", "13800000733"


async def test_skip_empty_and_silent_numbers_of_a_recent_check(running: Running) -> None:
    api = running.account(balance_li=100_000, price_li=35)
    other = running.account(name="别家")
    db = running.platform.db
    db.write_sync(lambda tx: create_plan(tx, api.account_id, "numcheck", 10))
    checked = (await api.request("POST", "/v1/numbers/check", {"numbers": [EMPTY, SILENT, REAL]})).json()
    assert [r["class"] for r in checked["results"]] == ["empty", "silent", "real"], checked

    def balance() -> int:
        return int(db.read_sync(lambda tx: tx.one("SELECT balance_li FROM accounts WHERE id = ?",
                                                  (api.account_id,)))[0])  # fmt: skip

    before = balance()
    out = (await api.send(to=[EMPTY, SILENT, REAL], content="您的订单已发货", skip_empty=True)).json()
    assert [a["to"] for a in out["accepted"]] == [SILENT, REAL]
    assert out["rejected"] == [{"to": EMPTY, "code": "NUMBER_EMPTY_SKIPPED", "message": "号码检测为空号，已按要求跳过"}]
    assert before - balance() == 2 * 35  # the skipped number is not billed

    both = (
        await api.send(to=[EMPTY, SILENT, REAL], content="您的订单已签收", skip_empty=True, skip_silent=True)
    ).json()
    assert [a["to"] for a in both["accepted"]] == [REAL]
    assert {r["to"]: r["code"] for r in both["rejected"]} == {
        EMPTY: "NUMBER_EMPTY_SKIPPED", SILENT: "NUMBER_SILENT_SKIPPED"
    }  # fmt: skip
    # the batch counts the skipped numbers as refused, and has no message for them
    report = (await api.get(f"/v1/batches/{both['batch_id']}/report")).json()
    assert (report["total"], report["accepted"], report["rejected"]) == (3, 1, 2), report
    assert [m["to"] for m in report["messages"]] == [REAL]

    # without the option every number is sent; other accounts' sends never see this account's checks
    assert (await api.send(to=[EMPTY, SILENT], content="测试一")).json()["accepted_count"] == 2
    assert (await other.send(to=[EMPTY], content="测试二", skip_empty=True)).json()["accepted_count"] == 1
    bad = (await api.send(to=[EMPTY], content="测试三", skip_empty="yes")).json()
    assert bad["code"] == "INVALID_REQUEST"

    # only skipped numbers left: nothing to send
    none = (await api.send(to=[EMPTY], content="测试四", skip_empty=True)).json()
    assert none["code"] == "NO_VALID_NUMBERS" and none["rejected"][0]["code"] == "NUMBER_EMPTY_SKIPPED"

    # a token for an empty number is skipped and reported as the token
    tk = (await api.request("POST", "/v1/tokens", {"number": EMPTY, "ttl_seconds": 600})).json()["token"]
    shown = (await api.send(to=[tk, REAL], content="测试五", skip_empty=True)).json()
    assert shown["rejected"] == [{"to": tk, "code": "NUMBER_EMPTY_SKIPPED", "message": "号码检测为空号，已按要求跳过"}]
    assert EMPTY not in str(shown)

    # a check older than QIXIN_NUMCHECK_SKIP_DAYS (30) no longer skips
    db.write_sync(lambda tx: tx.execute("UPDATE number_marks SET checked_at = ? WHERE number = ?",
                                        (now_ms() - 31 * DAY, SILENT)))  # fmt: skip
    late = (await api.send(to=[SILENT], content="测试六", skip_silent=True)).json()
    assert late["accepted_count"] == 1, late


async def test_a_newer_check_that_finds_the_number_real_clears_its_mark(running: Running) -> None:
    api = running.account()
    db = running.platform.db
    db.write_sync(lambda tx: create_plan(tx, api.account_id, "numcheck", 10))
    assert (await api.request("POST", "/v1/numbers/check", {"numbers": [EMPTY]})).json()["results"][0][
        "class"
    ] == "empty"
    assert (await api.send(to=[EMPTY], content="测试", skip_empty=True)).json()["code"] == "NO_VALID_NUMBERS"
    # a recent delivery to the number (own evidence): a new check classes it real
    now = now_ms()
    db.write_sync(
        lambda tx: tx.execute(
            "INSERT INTO messages (id, batch_id, account_id, number, carrier, type, parts, fee_li, status, channel,"
            " carrier_stat, carrier_err, created_at, submitted_at, done_at)"
            " VALUES (9000000001, 1, ?, ?, 'cmcc', 'notification', 1, 35, 'delivered', 'smpp-sim', 'DELIVRD', '',"
            " ?, ?, ?)",
            (api.account_id, EMPTY, now, now, now),
        )
    )
    again = (await api.request("POST", "/v1/numbers/check", {"numbers": [EMPTY, REAL]})).json()
    assert again["results"][0]["class"] == "real", again
    assert (await api.send(to=[EMPTY], content="测试", skip_empty=True)).json()["accepted_count"] == 1


async def test_a_large_check_replaces_its_marks_and_a_later_one_clears_them(db_url: str) -> None:
    """Beyond 100 marks the marks are bulk-written (COPY on PostgreSQL) after clearing the older ones."""
    migrate(db_url)
    db = Database(db_url)
    db.start()
    try:
        acct = int(db.write_sync(lambda tx: create_account(tx, "检测客户", "企信", 10**9, 35))["account_id"])
        db.write_sync(lambda tx: create_plan(tx, acct, "numcheck", 1))
        actor = Actor.customer(acct, "qxtest")
        numbers = [f"1390000{i:04d}" for i in range(1000)]  # no own evidence: the simulator decides
        checks = NumberChecks(db, SimulatorProvider(), max_inline=1000)
        for _ in range(2):  # the second check replaces the first one's marks (no duplicate key)
            out = await checks.check(actor, numbers)
            assert (out["counts"]["empty"], out["counts"]["silent"]) == (100, 100)
        marked = await checks.skippable(acct, numbers, ["empty", "silent"])
        assert len(marked) == 200 and marked["13900000010"] == "empty" and marked["13900000011"] == "silent"
        assert len(await checks.skippable(acct, numbers, ["empty"])) == 100

        class AllReal(SimulatorProvider):
            async def check(self, numbers: Any) -> Any:
                return {n: Upstream("all-real", "ok", "real", 0.9) for n in numbers}

        await NumberChecks(db, AllReal(), max_inline=1000).check(actor, numbers)
        assert await checks.skippable(acct, numbers, ["empty", "silent"]) == {}
    finally:
        db.close()


async def test_a_file_send_skips_them_too(running: Running) -> None:
    """POST /v1/batches (multipart) with skip_empty: every chunk's accept request carries the option."""
    from test_filejobs import upload, wait_job

    api = running.account(balance_li=100_000, price_li=35)
    running.platform.db.write_sync(lambda tx: create_plan(tx, api.account_id, "numcheck", 10))
    await api.request("POST", "/v1/numbers/check", {"numbers": [EMPTY, SILENT, REAL]})
    data = f"号码\n{EMPTY}\n{SILENT}\n{REAL}\n".encode()
    fields = {"signature": "企信", "content": "您的订单已发货", "skip_empty": "true"}
    resp = await upload(api, fields, ("list.csv", data))
    assert resp.status_code == 202, resp.text
    job = await wait_job(api, resp.json()["job_id"])
    assert (job["status"], job["accepted"], job["rejected"]) == ("done", 2, 1), job
    numbers = running.platform.db.read_sync(
        lambda tx: tx.all("SELECT number FROM messages WHERE account_id = ? ORDER BY number", (api.account_id,))
    )
    assert [str(n) for (n,) in numbers] == [SILENT, REAL]  # the empty number was never sent
    bad = await upload(api, {**fields, "skip_empty": "maybe"}, ("list.csv", data))
    assert bad.json()["code"] == "INVALID_REQUEST"
