"""Money rules: top-up minimums and validity, expired balance as a ledger event, refund policy (exactly
once, even when a receipt arrives twice), balance-low alerts once per crossing, price plans with effective
dates and notices, and the number-check charge policy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _billing import Bill, numbers
from typer.testing import CliRunner

from qixin.domain.calendar import add_months
from qixin.errors import QxError
from qixin.services import billing, pricing
from qixin.services.billing import expire_due, numcheck_fee, topup, update_settings
from qixin.services.receipts import Failed, record_failures
from qixin.store.db import now_ms

DAY = 86_400_000


@pytest.fixture
def bill(db_url: str) -> Iterator[Bill]:
    b = Bill(db_url)
    yield b
    b.close()


def kinds(b: Bill, account_id: int) -> list[tuple[str, int]]:
    rows = b.r(lambda tx: tx.all("SELECT kind, amount_li FROM ledger WHERE account_id = ? ORDER BY id", (account_id,)))
    return [(k, int(a)) for k, a in rows]


async def test_each_topup_extends_the_validity_of_the_whole_balance_by_a_year(bill: Bill) -> None:
    key = await bill.account(balance_li=0)
    t0 = now_ms()
    bill.w(lambda tx: topup(tx, key.account_id, 10_000, "r1"))
    first = bill.one("SELECT balance_expires_at FROM billing_accounts WHERE account_id = ?", (key.account_id,))[0]
    assert add_months(t0, 12) <= first <= add_months(now_ms(), 12)
    bill.w(lambda tx: topup(tx, key.account_id, 10_000, "r2"))
    second = bill.one("SELECT balance_expires_at FROM billing_accounts WHERE account_id = ?", (key.account_id,))[0]
    assert second == add_months(first, 12)  # one more year for everything remaining


async def test_expired_balance_is_a_ledger_event_and_stops_sending(bill: Bill) -> None:
    key = await bill.account(balance_li=5_000)
    past = now_ms() - DAY
    bill.w(lambda tx: tx.execute("UPDATE billing_accounts SET balance_expires_at = ? WHERE account_id = ?",
                                 (past, key.account_id)))  # fmt: skip
    with pytest.raises(QxError) as e:
        await bill.send(key, numbers(1))
    assert e.value.code == "BALANCE_EXPIRED"
    assert bill.w(lambda tx: expire_due(tx))["balance_li"] == 5_000
    assert bill.w(lambda tx: expire_due(tx))["balance_li"] == 0  # once
    assert kinds(bill, key.account_id)[-1] == ("expire", -5_000)
    assert bill.balance(key.account_id) == 0
    bill.w(lambda tx: topup(tx, key.account_id, 2_000, "after"))  # a new top-up starts a new validity
    assert (await bill.send(key, numbers(1)))["total_fee_li"] == 35
    assert bill.verify()["ok"]


async def test_topup_after_expiry_writes_off_the_old_balance_first(bill: Bill) -> None:
    key = await bill.account(balance_li=5_000)
    bill.w(lambda tx: tx.execute("UPDATE billing_accounts SET balance_expires_at = ? WHERE account_id = ?",
                                 (now_ms() - 1, key.account_id)))  # fmt: skip
    assert bill.w(lambda tx: topup(tx, key.account_id, 1_000, "late")) == 1_000
    assert kinds(bill, key.account_id)[-2:] == [("expire", -5_000), ("topup", 1_000)]


async def test_minimum_topups_are_off_by_default_and_never_apply_to_operator_topups(bill: Bill) -> None:
    key = await bill.account(balance_li=0)
    bill.w(lambda tx: topup(tx, key.account_id, 1, "tiny"))  # off by default
    bill.w(lambda tx: update_settings(tx, key.account_id, {"min_first_topup_li": 5_000_000, "min_topup_li": 2_000_000}))
    bill.w(lambda tx: tx.execute("UPDATE billing_accounts SET topups = 0 WHERE account_id = ?", (key.account_id,)))
    with pytest.raises(QxError) as e:
        bill.w(lambda tx: topup(tx, key.account_id, 2_000_000, "first-small"))
    assert e.value.code == "TOPUP_BELOW_MINIMUM" and e.value.detail["minimum_li"] == 5_000_000
    bill.w(lambda tx: topup(tx, key.account_id, 1_000, "op", operator=True))
    bill.w(lambda tx: topup(tx, key.account_id, 5_000_000, "first"))
    with pytest.raises(QxError):
        bill.w(lambda tx: topup(tx, key.account_id, 1_999_999, "later-small"))
    bill.w(lambda tx: topup(tx, key.account_id, 2_000_000, "later"))
    assert bill.balance(key.account_id) == 1 + 1_000 + 7_000_000
    assert bill.verify()["ok"]


def test_cli_account_create_with_a_large_balance_is_never_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from qixin.cli import app

    r = CliRunner().invoke(app, ["account", "create", "--name", "大客户", "--signature", "企信", "--balance",
                                 "500000", "--json", "--data-dir", str(tmp_path)])  # fmt: skip
    assert r.exit_code == 0, r.output
    v = CliRunner().invoke(app, ["billing", "verify", "--json", "--data-dir", str(tmp_path)])
    assert v.exit_code == 0 and '"ok": true' in v.output


async def test_failure_receipts_refund_only_when_configured_and_exactly_once(bill: Bill) -> None:
    key = await bill.account(balance_li=10_000, price_li=35)
    data = await bill.send(key, numbers(3))
    a, b, c = (int(m["id"]) for m in data["accepted"])
    bill.receipt(a, "UNDELIV", "001")  # default policy: receipts refund nothing
    assert bill.balance(key.account_id) == 10_000 - 105
    bill.w(lambda tx: billing.add_refund_rule(tx, "stat", "undeliv"))
    bill.receipt(b, "UNDELIV", "001")
    bill.receipt(b, "UNDELIV", "001", submit=False)  # the same receipt again
    bill.receipt(c, "DELIVRD", "000")
    assert bill.balance(key.account_id) == 10_000 - 70
    refunds = [k for k in kinds(bill, key.account_id) if k[0] == "refund"]
    assert refunds == [("refund", 35)]
    # a platform failure always refunds, however often it is reported
    more = await bill.send(key, numbers(1, 100))
    mid = int(more["accepted"][0]["id"])
    for _ in range(2):
        bill.w(lambda tx: record_failures(tx, [Failed(mid, "SUBMIT_REJECTED", "", now_ms())]))
    assert bill.balance(key.account_id) == 10_000 - 70
    assert bill.verify()["ok"]


async def test_refund_rules_by_error_code_and_per_account(bill: Bill) -> None:
    key = await bill.account(balance_li=10_000, price_li=35)
    other = await bill.account(balance_li=10_000, price_li=35)
    bill.w(lambda tx: billing.add_refund_rule(tx, "err", "MK:0005", key.account_id))
    with pytest.raises(QxError):
        bill.w(lambda tx: billing.add_refund_rule(tx, "stat", "DELIVRD"))
    mine = int((await bill.send(key, numbers(1)))["accepted"][0]["id"])
    theirs = int((await bill.send(other, numbers(1)))["accepted"][0]["id"])
    bill.receipt(mine, "UNDELIV", "MK:0005")
    bill.receipt(theirs, "UNDELIV", "MK:0005")
    assert bill.balance(key.account_id) == 10_000 and bill.balance(other.account_id) == 10_000 - 35


async def test_balance_low_alert_once_per_crossing(bill: Bill) -> None:
    key = await bill.account(balance_li=200, price_li=35)
    bill.w(lambda tx: update_settings(tx, key.account_id, {"low_balance_li": 100, "alert_email": "ops@example.com",
                                                           "alert_webhook": "http://127.0.0.1:9/hook",
                                                           "alert_mobile": "13800138000"}))  # fmt: skip

    def alerts() -> list[tuple[str, str]]:
        return bill.r(lambda tx: tx.all("SELECT channel, status FROM notifications WHERE account_id = ?"
                                        " AND kind = 'balance_low' ORDER BY id", (key.account_id,)))  # fmt: skip

    await bill.send(key, numbers(2))  # 130: above
    assert alerts() == []
    await bill.send(key, numbers(1))  # 95: crossed
    await bill.send(key, numbers(1))  # 60: still below, no second alert
    got = alerts()
    assert sorted(c for c, _ in got) == ["email", "record", "sms", "webhook"]
    bill.w(lambda tx: topup(tx, key.account_id, 1_000, "back"))  # back above: re-armed
    await bill.send(key, numbers(30))  # 1060 - 1050 = 10: crossed again
    assert len(alerts()) == 8


async def test_price_plans_take_effect_at_their_date_most_specific_first(bill: Bill) -> None:
    key = await bill.account(balance_li=100_000, price_li=35)
    now = now_ms()
    bill.w(lambda tx: pricing.create_plan(tx, key.account_id, "sms", 38, effective_at=now))
    bill.w(lambda tx: pricing.create_plan(tx, key.account_id, "sms", 50, msg_type="marketing", effective_at=now))
    bill.w(lambda tx: pricing.create_plan(tx, key.account_id, "sms", 30, carrier="cucc", effective_at=now))
    future = bill.w(lambda tx: pricing.create_plan(tx, key.account_id, "sms", 45, effective_at=now + 30 * DAY))
    assert future["previous_price_li"] == 38
    data = await bill.send(key, ["13800138000", "18600186000"])  # cmcc, cucc
    assert [m["fee_li"] for m in data["accepted"]] == [38, 30]
    data = await bill.send(key, ["13800138001"], type="marketing")
    assert data["total_fee_li"] == 50
    later = bill.r(lambda tx: pricing.price_at(tx, key.account_id, "sms", "cmcc", "notification", now + 31 * DAY))
    assert later == 45
    notes = bill.r(lambda tx: tx.all("SELECT subject, created_at FROM notifications WHERE account_id = ?"
                                     " AND kind = 'price_change' AND channel = 'record' ORDER BY id",
                                     (key.account_id,)))  # fmt: skip
    assert len(notes) == 4 and "0.045" in notes[-1][0]
    assert notes[-1][1] < future["effective_at"]  # announced before it takes effect
    with pytest.raises(QxError) as e:
        bill.w(lambda tx: pricing.create_plan(tx, key.account_id, "sms", 40, effective_at=now + DAY,
                                              min_notice_ms=7 * DAY))  # fmt: skip
    assert e.value.code == "PRICE_NOTICE_TOO_SHORT"
    with pytest.raises(QxError):
        bill.w(lambda tx: pricing.create_plan(tx, key.account_id, "sms", 40, effective_at=now - DAY))


def test_number_check_is_charged_per_answered_query_except_no_record_and_timeouts(bill: Bill) -> None:
    from qixin.services.accounts import create_account

    results = ["real", "empty", "no_record", "timeout", "silent", "error", "risk"]
    assert numcheck_fee(results, 10) == (4, 40)
    assert numcheck_fee([], 10) == (0, 0)
    acct = bill.w(lambda tx: create_account(tx, "检测", "企信", 1_000, 35))["account_id"]
    bill.w(lambda tx: billing.numcheck_reserve(tx, acct, "q1", len(results), 10))
    assert bill.balance(acct) == 1_000 - 70
    assert bill.w(lambda tx: billing.numcheck_settle(tx, acct, "q1", results, 10)) == 30
    assert bill.w(lambda tx: billing.numcheck_settle(tx, acct, "q1", results, 10)) == 0  # once
    assert bill.balance(acct) == 1_000 - 40
    with pytest.raises(QxError) as e:
        bill.w(lambda tx: billing.numcheck_reserve(tx, acct, "q2", 1_000, 10))
    assert e.value.code == "INSUFFICIENT_BALANCE"
    assert bill.verify()["ok"]
