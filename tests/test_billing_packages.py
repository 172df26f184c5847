"""Packages (条数包): consumed before money, oldest expiry first; calendar-year packages cleared at 00:00 on
1 January Asia/Shanghai; expiry and use are package-ledger entries; refunds give parts back once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from _billing import Bill, numbers

from qixin.domain.calendar import SHANGHAI, add_months, local
from qixin.errors import QxError
from qixin.services.accounts import create_account
from qixin.services.billing import expire_due, grant_package
from qixin.services.receipts import Failed, record_failures
from qixin.store.db import now_ms


@pytest.fixture
def bill(db_url: str) -> Iterator[Bill]:
    b = Bill(db_url)
    yield b
    b.close()


def entries(b: Bill, package_id: int) -> list[tuple[str, int, int]]:
    return b.r(
        lambda tx: [
            (k, int(p), int(a))
            for k, p, a in tx.all(
                "SELECT kind, parts, remaining_after FROM package_ledger WHERE package_id = ? ORDER BY id",
                (package_id,),
            )
        ]
    )


async def test_packages_before_money_and_oldest_expiry_first(bill: Bill) -> None:
    key = await bill.account(balance_li=1_000, price_li=35)
    now = now_ms()
    later = bill.w(lambda tx: grant_package(tx, key.account_id, "term", 3, "p-later", months=6))
    sooner = bill.w(lambda tx: grant_package(tx, key.account_id, "term", 2, "p-sooner", months=2))
    assert sooner["expires_at"] < later["expires_at"] and sooner["starts_at"] >= now

    first = await bill.send(key, numbers(4))
    assert first["package_parts"] == 4 and first["total_fee_li"] == 0
    assert all(m["fee_li"] == 0 for m in first["accepted"])
    assert bill.remaining(sooner["id"]) == 0 and bill.remaining(later["id"]) == 1  # the sooner one went first
    assert bill.balance(key.account_id) == 1_000

    second = await bill.send(key, numbers(3, 10))
    assert second["package_parts"] == 1 and second["total_fee_li"] == 2 * 35
    assert [m["fee_li"] for m in second["accepted"]] == [0, 35, 35]
    assert bill.balance(key.account_id) == 1_000 - 70
    assert entries(bill, sooner["id"]) == [("grant", 2, 2), ("use", -2, 0)]
    assert entries(bill, later["id"]) == [("grant", 3, 3), ("use", -2, 1), ("use", -1, 0)]
    assert bill.verify()["ok"]


async def test_a_batch_that_money_cannot_cover_leaves_packages_untouched(bill: Bill) -> None:
    key = await bill.account(balance_li=35, price_li=35)
    pkg = bill.w(lambda tx: grant_package(tx, key.account_id, "term", 2, "p1"))
    with pytest.raises(QxError) as e:
        await bill.send(key, numbers(4))  # 2 from the package, 2 × 35 from money: 35 is not enough
    assert e.value.code == "INSUFFICIENT_BALANCE"
    assert bill.remaining(pkg["id"]) == 2 and bill.balance(key.account_id) == 35
    assert entries(bill, pkg["id"]) == [("grant", 2, 2)]
    ok = await bill.send(key, numbers(3))
    assert ok["package_parts"] == 2 and ok["total_fee_li"] == 35
    assert bill.verify()["ok"]


async def test_long_messages_take_whole_messages_from_one_package(bill: Bill) -> None:
    key = await bill.account(balance_li=10_000, price_li=40)
    pkg = bill.w(lambda tx: grant_package(tx, key.account_id, "term", 5, "p1"))
    data = await bill.send(key, numbers(3), content="长" * 70)  # 2 parts each
    assert data["parts"] == 2 and data["package_parts"] == 4 and data["total_fee_li"] == 80
    assert bill.remaining(pkg["id"]) == 1
    assert bill.verify()["ok"]


async def test_calendar_year_package_is_cleared_at_midnight_1_january_shanghai(bill: Bill) -> None:
    key = await bill.account()
    year = local(now_ms()).year
    pkg = bill.w(lambda tx: grant_package(tx, key.account_id, "year", 300_000, f"year-{year}", year=year))
    new_year = datetime(year + 1, 1, 1, tzinfo=SHANGHAI)
    assert pkg["expires_at"] == int(new_year.timestamp() * 1000)
    assert datetime.fromtimestamp(pkg["expires_at"] / 1000, UTC).hour == 16  # 31 December, 16:00 UTC
    await bill.send(key, numbers(5))
    end = pkg["expires_at"]
    assert bill.w(lambda tx: expire_due(tx, end - 1))["parts"] == 0
    assert bill.remaining(pkg["id"]) == 299_995
    got = bill.w(lambda tx: expire_due(tx, end))
    assert got["parts"] == 299_995
    assert bill.remaining(pkg["id"]) == 0
    assert entries(bill, pkg["id"])[-1] == ("expire", -299_995, 0)
    assert bill.one("SELECT status FROM packages WHERE id = ?", (pkg["id"],))[0] == "expired"
    assert bill.w(lambda tx: expire_due(tx, end + 10))["parts"] == 0  # once
    assert bill.verify()["ok"]


async def test_term_package_validity_and_expiry(bill: Bill) -> None:
    key = await bill.account()
    start = now_ms()
    pkg = bill.w(lambda tx: grant_package(tx, key.account_id, "term", 12_666, "t1", starts_at=start, months=6))
    assert pkg["expires_at"] == add_months(start, 6)
    with pytest.raises(QxError) as e:
        bill.w(lambda tx: grant_package(tx, key.account_id, "term", 10, "t1"))
    assert e.value.code == "PACKAGE_DUPLICATE"
    bill.w(lambda tx: expire_due(tx, pkg["expires_at"]))
    assert entries(bill, pkg["id"]) == [("grant", 12_666, 12_666), ("expire", -12_666, 0)]
    data = await bill.send(key, numbers(1))
    assert data["package_parts"] == 0 and data["total_fee_li"] == 35


async def test_package_paid_from_balance_is_a_ledger_entry(bill: Bill) -> None:
    key = await bill.account(balance_li=1_000_000)
    bill.w(lambda tx: grant_package(tx, key.account_id, "term", 12_666, "buy", price_li=999_000, pay_from_balance=True))
    assert bill.balance(key.account_id) == 1_000
    kinds = bill.r(lambda tx: tx.all("SELECT kind, amount_li FROM ledger WHERE account_id = ? ORDER BY id",
                                     (key.account_id,)))  # fmt: skip
    assert [(k, int(a)) for k, a in kinds][-1] == ("package", -999_000)
    with pytest.raises(QxError) as e:
        bill.w(lambda tx: grant_package(tx, key.account_id, "term", 1, "buy2", price_li=5_000, pay_from_balance=True))
    assert e.value.code == "INSUFFICIENT_BALANCE"
    assert bill.verify()["ok"]


async def test_refund_of_a_package_paid_message_returns_its_parts_once(bill: Bill) -> None:
    key = await bill.account(balance_li=1_000, price_li=35)
    pkg = bill.w(lambda tx: grant_package(tx, key.account_id, "term", 2, "p1"))
    data = await bill.send(key, numbers(3))
    pkg_mid, money_mid = int(data["accepted"][0]["id"]), int(data["accepted"][2]["id"])
    fails = [Failed(pkg_mid, "SUBMIT_REJECTED", "", now_ms()), Failed(money_mid, "SUBMIT_REJECTED", "", now_ms())]
    bill.w(lambda tx: record_failures(tx, fails))
    bill.w(lambda tx: record_failures(tx, fails))  # reported twice
    assert bill.remaining(pkg["id"]) == 1
    assert entries(bill, pkg["id"])[-1] == ("return", 1, 1)
    assert bill.balance(key.account_id) == 1_000  # 35 charged, 35 refunded
    assert bill.verify()["ok"]


def test_verify_reports_a_package_counter_that_differs_from_its_entries(bill: Bill) -> None:
    out = bill.w(lambda tx: create_account(tx, "篡改", "企信", 0, 35))
    pkg = bill.w(lambda tx: grant_package(tx, out["account_id"], "term", 10, "p"))
    bill.w(lambda tx: tx.execute("UPDATE packages SET remaining_parts = 11 WHERE id = ?", (pkg["id"],)))
    v = bill.verify()
    assert not v["ok"]
    assert v["package_mismatches"] == [
        {"package_id": pkg["id"], "account_id": out["account_id"], "remaining_parts": 11, "entries_parts": 10}
    ]


def test_cli_billing_verify_fails_on_a_tampered_package(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from qixin.cli import app

    run = CliRunner().invoke
    dd = ["--data-dir", str(tmp_path)]
    assert run(app, ["account", "create", "--name", "甲", "--signature", "企信", "--balance", "10", *dd]).exit_code == 0
    r = run(app, ["billing", "package", "1", "--kind", "term", "--parts", "100", "--ref", "p1", *dd])
    assert r.exit_code == 0, r.output
    assert run(app, ["billing", "verify", *dd]).exit_code == 0
    b = Bill(f"sqlite:///{tmp_path / 'qixin.db'}")
    b.w(lambda tx: tx.execute("UPDATE packages SET remaining_parts = 99"))
    b.close()
    bad = run(app, ["billing", "verify", *dd])
    assert bad.exit_code == 1 and "条数包 1" in bad.output
