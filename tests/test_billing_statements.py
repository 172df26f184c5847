"""Monthly statements: totals equal the ledger; CSV and XLSX; emailed over SMTP to a local aiosmtpd server
with the XLSX attached and readable; the dispute window of 3 working days."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

import openpyxl
import pytest
from _billing import Bill, numbers
from conftest import MailInbox as Inbox

from qixin.domain.calendar import SHANGHAI, dispute_deadline, period_bounds, period_of
from qixin.domain.money import li_to_yuan
from qixin.errors import QxError
from qixin.services import statements
from qixin.services.billing import grant_package, topup, update_settings
from qixin.services.notify import Smtp
from qixin.services.receipts import Failed, record_failures
from qixin.store.db import now_ms


@pytest.fixture
def bill(db_url: str) -> Iterator[Bill]:
    b = Bill(db_url)
    yield b
    b.close()


@pytest.fixture
def smtp(mail_sink: tuple[int, Inbox]) -> tuple[Smtp, Inbox]:
    port, box = mail_sink
    return Smtp(host="127.0.0.1", port=port, sender="billing@qixin.test"), box


def ms(y: int, mo: int, d: int, h: int = 0) -> int:
    return int(datetime(y, mo, d, h, tzinfo=SHANGHAI).timestamp() * 1000)


async def month_of_activity(bill: Bill) -> tuple[int, str, int]:
    key = await bill.account(balance_li=10_000, price_li=35)
    acct = key.account_id
    bill.w(lambda tx: topup(tx, acct, 5_000, "r-2"))
    bill.w(lambda tx: grant_package(tx, acct, "term", 3, "p1"))
    await bill.send(key, numbers(5))  # 3 from the package, 2 × 35
    data = await bill.send(key, ["18600186000", "13300133000"], content="长" * 70, type="marketing")  # 2 × 2 × 35
    failed = int(data["accepted"][0]["id"])
    bill.w(lambda tx: record_failures(tx, [Failed(failed, "SUBMIT_REJECTED", "", now_ms())]))
    period = period_of(now_ms())
    _, end = period_bounds(period)
    return acct, period, end


async def test_statement_totals_equal_the_ledger(bill: Bill) -> None:
    acct, period, end = await month_of_activity(bill)
    with pytest.raises(QxError) as e:
        bill.w(lambda tx: statements.issue(tx, acct, period))  # the month has not ended
    assert e.value.code == "STATEMENT_NOT_READY"
    sid = bill.w(lambda tx: statements.issue(tx, acct, period, now=end))
    assert bill.w(lambda tx: statements.issue(tx, acct, period, now=end)) == sid  # once per month
    s = bill.r(lambda tx: statements.get(tx, sid))
    ledger = bill.r(lambda tx: tx.all("SELECT kind, amount_li FROM ledger WHERE account_id = ?", (acct,)))
    by_kind: dict[str, int] = {}
    for k, a in ledger:
        by_kind[k] = by_kind.get(k, 0) + int(a)
    assert s["opening_li"] == 0
    assert s["topups_li"] == by_kind["topup"] == 15_000
    assert s["charges_li"] == by_kind["charge"] == -(2 * 35 + 2 * 2 * 35)
    assert s["refunds_li"] == by_kind["refund"] == 70
    assert s["closing_li"] == sum(by_kind.values()) == bill.balance(acct)
    assert (
        s["opening_li"] + s["topups_li"] + s["charges_li"] + s["refunds_li"] + s["expired_li"] + s["other_li"]
        == (s["closing_li"])
    )
    assert s["messages"] == 7 and s["parts"] == 5 + 4 and s["package_used"] == 3
    sms = {(r["type"], r["carrier"]): r for r in s["detail"]["sms"]}
    assert sum(r["amount_li"] for r in sms.values()) == -s["charges_li"]
    assert sms[("marketing", "cucc")]["refunded"] == 1
    # CSV: UTF-8 with BOM, the summary first
    rows = list(csv.reader(io.StringIO(statements.to_csv(s).decode("utf-8-sig"))))
    assert rows[0] == ["对账单"] and ["期末余额（元）", li_to_yuan(s["closing_li"])] in rows


async def test_statement_is_emailed_with_a_readable_xlsx(bill: Bill, smtp: tuple[Smtp, Inbox]) -> None:
    server, inbox = smtp
    acct, period, end = await month_of_activity(bill)
    bill.w(lambda tx: update_settings(tx, acct, {"billing_email": "finance@customer.example"}))
    sid = bill.w(lambda tx: statements.issue(tx, acct, period, now=end))
    assert await statements.email_statement(bill.db, server, sid)
    assert len(inbox.messages) == 1
    rcpt, msg = inbox.messages[0]
    assert rcpt == ["finance@customer.example"] and period in msg["Subject"]
    files = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}
    assert set(files) == {f"statement-{acct}-{period}.csv", f"statement-{acct}-{period}.xlsx"}
    wb = openpyxl.load_workbook(io.BytesIO(files[f"statement-{acct}-{period}.xlsx"]))
    summary = {r[0]: r[1] for r in wb["对账单"].iter_rows(values_only=True)}
    s = bill.r(lambda tx: statements.get(tx, sid))
    assert summary["账期"] == period and summary["期末余额（元）"] == li_to_yuan(s["closing_li"])
    assert summary["短信条数"] == 7
    detail = list(wb["短信明细"].iter_rows(values_only=True))
    assert detail[0][0] == "类型" and len(detail) == 1 + len(s["detail"]["sms"])
    assert s["emailed_at"] is not None and s["email_error"] is None
    # no address: recorded as an error, nothing sent
    bill.w(lambda tx: update_settings(tx, acct, {"billing_email": None}))
    assert not await statements.email_statement(bill.db, server, sid)
    assert bill.r(lambda tx: statements.get(tx, sid))["email_error"]
    assert len(inbox.messages) == 1


def test_dispute_window_is_three_working_days() -> None:
    friday = ms(2025, 1, 3, 10)
    assert dispute_deadline(friday) == ms(2025, 1, 9)  # Mon, Tue, Wed → ends Thursday 00:00
    assert dispute_deadline(friday, ["2025-01-06"]) == ms(2025, 1, 10)
    assert dispute_deadline(ms(2025, 1, 6, 23)) == ms(2025, 1, 10)  # Monday: Tue, Wed, Thu


async def test_dispute_with_reason_inside_the_window_else_confirmed(bill: Bill) -> None:
    acct, period, end = await month_of_activity(bill)
    other = (await bill.account()).account_id
    sid = bill.w(lambda tx: statements.issue(tx, acct, period, now=end))
    sid2 = bill.w(lambda tx: statements.issue(tx, other, period, now=end))
    s = bill.r(lambda tx: statements.get(tx, sid))
    with pytest.raises(QxError) as e:
        bill.w(lambda tx: statements.dispute(tx, other, sid, "不是我的"))  # another account's statement
    assert e.value.code == "NOT_FOUND"
    late = s["dispute_deadline_at"]
    with pytest.raises(QxError) as e:
        bill.w(lambda tx: statements.dispute(tx, acct, sid, "条数不符", now=late))
    assert e.value.code == "STATEMENT_NOT_DISPUTABLE"
    out = bill.w(lambda tx: statements.dispute(tx, acct, sid, "营销短信条数不符", now=late - 1))
    assert out["status"] == "disputed" and out["dispute_reason"] == "营销短信条数不符"
    assert bill.w(lambda tx: statements.close_windows(tx, late)) == 1  # the other one, undisputed
    assert bill.r(lambda tx: statements.get(tx, sid2))["status"] == "confirmed"
    assert bill.r(lambda tx: statements.get(tx, sid))["status"] == "disputed"


async def test_monthly_statements_are_issued_on_the_first_for_every_account(bill: Bill) -> None:
    acct, _period, end = await month_of_activity(bill)
    issued = bill.w(lambda tx: statements.issue_due(tx, end + 3_600_000))
    assert len(issued) == 1
    assert bill.w(lambda tx: statements.issue_due(tx, end + 7_200_000)) == []
    assert bill.r(lambda tx: statements.get(tx, issued[0]))["account_id"] == acct


def test_statement_cells_are_escaped_but_amounts_stay_numbers() -> None:
    from qixin.services.statements import _cells

    rows = _cells([("=cmd|' /C calc'!A0", "-1.500", "0.035", 3, "@SUM(A1)", "退款")])
    assert rows == [["'=cmd|' /C calc'!A0", "-1.500", "0.035", 3, "'@SUM(A1)", "退款"]]
