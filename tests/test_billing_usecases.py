"""Billing's application layer: the one statement-issuing use case behind the worker, the CLI and the admin
API; the accept charge on billing's own request/result types; the pure money, calendar and time helpers;
the typed OpenAPI description of the billing routes."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from _billing import Bill, new_id
from typer.testing import CliRunner

from qixin.domain.calendar import (
    SHANGHAI,
    add_months,
    dispute_deadline,
    local_ms,
    period_bounds,
    period_of,
    previous_period,
)
from qixin.domain.money import li_to_yuan, yuan_to_li
from qixin.domain.timeparse import parse_send_at, parse_time
from qixin.errors import QxError
from qixin.services import billing, statements
from qixin.services.billing_worker import BillingWorker
from qixin.services.notify import Smtp
from qixin.store.db import now_ms

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def bill(db_url: str) -> Iterator[Bill]:
    b = Bill(db_url)
    yield b
    b.close()


def count_statements(bill: Bill) -> int:
    return int(bill.one("SELECT COUNT(*) FROM statements")[0])


async def test_worker_and_cli_issue_statements_through_the_same_use_case(
    bill: Bill, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    period = previous_period(now_ms())
    start, _ = period_bounds(period)
    a = (await bill.account(balance_li=1_000)).account_id
    b = (await bill.account(balance_li=2_000)).account_id
    bill.w(lambda tx: tx.execute("UPDATE accounts SET created_at = ?", (start,)))  # both existed last month
    late = (await bill.account(balance_li=3_000)).account_id  # created this month: no statement for last month

    worker = BillingWorker(bill.db, Smtp(), holidays=frozenset())
    first = await worker.run_once()
    assert len(first["statements"]) == 2
    issued = {bill.r(lambda tx, s=sid: statements.get(tx, s))["account_id"]: sid for sid in first["statements"]}
    assert set(issued) == {a, b} and late not in issued
    assert (await worker.run_once())["statements"] == []  # once per account and month

    monkeypatch.setenv("QIXIN_DATABASE_URL", db_url)
    from qixin.cli import app as cli

    def run(*args: Any) -> Any:  # the CLI runs its own event loop: call it from a thread
        return asyncio.to_thread(CliRunner().invoke, *args)

    dd = ["--data-dir", str(tmp_path)]
    r = await run(cli, ["billing", "statement", "--period", period, *dd])
    assert r.exit_code == 0, r.output
    assert [ln.split()[1] for ln in r.output.splitlines()] == [str(a), str(b)]  # the same two, by account id
    assert count_statements(bill) == 2  # nothing issued twice
    out_dir = str(tmp_path / "o")
    one = await run(cli, ["billing", "statement", "--period", period, "--account", str(b), "--out", out_dir, *dd])
    assert one.exit_code == 0, one.output
    assert (tmp_path / "o" / f"statement-{b}-{period}.csv").exists()
    not_yet = await run(cli, ["billing", "statement", "--period", period_of(now_ms()), *dd])
    assert not_yet.exit_code == 2 and "STATEMENT_NOT_READY" in not_yet.output

    # the use case itself: existing statements come back unchanged, a missing account is refused unwritten
    again = bill.w(lambda tx: statements.issue_period(tx, period))
    assert [(i.account_id, i.statement_id, i.new) for i in again] == [(a, issued[a], False), (b, issued[b], False)]
    with pytest.raises(QxError) as e:
        bill.w(lambda tx: statements.issue_period(tx, period, account_id=999_999))
    assert e.value.code == "NOT_FOUND"
    assert count_statements(bill) == 2


async def test_charge_batch_takes_its_own_request_and_reports_how_it_was_paid(bill: Bill) -> None:
    key = await bill.account(balance_li=1_000)
    acct = key.account_id
    pkg = bill.w(lambda tx: billing.grant_package(tx, acct, "term", 5, "five"))
    ids = [new_id() for _ in range(4)]
    req = billing.ChargeRequest(acct, new_id(), "notification", [(m, "cmcc", 70) for m in ids], parts=2)
    res = bill.w(lambda tx: billing.charge_batch(tx, req))
    # the package (5 parts) pays for two whole 2-part messages; the other two are paid in money
    assert (res.package_messages, res.package_parts, res.money_li) == (2, 4, 140)
    assert res.fees(req) == [0, 0, 70, 70]
    assert bill.balance(acct) == 1_000 - 140 and bill.remaining(pkg["id"]) == 1
    use = bill.one("SELECT first_message_id, last_message_id, parts FROM package_uses WHERE package_id = ?",
                   (pkg["id"],))  # fmt: skip
    assert tuple(int(x) for x in use) == (ids[0], ids[1], 4)

    big = billing.ChargeRequest(acct, new_id(), "notification", [(new_id(), "cmcc", 500) for _ in range(3)], 1)
    with pytest.raises(QxError) as e:
        bill.w(lambda tx: billing.charge_batch(tx, big))
    assert e.value.code == "INSUFFICIENT_BALANCE"
    assert bill.balance(acct) == 860 and bill.remaining(pkg["id"]) == 1  # refused whole, nothing written
    assert bill.verify()["ok"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_billing_library_imports_neither_accept_nor_the_modules_that_import_it() -> None:
    services = ROOT / "qixin" / "services"
    mine = _imports(services / "billing.py")
    for above in ("accept", "accounts", "statements", "pricing", "billing_worker"):
        assert f"qixin.services.{above}" not in mine, above
    assert "qixin.services.billing_worker" not in _imports(services / "statements.py")
    api = (ROOT / "qixin" / "api" / "billing.py").read_text(encoding="utf-8")
    assert "db.write(" not in api and "db.read(" not in api  # routes call use cases (SQL: tests/test_layers.py)


def test_money_calendar_and_the_one_time_parser() -> None:
    assert yuan_to_li("0.035") == 35 and yuan_to_li(" 100 ") == 100_000 and li_to_yuan(-1500) == "-1.500"
    for bad in ("0.0001", "-1", "abc", "NaN"):
        with pytest.raises(QxError) as e:
            yuan_to_li(bad)
        assert e.value.code == "INVALID_REQUEST"
    assert add_months(local_ms(2024, 1, 31), 1) == local_ms(2024, 2, 29)
    assert add_months(local_ms(2025, 11, 30), 3) == local_ms(2026, 2, 28)
    assert period_bounds("2025-12") == (local_ms(2025, 12), local_ms(2026, 1))
    assert previous_period(local_ms(2026, 1, 1)) == "2025-12"
    assert dispute_deadline(local_ms(2025, 1, 3) + 3_600_000) == local_ms(2025, 1, 9)  # Friday → Thursday 00:00

    utc8 = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000)
    assert parse_time("2025-01-01T08:00:00") == utc8  # naive = Asia/Shanghai
    assert parse_time("2025-01-01T00:00:00Z") == utc8 == parse_time(utc8 / 1000) == parse_time(utc8 // 1000)
    assert parse_time(None) is None and parse_time("") is None
    assert datetime(2025, 1, 1, 8, tzinfo=SHANGHAI).timestamp() * 1000 == utc8
    for bad in ("tomorrow", True, [1], float("inf")):
        with pytest.raises(QxError) as e:
            parse_time(bad)
        assert e.value.code == "INVALID_REQUEST" and "时间格式错误" in e.value.message
        with pytest.raises(QxError) as e:
            parse_send_at(bad, 0)
        assert e.value.code == "SEND_AT_INVALID"
    now = now_ms()
    assert parse_send_at((now + 60_000) / 1000, now) == now + 60_000
    assert parse_send_at((now + 500) / 1000, now) is None  # due now
    assert parse_send_at("2020-01-01 00:00:00", now) is None


def test_billing_routes_are_described_by_models_with_their_error_codes(tmp_path: Path) -> None:
    from qixin.api.app import create_api
    from qixin.app import build
    from qixin.settings import Settings

    platform = build(Settings(data_dir=tmp_path))
    try:
        spec = create_api(platform).openapi()
    finally:
        platform.db.close()
    paths = spec["paths"]
    topup = paths["/admin/billing/accounts/{account_id}/topups"]["post"]
    body = topup["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"amount", "ref"} and "operator" in body["properties"]
    assert "TOPUP_BELOW_MINIMUM" in topup["responses"]["400"]["description"]
    assert "STAFF_TOKEN_INVALID" in topup["responses"]["401"]["description"]
    assert "201" in topup["responses"]
    ok = paths["/v1/billing/balance"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/BalanceOut")
    assert "balance_li" in spec["components"]["schemas"]["BalanceOut"]["properties"]
    dispute = paths["/v1/statements/{statement_id}/dispute"]["post"]
    assert "STATEMENT_NOT_DISPUTABLE" in dispute["responses"]["409"]["description"]
    assert "SIGNATURE_INVALID" in dispute["responses"]["401"]["description"]
    billing_paths = [p for p in paths if p.startswith(("/admin/billing", "/v1/billing", "/v1/statements"))]
    assert len(billing_paths) >= 15
    for p in billing_paths:
        for method, op in paths[p].items():
            assert "INTERNAL_ERROR" in op["responses"]["500"]["description"], f"{method} {p}"


def test_billing_request_bodies_keep_the_field_rules() -> None:
    from qixin.api.billing import PackageIn, SettingsIn, TopupIn
    from qixin.api.common import parse_model

    t = parse_model(TopupIn, b'{"amount": 100, "ref": "r1", "note": null, "extra": 1}')
    assert (t.amount, t.ref, t.note, t.operator) == ("100", "r1", None, False)  # a number is taken as its text

    def refused(model: type, raw: bytes) -> QxError:
        with pytest.raises(QxError) as e:
            parse_model(model, raw)
        return e.value

    for model, raw, name in [
        (TopupIn, b'{"amount": "1"}', "ref"),
        (TopupIn, b'{"amount": "1", "ref": null}', "ref"),  # null = not given
        (TopupIn, b'{"amount": "1", "ref": "r", "operator": "yes"}', "operator"),
        (PackageIn, b'{"kind": "term", "parts": true, "ref": "p"}', "parts"),  # a bool is not a count
        (SettingsIn, b'{"colour": "red"}', "colour"),  # settings: unknown names are refused
    ]:
        err = refused(model, raw)
        assert err.code == "INVALID_REQUEST" and f"字段 {name} " in err.message, (raw, err.message)
    assert refused(TopupIn, b"[1]").code == "INVALID_JSON"
    s = parse_model(SettingsIn, b'{"alert_email": null, "min_topup": "20"}')
    assert s.model_fields_set == {"alert_email", "min_topup"} and s.alert_email is None  # null clears a contact


async def test_billing_desk_checks_the_actor_and_audits_each_change_in_its_transaction(bill: Bill) -> None:
    from qixin.services.actor import Actor
    from qixin.services.billing_desk import BillingDesk

    dropped: list[int] = []
    desk = BillingDesk(bill.db, Smtp(), on_price_change=dropped.append)
    key = await bill.account(balance_li=1_000)
    acct = key.account_id
    other = (await bill.account(balance_li=5)).account_id
    finance, reviewer = Actor.staff(7, "finance", "127.0.0.1"), Actor.staff(8, "reviewer")
    me = key.actor("127.0.0.1")

    def audits(action: str) -> list[tuple[str, str, str]]:
        rows = bill.r(
            lambda tx: tx.all("SELECT actor_type, actor_id, target FROM audit_log WHERE action = ?", (action,))
        )
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    assert await desk.topup(finance, acct, 2_000, "t1") == 3_000
    assert audits("account.topup") == [("staff", "7", f"account:{acct}")]
    with pytest.raises(QxError) as e:
        await desk.topup(reviewer, acct, 2_000, "t2")
    assert e.value.code == "FORBIDDEN" and bill.balance(acct) == 3_000 and len(audits("account.topup")) == 1
    with pytest.raises(QxError) as e:
        await desk.topup(finance, acct, 2_000, "t1")  # the same ref: refused, and no audit row either
    assert e.value.code == "TOPUP_DUPLICATE" and len(audits("account.topup")) == 1

    assert (await desk.balance(me))["balance_li"] == 3_000
    with pytest.raises(QxError) as e:
        await desk.balance(me, other)  # another account's: as if it did not exist
    assert e.value.code == "NOT_FOUND"
    with pytest.raises(QxError) as e:
        await desk.topup(me, acct, 1_000, "self")  # a customer is not finance
    assert e.value.code == "FORBIDDEN"

    plan = await desk.add_price_plan(Actor.cli(), acct, "sms", 40, carrier="cmcc")
    assert plan["created_by"] == "cli" and dropped == [acct]  # the price cache is dropped after the change

    period = previous_period(now_ms())
    start, _ = period_bounds(period)
    bill.w(lambda tx: tx.execute("UPDATE accounts SET created_at = ?", (start,)))
    out = await desk.issue_statements(finance, period, account_id=acct)
    sid = out["statement_ids"][0]
    with pytest.raises(QxError) as e:
        await desk.statement(Actor.customer(other, "someone-else"), sid)
    assert e.value.code == "NOT_FOUND"
    disputed = await desk.dispute(me, sid, "条数不符")
    assert disputed["status"] == "disputed"
    assert audits("statement.dispute") == [("customer", key.app_key, f"statement:{sid}")]
    assert bill.verify()["ok"]
