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
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

import orjson

from qixin.errors import QxError
from qixin.services import notify
from qixin.services.billing import li_to_yuan, local, local_ms
from qixin.store.db import Database, Tx, now_ms

DISPUTE_WORKING_DAYS = 3
KIND_COLUMN = {"topup": "topups_li", "charge": "charges_li", "refund": "refunds_li", "expire": "expired_li"}
TYPE_ZH = {"verification": "验证码", "notification": "通知", "marketing": "营销"}
CARRIER_ZH = {"cmcc": "移动", "cucc": "联通", "ctcc": "电信", "cbn": "广电", "intl": "国际", "unknown": "未知"}


def period_bounds(period: str) -> tuple[int, int]:
    try:
        y, m = (int(x) for x in period.split("-"))
        if not (2000 <= y <= 9999 and 1 <= m <= 12 and len(period) == 7):
            raise ValueError(period)
    except ValueError as e:
        raise QxError("INVALID_REQUEST", "账期格式应为 YYYY-MM") from e
    return local_ms(y, m), local_ms(y + m // 12, m % 12 + 1)


def period_of(ms: int) -> str:
    return local(ms).strftime("%Y-%m")


def previous_period(ms: int) -> str:
    d = local(ms)
    y, m = (d.year, d.month - 1) if d.month > 1 else (d.year - 1, 12)
    return f"{y:04d}-{m:02d}"


def is_working_day(d: date, holidays: Iterable[str] = ()) -> bool:
    return d.weekday() < 5 and d.isoformat() not in set(holidays)


def dispute_deadline(issued_at: int, holidays: Iterable[str] = (), days: int = DISPUTE_WORKING_DAYS) -> int:
    """End (00:00 of the following day, Asia/Shanghai) of the ``days``-th working day after ``issued_at``."""
    hol = set(holidays)
    d = local(issued_at).date()
    n = 0
    while n < days:
        d += timedelta(days=1)
        if is_working_day(d, hol):
            n += 1
    d += timedelta(days=1)
    return local_ms(d.year, d.month, d.day)


def build(tx: Tx, account_id: int, period: str) -> dict[str, Any]:
    """The statement's numbers (a pure read)."""
    start, end = period_bounds(period)
    opening = int(tx.one("SELECT COALESCE(SUM(amount_li), 0) FROM ledger WHERE account_id = ? AND created_at < ?",
                         (account_id, start))[0])  # fmt: skip
    totals = dict.fromkeys(("topups_li", "charges_li", "refunds_li", "expired_li", "other_li"), 0)
    by_kind: list[dict[str, Any]] = []
    for kind, product, n, amount in tx.all(
        "SELECT kind, CASE WHEN ref LIKE 'numcheck:%' THEN 'numcheck' ELSE 'sms' END, COUNT(*), SUM(amount_li)"
        " FROM ledger WHERE account_id = ? AND created_at >= ? AND created_at < ? GROUP BY 1, 2 ORDER BY 1, 2",
        (account_id, start, end),
    ):
        totals[KIND_COLUMN.get(kind, "other_li")] += int(amount)
        by_kind.append({"kind": kind, "product": product, "entries": int(n), "amount_li": int(amount)})
    sms = [
        {"type": t, "carrier": c, "messages": int(n), "parts": int(p), "amount_li": int(f), "refunded": int(r)}
        for t, c, n, p, f, r in tx.all(
            "SELECT type, carrier, COUNT(*), SUM(parts), SUM(fee_li), SUM(CASE WHEN refunded THEN 1 ELSE 0 END)"
            " FROM messages WHERE account_id = ? AND created_at >= ? AND created_at < ?"
            " GROUP BY type, carrier ORDER BY type, carrier",
            (account_id, start, end),
        )
    ]
    pkg = {
        str(k): int(v)
        for k, v in tx.all(
            "SELECT kind, SUM(parts) FROM package_ledger WHERE account_id = ? AND created_at >= ? AND created_at < ?"
            " GROUP BY kind",
            (account_id, start, end),
        )
    }
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


COLUMNS = (
    "id, account_id, period, period_start, period_end, opening_li, topups_li, charges_li, refunds_li, expired_li,"
    " other_li, closing_li, messages, parts, package_used, package_expired, detail, status, issued_at,"
    " dispute_deadline_at, dispute_reason, decided_at, emailed_at, email_error"
)
_KEYS = [c.strip() for c in COLUMNS.split(",")]


def _row(r: Any) -> dict[str, Any]:
    out = dict(zip(_KEYS, r, strict=True))
    out["detail"] = orjson.loads(out["detail"] or "{}")
    return out


def issue(tx: Tx, account_id: int, period: str, now: int | None = None, holidays: Iterable[str] = ()) -> int:
    """Issue the statement of a month that has ended (once; a second call returns the same id)."""
    now = now if now is not None else now_ms()
    _, end = period_bounds(period)
    if end > now:
        raise QxError("STATEMENT_NOT_READY")
    if tx.one("SELECT 1 FROM accounts WHERE id = ?", (account_id,)) is None:
        raise QxError("NOT_FOUND", "账户不存在")
    got = tx.one("SELECT id FROM statements WHERE account_id = ? AND period = ?", (account_id, period))
    if got is not None:
        return int(got[0])
    s = build(tx, account_id, period)
    row = tx.one(
        "INSERT INTO statements (account_id, period, period_start, period_end, opening_li, topups_li, charges_li,"
        " refunds_li, expired_li, other_li, closing_li, messages, parts, package_used, package_expired, detail,"
        " status, issued_at, dispute_deadline_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'issued', ?, ?) RETURNING id",
        (account_id, period, s["period_start"], s["period_end"], s["opening_li"], s["topups_li"], s["charges_li"],
         s["refunds_li"], s["expired_li"], s["other_li"], s["closing_li"], s["messages"], s["parts"],
         s["package_used"], s["package_expired"], orjson.dumps(s["detail"]).decode(), now,
         dispute_deadline(now, holidays)),
    )  # fmt: skip
    return int(row[0])


def issue_due(tx: Tx, now: int, holidays: Iterable[str] = ()) -> list[int]:
    """Issue last month's statement for every account that existed then and has none yet."""
    period = previous_period(now)
    _, end = period_bounds(period)
    todo = tx.all(
        "SELECT a.id FROM accounts a WHERE a.created_at < ? AND NOT EXISTS"
        " (SELECT 1 FROM statements s WHERE s.account_id = a.id AND s.period = ?) ORDER BY a.id",
        (end, period),
    )
    return [issue(tx, int(a), period, now, holidays) for (a,) in todo]


def close_windows(tx: Tx, now: int) -> int:
    """Confirm every statement whose dispute window has passed without a dispute."""
    return int(
        tx.execute(
            "UPDATE statements SET status = 'confirmed', decided_at = ? WHERE status = 'issued'"
            " AND dispute_deadline_at <= ?",
            (now, now),
        ).rowcount
    )


def get(tx: Tx, statement_id: int, account_id: int | None = None) -> dict[str, Any]:
    sql = f"SELECT {COLUMNS} FROM statements WHERE id = ?"
    params: tuple[Any, ...] = (statement_id,)
    if account_id is not None:  # the customer's view: only its own
        sql += " AND account_id = ?"
        params += (account_id,)
    r = tx.one(sql, params)
    if r is None:
        raise QxError("NOT_FOUND", "对账单不存在")
    return _row(r)


def listing(tx: Tx, account_id: int | None = None, period: str | None = None) -> list[dict[str, Any]]:
    sql = f"SELECT {COLUMNS} FROM statements WHERE 1 = 1"
    params: tuple[Any, ...] = ()
    if account_id is not None:
        sql += " AND account_id = ?"
        params += (account_id,)
    if period:
        sql += " AND period = ?"
        params += (period,)
    out = [_row(r) for r in tx.all(sql + " ORDER BY period DESC, account_id", params)]
    for s in out:
        del s["detail"]
    return out


def dispute(tx: Tx, account_id: int, statement_id: int, reason: str, now: int | None = None) -> dict[str, Any]:
    now = now if now is not None else now_ms()
    if not reason.strip():
        raise QxError("INVALID_REQUEST", "请填写异议原因")
    get(tx, statement_id, account_id)
    done = tx.execute(
        "UPDATE statements SET status = 'disputed', dispute_reason = ?, decided_at = ? WHERE id = ? AND account_id = ?"
        " AND status = 'issued' AND dispute_deadline_at > ?",
        (reason.strip()[:2000], now, statement_id, account_id, now),
    ).rowcount
    if not done:
        raise QxError("STATEMENT_NOT_DISPUTABLE")
    return get(tx, statement_id, account_id)


def confirm(tx: Tx, account_id: int, statement_id: int, now: int | None = None) -> dict[str, Any]:
    now = now if now is not None else now_ms()
    get(tx, statement_id, account_id)
    done = tx.execute(
        "UPDATE statements SET status = 'confirmed', decided_at = ? WHERE id = ? AND account_id = ?"
        " AND status = 'issued'",
        (now, statement_id, account_id),
    ).rowcount
    if not done:
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


def to_csv(s: dict[str, Any]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(("对账单",))
    w.writerows(_summary(s))
    w.writerow(())
    w.writerow(SMS_HEADER)
    w.writerows(_sms_rows(s))
    w.writerow(())
    w.writerow(LEDGER_HEADER)
    w.writerows(_ledger_rows(s))
    return buf.getvalue().encode("utf-8-sig")  # BOM: Excel opens it as UTF-8


def to_xlsx(s: dict[str, Any]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "对账单"
    for row in _summary(s):
        ws.append(list(row))
    ws.column_dimensions["A"].width = 28
    ws.column_dimensions["B"].width = 20
    detail = wb.create_sheet("短信明细")
    detail.append(list(SMS_HEADER))
    for row in _sms_rows(s):
        detail.append(list(row))
    ledger = wb.create_sheet("账目")
    ledger.append(list(LEDGER_HEADER))
    for row in _ledger_rows(s):
        ledger.append(list(row))
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
        if error is None:
            tx.execute(
                "UPDATE statements SET emailed_at = ?, email_error = NULL WHERE id = ?", (now_ms(), statement_id)
            )
            notify.record(tx, s["account_id"], "statement", subject, body, ref=f"statement:{statement_id}", channels=())
        else:
            tx.execute("UPDATE statements SET email_error = ? WHERE id = ?", (error, statement_id))

    await db.write(job)
    return error is None
