"""Billing use cases on the append-only ledgers (money and packages).

Rules:
- Every change of ``accounts.balance_li`` is made together with exactly one ``ledger`` row whose
  ``amount_li`` is the change and ``balance_after_li`` the new balance, in the same transaction. Every
  change of ``packages.remaining_parts`` likewise has exactly one ``package_ledger`` row (grant, use,
  return, expire). ``verify`` proves both.
- A database job raises QxError only before it has written anything (store/db.py): every decision
  (package allocation, money needed, expiry, minimums) is made from reads first; the first write is
  the conditional money update (``balance_li >= amount``), so the balance never goes negative, even
  with several writers on PostgreSQL, where the account's usable packages are also locked
  (``FOR UPDATE``) before they are read.
- SMS: charged when accepted; packages (条数包) are consumed before money, oldest expiry first, whole
  messages at a time (a message's parts come from one package). Package-paid messages carry
  ``fee_li = 0`` and ``package_uses`` remembers which package paid for which message ids.
- Refunds: a platform failure always refunds; a receipt refunds when its stat or error code matches a
  ``refund_rules`` row (none by default). ``messages.refunded`` is claimed with a conditional update,
  so a message is refunded at most once however often its failure is reported. A package-paid message
  gets its parts back (unless the package has expired).
- Top-ups: minimum first/later amounts per account (off by default; operator top-ups such as
  ``qixin account create --balance`` are never refused for size); each top-up extends the validity of
  the whole balance by ``validity_months`` (12 by default; 0 = never expires). An expired balance is
  written off with an ``expire`` ledger row, never silently.
- Balance-low alert: when a charge takes the balance below the account's threshold, one notice (at most
  once per crossing: ``low_alert_armed`` is cleared by a conditional update, re-armed by a credit that
  brings the balance back to the threshold).
- Number check: charged per answered query except "no record"; timeouts and errors are free
  (``numcheck_fee``): reserved for every query when submitted, the uncharged ones refunded at settlement.
- Times: ms since the epoch UTC in storage; calendar rules (1 January, months) in Asia/Shanghai.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from qixin.errors import QxError
from qixin.services import notify
from qixin.store.db import Database, Tx, now_ms

if TYPE_CHECKING:
    from qixin.services.accept import Prepared

log = logging.getLogger("qixin.billing")
SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_VALIDITY_MONTHS = 12
PACKAGE_KINDS = ("year", "term")

# -- time in Asia/Shanghai ------------------------------------------------------------------------------


def local(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, SHANGHAI)


def local_ms(year: int, month: int = 1, day: int = 1) -> int:
    """00:00 of a date in Asia/Shanghai, as ms UTC."""
    return int(datetime(year, month, day, tzinfo=SHANGHAI).timestamp() * 1000)


def add_months(ms: int, months: int) -> int:
    """The same local time ``months`` later in Asia/Shanghai (31 January + 1 month = 28/29 February)."""
    d = local(ms)
    m = d.month - 1 + months
    year, month = d.year + m // 12, m % 12 + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return int(d.replace(year=year, month=month, day=day).timestamp() * 1000)


# -- money ledger ---------------------------------------------------------------------------------------


def _ledger(tx: Tx, account_id: int, kind: str, amount: int, after: int, ref: str, note: str | None) -> None:
    tx.execute(
        "INSERT INTO ledger (account_id, kind, amount_li, balance_after_li, ref, note, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (account_id, kind, amount, after, ref, note, now_ms()),
    )


def _credit(tx: Tx, account_id: int, kind: str, amount: int, ref: str, note: str | None) -> int:
    row = tx.one(
        "UPDATE accounts SET balance_li = balance_li + ? WHERE id = ? RETURNING balance_li", (amount, account_id)
    )
    _ledger(tx, account_id, kind, amount, int(row[0]), ref, note)
    return int(row[0])


def _rearm_alert(tx: Tx, account_id: int, balance: int) -> None:
    tx.execute(
        "UPDATE billing_accounts SET low_alert_armed = ? WHERE account_id = ? AND low_alert_armed = ?"
        " AND low_balance_li > 0 AND low_balance_li <= ?",
        (True, account_id, False, balance),
    )


def _state(tx: Tx, account_id: int) -> Any:
    """(balance_expires_at, low_balance_li, low_alert_armed, validity_months, topups, min_first, min_later) or None."""
    return tx.one(
        "SELECT balance_expires_at, low_balance_li, low_alert_armed, validity_months, topups, min_first_topup_li,"
        " min_topup_li FROM billing_accounts WHERE account_id = ?",
        (account_id,),
    )


def ensure_billing_row(tx: Tx, account_id: int) -> None:
    tx.execute(
        "INSERT INTO billing_accounts (account_id, updated_at) VALUES (?, ?) ON CONFLICT (account_id) DO NOTHING",
        (account_id, now_ms()),
    )


def topup(tx: Tx, account_id: int, amount_li: int, ref: str, note: str | None = None, *, operator: bool = False) -> int:
    """Credit ``amount_li`` (> 0); returns the new balance.

    A customer top-up (``operator=False``) must meet the account's minimum (first or later) when one is
    set; an operator top-up is never refused for size. Either extends the balance's validity.
    """
    if amount_li <= 0:
        raise QxError("INVALID_REQUEST", "充值金额必须大于 0")
    if tx.one("SELECT 1 FROM ledger WHERE account_id = ? AND kind = 'topup' AND ref = ?", (account_id, ref)):
        raise QxError("TOPUP_DUPLICATE", ref=ref)
    acct = tx.one("SELECT balance_li FROM accounts WHERE id = ?", (account_id,))
    if acct is None:
        raise QxError("NOT_FOUND", "账户不存在")
    st = _state(tx, account_id)
    if not operator and st is not None:
        minimum = int(st[5] if int(st[4]) == 0 else st[6])
        if minimum and amount_li < minimum:
            raise QxError("TOPUP_BELOW_MINIMUM", f"单次充值不得少于 {li_to_yuan(minimum)} 元", minimum_li=minimum)
    now = now_ms()
    expires = int(st[0]) if st is not None and st[0] is not None else None
    if expires is not None and expires <= now and int(acct[0]) > 0:
        _expire_balance(tx, account_id, expires)
    balance = _credit(tx, account_id, "topup", amount_li, ref, note)
    months = int(st[3]) if st is not None else DEFAULT_VALIDITY_MONTHS
    new_expiry = add_months(max(expires or now, now), months) if months > 0 else None
    ensure_billing_row(tx, account_id)
    tx.execute(
        "UPDATE billing_accounts SET balance_expires_at = ?, topups = topups + ?, updated_at = ? WHERE account_id = ?",
        (new_expiry, 0 if operator else 1, now, account_id),
    )
    _rearm_alert(tx, account_id, balance)
    return balance


def _expire_balance(tx: Tx, account_id: int, expires_at: int) -> int:
    """Write off the whole balance of an account whose validity ended at ``expires_at``. Returns 厘 written off."""
    row = tx.one("SELECT balance_li FROM accounts WHERE id = ?", (account_id,))
    bal = int(row[0]) if row else 0
    if bal <= 0:
        return 0
    if tx.one(
        "SELECT 1 FROM ledger WHERE account_id = ? AND kind = 'expire' AND ref = ?",
        (account_id, f"balance:{expires_at}"),
    ):
        return 0
    after = tx.one(
        "UPDATE accounts SET balance_li = balance_li - ? WHERE id = ? AND balance_li = ? RETURNING balance_li",
        (bal, account_id, bal),
    )
    if after is None:  # changed meanwhile; the next sweep sees the new balance
        return 0
    _ledger(tx, account_id, "expire", -bal, int(after[0]), f"balance:{expires_at}", "余额有效期届满，余额清零")
    return bal


def charge(tx: Tx, account_id: int, amount_li: int, ref: str, note: str | None = None) -> int:
    """Debit ``amount_li`` if the balance covers it; otherwise raise INSUFFICIENT_BALANCE having written nothing."""
    row = tx.one(
        "UPDATE accounts SET balance_li = balance_li - ? WHERE id = ? AND balance_li >= ? RETURNING balance_li",
        (amount_li, account_id, amount_li),
    )
    if row is None:
        have = tx.one("SELECT balance_li FROM accounts WHERE id = ?", (account_id,))
        raise QxError(
            "INSUFFICIENT_BALANCE",
            required_li=amount_li,
            balance_li=int(have[0]) if have else 0,
        )
    _ledger(tx, account_id, "charge", -amount_li, int(row[0]), ref, note)
    return int(row[0])


def _check_alert(tx: Tx, account_id: int, st: Any, balance: int) -> None:
    """After a debit: one balance-low notice per crossing of the threshold."""
    if st is None or not int(st[1]) or not st[2] or balance >= int(st[1]):
        return
    claimed = tx.execute(
        "UPDATE billing_accounts SET low_alert_armed = ? WHERE account_id = ? AND low_alert_armed = ?",
        (False, account_id, True),
    ).rowcount
    if claimed:
        threshold = li_to_yuan(int(st[1]))
        notify.record(
            tx, account_id, "balance_low", f"余额不足提醒：当前余额 {li_to_yuan(balance)} 元",
            f"您的账户 {account_id} 余额 {li_to_yuan(balance)} 元，已低于提醒阈值 {threshold} 元，"
            "请及时充值以免影响发送。",
            ref=f"balance_low:{now_ms()}", channels=("email", "webhook", "sms"),
        )  # fmt: skip


def _money_guard(st: Any, now: int) -> None:
    if st is not None and st[0] is not None and int(st[0]) <= now:
        raise QxError("BALANCE_EXPIRED", expired_at=int(st[0]))


def debit(tx: Tx, account_id: int, amount_li: int, ref: str, note: str | None = None) -> int:
    """A money charge with every account rule: validity, conditional update, ledger, balance-low alert."""
    st = _state(tx, account_id)
    _money_guard(st, now_ms())
    balance = charge(tx, account_id, amount_li, ref, note)
    _check_alert(tx, account_id, st, balance)
    return balance


# -- packages -------------------------------------------------------------------------------------------


def _pkg_ledger(
    tx: Tx, pid: int, account_id: int, kind: str, parts: int, after: int, ref: str, note: str | None
) -> None:
    tx.execute(
        "INSERT INTO package_ledger (package_id, account_id, kind, parts, remaining_after, ref, note, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (pid, account_id, kind, parts, after, ref, note, now_ms()),
    )


def usable_packages(tx: Tx, account_id: int, product: str, now: int, lock: bool = False) -> list[tuple[int, int]]:
    """(package id, remaining parts) usable now, oldest expiry first."""
    sql = (
        "SELECT id, remaining_parts FROM packages WHERE account_id = ? AND product = ? AND status = 'active'"
        " AND remaining_parts > 0 AND starts_at <= ? AND expires_at > ? ORDER BY expires_at, id"
    )
    if lock and tx.is_pg:
        sql += " FOR UPDATE"
    return [(int(a), int(b)) for a, b in tx.all(sql, (account_id, product, now, now))]


def grant_package(
    tx: Tx,
    account_id: int,
    kind: str,
    parts: int,
    ref: str,
    *,
    year: int | None = None,
    starts_at: int | None = None,
    expires_at: int | None = None,
    months: int | None = None,
    price_li: int = 0,
    pay_from_balance: bool = False,
    name: str = "",
    product: str = "sms",
) -> dict[str, Any]:
    """Give an account a package. ``year``: valid for that calendar year (cleared 00:00 1 January Asia/Shanghai);
    ``term``: from ``starts_at`` (now) for ``months`` (12) or until ``expires_at``. With ``pay_from_balance``
    its price is charged to the balance (ledger kind ``package``)."""
    now = now_ms()
    if kind not in PACKAGE_KINDS:
        raise QxError("INVALID_REQUEST", "套餐类型必须是 year（自然年）或 term（期限）")
    if parts <= 0 or price_li < 0:
        raise QxError("INVALID_REQUEST", "条数必须大于 0，价格不能为负")
    if product not in ("sms", "numcheck"):
        raise QxError("INVALID_REQUEST", "产品必须是 sms 或 numcheck")
    if kind == "year":
        y = year or local(now).year
        start, end = local_ms(y), local_ms(y + 1)
    else:
        start = starts_at if starts_at is not None else now
        end = expires_at if expires_at is not None else add_months(start, months or 12)
    if end <= start or end <= now:
        raise QxError("INVALID_REQUEST", "套餐有效期已过或起止时间无效")
    if tx.one("SELECT 1 FROM accounts WHERE id = ?", (account_id,)) is None:
        raise QxError("NOT_FOUND", "账户不存在")
    if tx.one("SELECT 1 FROM packages WHERE account_id = ? AND ref = ?", (account_id, ref)):
        raise QxError("PACKAGE_DUPLICATE", ref=ref)
    if pay_from_balance and price_li > 0:
        _money_guard(_state(tx, account_id), now)
        row = tx.one(
            "UPDATE accounts SET balance_li = balance_li - ? WHERE id = ? AND balance_li >= ? RETURNING balance_li",
            (price_li, account_id, price_li),
        )
        if row is None:
            raise QxError("INSUFFICIENT_BALANCE", required_li=price_li)
        _ledger(tx, account_id, "package", -price_li, int(row[0]), f"package:{ref}", f"购买套餐 {name or ref}")
    pid = int(
        tx.one(
            "INSERT INTO packages (account_id, product, kind, name, total_parts, remaining_parts, price_li, starts_at,"
            " expires_at, status, ref, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?) RETURNING id",
            (account_id, product, kind, name, parts, parts, price_li, start, end, ref, now),
        )[0]
    )
    _pkg_ledger(tx, pid, account_id, "grant", parts, parts, "grant", name or None)
    return package_dict((pid, account_id, product, kind, name, parts, parts, price_li, start, end, "active", ref, now))


PACKAGE_COLUMNS = (
    "id, account_id, product, kind, name, total_parts, remaining_parts, price_li, starts_at, expires_at, status,"
    " ref, created_at"
)


def package_dict(r: Sequence[Any]) -> dict[str, Any]:
    keys = [c.strip() for c in PACKAGE_COLUMNS.split(",")]
    return dict(zip(keys, r, strict=True))


def list_packages(tx: Tx, account_id: int) -> list[dict[str, Any]]:
    rows = tx.all(f"SELECT {PACKAGE_COLUMNS} FROM packages WHERE account_id = ? ORDER BY expires_at, id", (account_id,))
    return [package_dict(r) for r in rows]


def expire_package(tx: Tx, package_id: int) -> int:
    """Clear an expired package: its remaining parts become an ``expire`` entry. Returns parts cleared."""
    row = tx.one("SELECT account_id, remaining_parts FROM packages WHERE id = ? AND status = 'active'", (package_id,))
    if row is None:
        return 0
    account_id, remaining = int(row[0]), int(row[1])
    done = tx.execute(
        "UPDATE packages SET status = 'expired', remaining_parts = 0 WHERE id = ? AND status = 'active'"
        " AND remaining_parts = ?",
        (package_id, remaining),
    ).rowcount
    if not done:
        return 0
    if remaining:
        _pkg_ledger(tx, package_id, account_id, "expire", -remaining, 0, "expire", "套餐到期清零")
    return remaining


def expire_due(tx: Tx, now: int | None = None) -> dict[str, int]:
    """Expire every package and balance whose validity has ended (run by BillingWorker)."""
    now = now if now is not None else now_ms()
    parts = 0
    pkgs = tx.all("SELECT id FROM packages WHERE status = 'active' AND expires_at <= ?", (now,))
    for (pid,) in pkgs:
        parts += expire_package(tx, int(pid))
    money = 0
    for account_id, expires in tx.all(
        "SELECT b.account_id, b.balance_expires_at FROM billing_accounts b JOIN accounts a ON a.id = b.account_id"
        " WHERE b.balance_expires_at <= ? AND a.balance_li > 0",
        (now,),
    ):
        money += _expire_balance(tx, int(account_id), int(expires))
    return {"packages": len(pkgs), "parts": parts, "balance_li": money}


# -- the accept charge ----------------------------------------------------------------------------------


def charge_batch(tx: Tx, p: Prepared) -> None:
    """Pay for every part of an accepted batch: packages first (oldest expiry first), the rest in money.

    Called by accept's ``persist`` as its first write; refuses (INSUFFICIENT_BALANCE, BALANCE_EXPIRED)
    before writing anything. Package-paid messages get ``fee_li = 0`` in ``p.rows``.
    """
    account_id = p.key.account_id
    now = now_ms()
    per = p.parts
    rows = p.rows
    covered = 0
    uses: list[tuple[int, int, int]] = []  # (package id, first row, end row)
    packs = usable_packages(tx, account_id, "sms", now, lock=True) if per > 0 else []
    for pid, remaining in packs:
        k = min(len(rows) - covered, remaining // per)
        if k > 0:
            uses.append((pid, covered, covered + k))
            covered += k
            if covered == len(rows):
                break
    money = sum(r[4] for r in rows[covered:]) if covered else p.total_fee
    st = _state(tx, account_id)
    if money > 0:
        _money_guard(st, now)
        balance = charge(
            tx, account_id, money, ref=f"batch:{p.batch_id}",
            note=f"{len(rows) - covered} 条 × {per} 计费条" + (f"，另 {covered * per} 条套餐" if covered else ""),
        )  # fmt: skip
        _check_alert(tx, account_id, st, balance)
    if not uses:
        return
    ref = f"batch:{p.batch_id}"
    for pid, first, end in uses:
        parts = (end - first) * per
        row = tx.one(
            "UPDATE packages SET remaining_parts = remaining_parts - ? WHERE id = ? AND remaining_parts >= ?"
            " RETURNING remaining_parts",
            (parts, pid, parts),
        )
        if row is None:  # cannot happen: the rows are locked (PostgreSQL) or this is the only writer (SQLite)
            raise RuntimeError(f"package {pid} changed under a locked read")
        _pkg_ledger(tx, pid, account_id, "use", -parts, int(row[0]), ref, f"{end - first} 条 × {per} 计费条")
    tx.executemany(
        "INSERT INTO package_uses (batch_id, package_id, first_message_id, last_message_id, parts)"
        " VALUES (?, ?, ?, ?, ?)",
        [(p.batch_id, pid, rows[first][0], rows[end - 1][0], (end - first) * per) for pid, first, end in uses],
    )
    rows[:covered] = [(r[0], r[1], r[2], r[3], 0) for r in rows[:covered]]
    p.package_parts = covered * per


# -- refunds --------------------------------------------------------------------------------------------


def refund_messages(tx: Tx, items: Iterable[tuple[int, int, int]], note: str) -> int:
    """Refund (message_id, account_id, fee_li) items, each at most once: money for money-paid messages,
    parts back to the package for package-paid ones. Returns how many were refunded."""
    done = 0
    now = now_ms()
    credited: dict[int, int] = {}
    for message_id, account_id, fee in items:
        pkg = None
        if fee <= 0:
            pkg = tx.one(
                "SELECT u.package_id, m.parts FROM messages m JOIN package_uses u ON u.batch_id = m.batch_id"
                " AND m.id BETWEEN u.first_message_id AND u.last_message_id"
                " JOIN packages k ON k.id = u.package_id AND k.status = 'active' AND k.expires_at > ?"
                " WHERE m.id = ?",
                (now, message_id),
            )
            if pkg is None:
                continue  # free, or its package has expired: nothing to give back
        claimed = tx.execute(
            "UPDATE messages SET refunded = ? WHERE id = ? AND refunded = ?", (True, message_id, False)
        ).rowcount
        if not claimed:
            continue
        if pkg is None:
            credited[account_id] = _credit(tx, account_id, "refund", fee, str(message_id), note)
        else:
            pid, parts = int(pkg[0]), int(pkg[1])
            row = tx.one(
                "UPDATE packages SET remaining_parts = remaining_parts + ? WHERE id = ? RETURNING remaining_parts",
                (parts, pid),
            )
            _pkg_ledger(tx, pid, account_id, "return", parts, int(row[0]), str(message_id), note)
        done += 1
    for account_id, balance in credited.items():
        _rearm_alert(tx, account_id, balance)
    return done


def refund_rules(tx: Tx) -> dict[int, set[tuple[str, str]]]:
    out: dict[int, set[tuple[str, str]]] = {}
    for account_id, kind, code in tx.all("SELECT account_id, kind, code FROM refund_rules"):
        out.setdefault(int(account_id), set()).add((kind, code.upper()))
    return out


def refund_receipts(tx: Tx, finals: Sequence[tuple[int, int, int, str, str | None, str | None]]) -> int:
    """Refund final messages whose receipt matches a refund rule: (id, account, fee, status, stat, err) each."""
    if not finals:
        return 0
    rules = refund_rules(tx)
    if not rules:
        return 0
    everyone = rules.get(0, set())
    items = []
    for mid, account_id, fee, status, stat, err in finals:
        if status == "delivered":
            continue
        mine = everyone | rules.get(account_id, set())
        if ("stat", (stat or "").upper()) in mine or ("err", (err or "").upper()) in mine:
            items.append((mid, account_id, fee))
    return refund_messages(tx, items, note="状态报告失败退款") if items else 0


def add_refund_rule(tx: Tx, kind: str, code: str, account_id: int = 0) -> dict[str, Any]:
    code = code.strip().upper()
    if kind not in ("stat", "err") or not 0 < len(code) <= 16:
        raise QxError("INVALID_REQUEST", "规则类型必须是 stat 或 err，代码 1–16 个字符")
    if kind == "stat" and code == "DELIVRD":
        raise QxError("INVALID_REQUEST", "成功状态 DELIVRD 不能退款")
    if tx.one("SELECT 1 FROM refund_rules WHERE account_id = ? AND kind = ? AND code = ?", (account_id, kind, code)):
        raise QxError("CONFLICT", "规则已存在")
    row = tx.one(
        "INSERT INTO refund_rules (account_id, kind, code, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        (account_id, kind, code, now_ms()),
    )
    return {"id": int(row[0]), "account_id": account_id, "kind": kind, "code": code}


def remove_refund_rule(tx: Tx, rule_id: int) -> None:
    if not tx.execute("DELETE FROM refund_rules WHERE id = ?", (rule_id,)).rowcount:
        raise QxError("NOT_FOUND")


# -- number check ---------------------------------------------------------------------------------------

NUMCHECK_UNCHARGED = frozenset({"no_record", "timeout", "error"})


def numcheck_fee(results: Iterable[str], unit_li: int) -> tuple[int, int]:
    """(charged queries, fee) for number-check results: every answered query except "no record"."""
    n = sum(1 for r in results if r not in NUMCHECK_UNCHARGED)
    return n, n * unit_li


def numcheck_reserve(tx: Tx, account_id: int, query_id: str, queries: int, unit_li: int) -> int:
    """Reserve the price of every query before asking (refused whole when the balance cannot pay)."""
    return debit(tx, account_id, queries * unit_li, f"numcheck:{query_id}", f"号码检测 {queries} 次")


def numcheck_settle(tx: Tx, account_id: int, query_id: str, results: Sequence[str], unit_li: int) -> int:
    """Give back the reservation of queries that are not charged (no record, timeout, error), once."""
    _, fee = numcheck_fee(results, unit_li)
    back = len(results) * unit_li - fee
    if back <= 0:
        return 0
    ref = f"numcheck:{query_id}"
    if tx.one("SELECT 1 FROM ledger WHERE account_id = ? AND kind = 'refund' AND ref = ?", (account_id, ref)):
        return 0
    _credit(tx, account_id, "refund", back, ref, "号码检测未计费部分退回")
    return back


# -- settings, reads and verification ------------------------------------------------------------------

SETTING_FIELDS: dict[str, type] = {
    "min_first_topup_li": int,
    "min_topup_li": int,
    "validity_months": int,
    "low_balance_li": int,
    "alert_email": str,
    "alert_webhook": str,
    "alert_mobile": str,
    "billing_email": str,
}


def get_settings(tx: Tx, account_id: int) -> dict[str, Any]:
    cols = ", ".join(SETTING_FIELDS)
    row = tx.one(
        f"SELECT {cols}, balance_expires_at, topups, low_alert_armed FROM billing_accounts WHERE account_id = ?",
        (account_id,),
    )
    if row is None:
        out: dict[str, Any] = {k: (0 if t is int else None) for k, t in SETTING_FIELDS.items()}
        out.update(validity_months=DEFAULT_VALIDITY_MONTHS, balance_expires_at=None, topups=0, low_alert_armed=True)
        return out
    out = dict(zip([*SETTING_FIELDS, "balance_expires_at", "topups", "low_alert_armed"], row, strict=True))
    out["low_alert_armed"] = bool(out["low_alert_armed"])
    return out


def update_settings(tx: Tx, account_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for k, v in changes.items():
        kind = SETTING_FIELDS.get(k)
        if kind is None:
            raise QxError("INVALID_REQUEST", f"未知设置项 {k}")
        if kind is int and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise QxError("INVALID_REQUEST", f"{k} 必须是非负整数")
        if kind is str and v is not None and not isinstance(v, str):
            raise QxError("INVALID_REQUEST", f"{k} 必须是字符串")
        clean[k] = v or None if kind is str else v
    if tx.one("SELECT 1 FROM accounts WHERE id = ?", (account_id,)) is None:
        raise QxError("NOT_FOUND", "账户不存在")
    ensure_billing_row(tx, account_id)
    if clean:
        sets = ", ".join(f"{k} = ?" for k in clean)
        tx.execute(f"UPDATE billing_accounts SET {sets}, updated_at = ? WHERE account_id = ?",
                   (*clean.values(), now_ms(), account_id))  # fmt: skip
    if "low_balance_li" in clean:  # a new threshold starts armed unless the balance is already below it
        bal = int(tx.one("SELECT balance_li FROM accounts WHERE id = ?", (account_id,))[0])
        tx.execute("UPDATE billing_accounts SET low_alert_armed = ? WHERE account_id = ?",
                   (bal >= clean["low_balance_li"], account_id))  # fmt: skip
    return get_settings(tx, account_id)


def ledger_page(tx: Tx, account_id: int, limit: int = 50, before_id: int | None = None) -> dict[str, Any]:
    limit = max(1, min(limit, 500))
    sql = "SELECT id, kind, amount_li, balance_after_li, ref, note, created_at FROM ledger WHERE account_id = ?"
    params: tuple[Any, ...] = (account_id,)
    if before_id:
        sql += " AND id < ?"
        params += (before_id,)
    rows = tx.all(sql + " ORDER BY id DESC LIMIT ?", (*params, limit + 1))
    keys = ("id", "kind", "amount_li", "balance_after_li", "ref", "note", "created_at")
    entries = [dict(zip(keys, r, strict=True)) for r in rows[:limit]]
    for e in entries:
        e["amount"] = li_to_yuan(int(e["amount_li"]))
    nxt = entries[-1]["id"] if len(rows) > limit else None
    return {"entries": entries, "next_before_id": nxt}


def balance_view(tx: Tx, account_id: int) -> dict[str, Any]:
    row = tx.one("SELECT balance_li FROM accounts WHERE id = ?", (account_id,))
    if row is None:
        raise QxError("NOT_FOUND")
    st = get_settings(tx, account_id)
    now = now_ms()
    packs = usable_packages(tx, account_id, "sms", now)
    return {
        "account_id": account_id,
        "balance_li": int(row[0]),
        "balance": li_to_yuan(int(row[0])),
        "balance_expires_at": st["balance_expires_at"],
        "package_parts": sum(r for _, r in packs),
        "low_balance_li": st["low_balance_li"],
    }


def ledger_sum(tx: Tx, account_id: int) -> int:
    row = tx.one("SELECT COALESCE(SUM(amount_li), 0) FROM ledger WHERE account_id = ?", (account_id,))
    return int(row[0])


def package_sum(tx: Tx, package_id: int) -> int:
    row = tx.one("SELECT COALESCE(SUM(parts), 0) FROM package_ledger WHERE package_id = ?", (package_id,))
    return int(row[0])


def verify(tx: Tx) -> dict[str, Any]:
    """Every balance equals the sum of its ledger entries, every package counter the sum of its entries."""
    sums = {int(a): int(s) for a, s in tx.all("SELECT account_id, SUM(amount_li) FROM ledger GROUP BY account_id")}
    accounts = tx.all("SELECT id, balance_li FROM accounts ORDER BY id")
    bad: list[dict[str, Any]] = [
        {"account_id": int(a), "balance_li": int(b), "ledger_li": sums.get(int(a), 0)}
        for a, b in accounts
        if int(b) != sums.get(int(a), 0)
    ]
    psums = {int(p): int(s) for p, s in tx.all("SELECT package_id, SUM(parts) FROM package_ledger GROUP BY package_id")}
    packs = tx.all("SELECT id, account_id, remaining_parts FROM packages ORDER BY id")
    bad_packs = [
        {"package_id": int(p), "account_id": int(a), "remaining_parts": int(r), "entries_parts": psums.get(int(p), 0)}
        for p, a, r in packs
        if int(r) != psums.get(int(p), 0)
    ]
    negative = [int(a) for a, b in accounts if int(b) < 0]
    return {
        "accounts": len(accounts),
        "packages": len(packs),
        "mismatches": bad,
        "package_mismatches": bad_packs,
        "negative": negative,
        "ok": not (bad or bad_packs or negative),
    }


# -- amounts --------------------------------------------------------------------------------------------


def yuan_to_li(text: str) -> int:
    """Parse a yuan amount ("0.035", "100") into 厘 exactly, refusing sub-厘 precision."""
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(str(text).strip())
    except InvalidOperation as e:
        raise QxError("INVALID_REQUEST", f"金额格式错误：{text}") from e
    if not value.is_finite():
        raise QxError("INVALID_REQUEST", f"金额格式错误：{text}")
    li = value * 1000
    if li != li.to_integral_value() or li < 0:
        raise QxError("INVALID_REQUEST", f"金额精度最多到厘（0.001 元）且不能为负：{text}")
    return int(li)


def li_to_yuan(li: int) -> str:
    sign = "-" if li < 0 else ""
    li = abs(li)
    return f"{sign}{li // 1000}.{li % 1000:03d}"


# -- housekeeping ---------------------------------------------------------------------------------------


class BillingWorker:
    """Periodic billing work: expiries (packages, balances), dispute windows, monthly statements,
    notice delivery. Every step is idempotent, so several processes may run it."""

    def __init__(
        self,
        db: Database,
        smtp: notify.Smtp,
        interval: float = 30.0,
        holidays: frozenset[str] = frozenset(),
        auto_statements: bool = True,
    ) -> None:
        self.db = db
        self.smtp = smtp
        self.interval = interval
        self.holidays = holidays
        self.auto_statements = auto_statements
        self.notifier = notify.Notifier(db, smtp)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="qixin-billing")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await notify.cancel_quietly(task)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("billing housekeeping failed; will retry")
            await asyncio.sleep(self.interval)

    async def run_once(self, now: int | None = None) -> dict[str, Any]:
        from qixin.services import statements

        at = now if now is not None else now_ms()
        expired = await self.db.write(lambda tx: expire_due(tx, at))
        closed = await self.db.write(lambda tx: statements.close_windows(tx, at))
        issued: list[int] = []
        if self.auto_statements:
            issued = await self.db.write(lambda tx: statements.issue_due(tx, at, self.holidays))
            if self.smtp.host:
                for sid in issued:
                    await statements.email_statement(self.db, self.smtp, sid)
        sent = await self.notifier.deliver_once()
        return {"expired": expired, "confirmed": closed, "statements": issued, "notices": sent}
