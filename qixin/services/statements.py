"""Monthly reconciliation statements (对账单): built from the ledgers, rendered as CSV and XLSX, emailed.

Rules:
- A statement covers one account and one calendar month in Asia/Shanghai ([1st 00:00, next 1st 00:00)).
  It is issued only after the month has ended, once per account and month.
- Its money totals come from the ledger and add up: opening + top-ups + charges + refunds + expiries
  + other (package purchases, adjustments) = closing, where opening and closing are the sums of all
  entries before the period's start and end (the balance at those instants, since balance == sum).
- The SMS breakdown (messages, parts, amounts by type and carrier) comes from the messages accepted in
  the period; package use and expiry from the package ledger.
- Dispute window: the customer may dispute (with a reason) until the end of the 3rd working day
  (Mon–Fri, not a configured holiday) after the statement was issued; then it is confirmed. A customer
  may confirm earlier.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from qixin.domain.calendar import dispute_deadline, local, period_bounds, previous_period
from qixin.domain.export import safe_cell
from qixin.domain.money import li_to_yuan
from qixin.errors import QxError
from qixin.services import notify
from qixin.store import ledger as ledger_store
from qixin.store import packages as package_store
from qixin.store import statements as statement_store
from qixin.store.db import Database, Tx, now_ms

KIND_COLUMN = {"topup": "topups_li", "charge": "charges_li", "refund": "refunds_li", "expire": "expired_li"}
TYPE_ZH = {"verification": "验证码", "notification": "通知", "marketing": "营销"}
CARRIER_ZH = {"cmcc": "移动", "cucc": "联通", "ctcc": "电信", "cbn": "广电", "intl": "国际", "unknown": "未知"}


def build(tx: Tx, account_id: int, period: str) -> dict[str, Any]:
    """The statement's numbers (a pure read)."""
    start, end = period_bounds(period)
    opening = ledger_store.total(tx, account_id, before=start)
    totals = dict.fromkeys(("topups_li", "charges_li", "refunds_li", "expired_li", "other_li"), 0)
    by_kind: list[dict[str, Any]] = []
    for kind, product, n, amount in ledger_store.period_by_kind(tx, account_id, start, end):
        totals[KIND_COLUMN.get(kind, "other_li")] += amount
        by_kind.append({"kind": kind, "product": product, "entries": n, "amount_li": amount})
    sms = [
        {"type": t, "carrier": c, "messages": n, "parts": p, "amount_li": f, "refunded": r}
        for t, c, n, p, f, r in statement_store.sms_totals(tx, account_id, start, end)
    ]
    pkg = package_store.period_by_kind(tx, account_id, start, end)
    closing = opening + sum(totals.values())
    return {
        "account_id": account_id,
        "period": period,
        "period_start": start,
        "period_end": end,
        "opening_li": opening,
        **totals,
        "closing_li": closing,
        "messages": sum(r["messages"] for r in sms),
        "parts": sum(r["parts"] for r in sms),
        "package_used": -pkg.get("use", 0) - pkg.get("return", 0),
        "package_expired": -pkg.get("expire", 0),
        "detail": {"sms": sms, "ledger": by_kind, "packages": pkg},
    }


@dataclass(frozen=True, slots=True)
class Issued:
    statement_id: int
    account_id: int
    new: bool  # issued by this call (False: it existed already)


def _issue(tx: Tx, account_id: int, period: str, now: int, holidays: Iterable[str]) -> Issued:
    _, end = period_bounds(period)
    if end > now:
        raise QxError("STATEMENT_NOT_READY")
    if not ledger_store.account_exists(tx, account_id):
        raise QxError("NOT_FOUND", "账户不存在")
    got = statement_store.id_of(tx, account_id, period)
    if got is not None:
        return Issued(got, account_id, False)
    s = build(tx, account_id, period)
    return Issued(statement_store.insert(tx, s, now, dispute_deadline(now, holidays)), account_id, True)


def issue(tx: Tx, account_id: int, period: str, now: int | None = None, holidays: Iterable[str] = ()) -> int:
    """Issue the statement of a month that has ended (once; a second call returns the same id)."""
    return _issue(tx, account_id, period, now if now is not None else now_ms(), holidays).statement_id


def issue_period(
    tx: Tx, period: str, now: int | None = None, holidays: Iterable[str] = (), account_id: int | None = None
) -> list[Issued]:
    """Issue ``period``'s statements: of one account, or (``account_id`` None) of every account that existed
    before the period ended, in id order. Statements issued before are returned as they are (``new`` False).

    The one "issue statements" use case: the admin API, ``qixin billing statement`` and the billing worker
    (last month, on the 1st) all call it. Refuses (STATEMENT_NOT_READY, NOT_FOUND) before writing anything."""
    now = now if now is not None else now_ms()
    hol = tuple(holidays)
    if account_id is not None:
        return [_issue(tx, account_id, period, now, hol)]
    _, end = period_bounds(period)
    if end > now:
        raise QxError("STATEMENT_NOT_READY")
    return [_issue(tx, a, period, now, hol) for a in statement_store.accounts_created_before(tx, end)]


def issue_due(tx: Tx, now: int, holidays: Iterable[str] = ()) -> list[int]:
    """Issue last month's statement for every account that existed then and has none yet; the new ids."""
    return [i.statement_id for i in issue_period(tx, previous_period(now), now, holidays) if i.new]


def close_windows(tx: Tx, now: int) -> int:
    """Confirm every statement whose dispute window has passed without a dispute."""
    return statement_store.close_windows(tx, now)


def get(tx: Tx, statement_id: int, account_id: int | None = None) -> dict[str, Any]:
    """One statement (``account_id``: the customer's view, only its own)."""
    s = statement_store.one(tx, statement_id, account_id)
    if s is None:
        raise QxError("NOT_FOUND", "对账单不存在")
    return s


def listing(tx: Tx, account_id: int | None = None, period: str | None = None) -> list[dict[str, Any]]:
    out = statement_store.many(tx, account_id, period)
    for s in out:
        del s["detail"]
    return out


def dispute(tx: Tx, account_id: int, statement_id: int, reason: str, now: int | None = None) -> dict[str, Any]:
    now = now if now is not None else now_ms()
    if not reason.strip():
        raise QxError("INVALID_REQUEST", "请填写异议原因")
    get(tx, statement_id, account_id)
    if not statement_store.mark_disputed(tx, statement_id, account_id, reason.strip()[:2000], now):
        raise QxError("STATEMENT_NOT_DISPUTABLE")
    return get(tx, statement_id, account_id)


def confirm(tx: Tx, account_id: int, statement_id: int, now: int | None = None) -> dict[str, Any]:
    now = now if now is not None else now_ms()
    get(tx, statement_id, account_id)
    if not statement_store.mark_confirmed(tx, statement_id, account_id, now):
        raise QxError("STATEMENT_NOT_DISPUTABLE")
    return get(tx, statement_id, account_id)


# -- rendering ------------------------------------------------------------------------------------------


def _summary(s: dict[str, Any]) -> list[tuple[str, Any]]:
    ts = "%Y-%m-%d %H:%M"
    return [
        ("账户", s["account_id"]),
        ("账期", s["period"]),
        ("期初余额（元）", li_to_yuan(s["opening_li"])),
        ("充值（元）", li_to_yuan(s["topups_li"])),
        ("消费（元）", li_to_yuan(s["charges_li"])),
        ("退款（元）", li_to_yuan(s["refunds_li"])),
        ("余额过期（元）", li_to_yuan(s["expired_li"])),
        ("其他（套餐购买、调整）（元）", li_to_yuan(s["other_li"])),
        ("期末余额（元）", li_to_yuan(s["closing_li"])),
        ("短信条数", s["messages"]),
        ("计费条数", s["parts"]),
        ("套餐使用条数", s["package_used"]),
        ("套餐到期清零条数", s["package_expired"]),
        ("出账时间", local(s["issued_at"]).strftime(ts) if s.get("issued_at") else ""),
        ("异议截止", local(s["dispute_deadline_at"]).strftime(ts) if s.get("dispute_deadline_at") else ""),
        ("状态", s.get("status", "")),
    ]


SMS_HEADER = ("类型", "运营商", "条数", "计费条数", "金额（元）", "已退款条数")


def _sms_rows(s: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (TYPE_ZH.get(r["type"], r["type"]), CARRIER_ZH.get(r["carrier"], r["carrier"]), r["messages"], r["parts"],
         li_to_yuan(r["amount_li"]), r["refunded"])
        for r in s["detail"].get("sms", [])
    ]  # fmt: skip


LEDGER_HEADER = ("账目类型", "产品", "笔数", "金额（元）")


def _ledger_rows(s: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(r["kind"], r["product"], r["entries"], li_to_yuan(r["amount_li"])) for r in s["detail"].get("ledger", [])]


_AMOUNT = re.compile(r"-?\d+(\.\d+)?")


def _cells(rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """Rows as written to a spreadsheet: text escaped against formulas (SAFE_CELL), amounts kept as
    written (a refund's "-1.500" is a number, not a formula)."""
    return [[v if isinstance(v, str) and _AMOUNT.fullmatch(v) else safe_cell(v) for v in row] for row in rows]


def to_csv(s: dict[str, Any]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(("对账单",))
    w.writerows(_cells(_summary(s)))
    w.writerow(())
    w.writerow(SMS_HEADER)
    w.writerows(_cells(_sms_rows(s)))
    w.writerow(())
    w.writerow(LEDGER_HEADER)
    w.writerows(_cells(_ledger_rows(s)))
    return buf.getvalue().encode("utf-8-sig")  # BOM: Excel opens it as UTF-8


def to_xlsx(s: dict[str, Any]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "对账单"
    for row in _cells(_summary(s)):
        ws.append(row)
    ws.column_dimensions["A"].width = 28
    ws.column_dimensions["B"].width = 20
    detail = wb.create_sheet("短信明细")
    detail.append(list(SMS_HEADER))
    for row in _cells(_sms_rows(s)):
        detail.append(row)
    ledger = wb.create_sheet("账目")
    ledger.append(list(LEDGER_HEADER))
    for row in _cells(_ledger_rows(s)):
        ledger.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def email_statement(db: Database, smtp: notify.Smtp, statement_id: int) -> bool:
    """Email a statement with its CSV and XLSX to the account's billing address; records the outcome."""

    def q(tx: Tx) -> tuple[dict[str, Any], str]:
        st = get(tx, statement_id)
        return st, notify.contacts(tx, st["account_id"]).get("billing_email", "")

    s, address = await db.read(q)
    name = f"statement-{s['account_id']}-{s['period']}"
    subject = f"{s['period']} 对账单（账户 {s['account_id']}）"
    body = (
        f"尊敬的客户：\n\n附件为您的账户 {s['account_id']} {s['period']} 对账单（CSV 与 XLSX）。\n"
        f"期初余额 {li_to_yuan(s['opening_li'])} 元，期末余额 {li_to_yuan(s['closing_li'])} 元，"
        f"短信 {s['messages']} 条（{s['parts']} 计费条）。\n"
        f"如有异议，请于 {local(s['dispute_deadline_at']).strftime('%Y-%m-%d %H:%M')}（北京时间）前提出；"
        "逾期未提出视为确认。\n"
    )
    error: str | None = None
    if not address:
        error = "账户未设置对账邮箱"
    else:
        try:
            await notify.send_email(
                smtp, address, subject, body,
                [(f"{name}.csv", to_csv(s), "text/csv"), (f"{name}.xlsx", to_xlsx(s), XLSX_MIME)],
            )  # fmt: skip
        except Exception as e:
            error = str(e)[:500] or type(e).__name__

    def job(tx: Tx) -> None:
        statement_store.record_email(tx, statement_id, now_ms() if error is None else None, error)
        if error is None:
            notify.record(tx, s["account_id"], "statement", subject, body, ref=f"statement:{statement_id}", channels=())

    await db.write(job)
    return error is None


async def email_and_report(db: Database, smtp: notify.Smtp, statement_id: int) -> dict[str, Any]:
    """Email a statement now and report the outcome: {id, emailed, email_error}."""
    ok = await email_statement(db, smtp, statement_id)
    s = await db.read(lambda tx: get(tx, statement_id))
    return {"id": statement_id, "emailed": ok, "email_error": s["email_error"]}
