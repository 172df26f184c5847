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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from qixin.domain.calendar import add_months, local, local_ms
from qixin.domain.money import li_to_yuan
from qixin.errors import QxError
from qixin.services import notify
from qixin.store import ledger as ledger_store
from qixin.store import packages as package_store
from qixin.store import refunds as refund_store
from qixin.store.db import Tx, now_ms
from qixin.store.ledger import BillingState

DEFAULT_VALIDITY_MONTHS = 12
PACKAGE_KINDS = ("year", "term")


# -- money ledger ---------------------------------------------------------------------------------------


def _credit(tx: Tx, account_id: int, kind: str, amount: int, ref: str, note: str | None) -> int:
    after = ledger_store.add_to_balance(tx, account_id, amount)
    ledger_store.append(tx, account_id, kind, amount, after, ref, note)
    return after


def ensure_billing_row(tx: Tx, account_id: int) -> None:
    ledger_store.ensure_row(tx, account_id)


def topup(tx: Tx, account_id: int, amount_li: int, ref: str, note: str | None = None, *, operator: bool = False) -> int:
    """Credit ``amount_li`` (> 0); returns the new balance.

    A customer top-up (``operator=False``) must meet the account's minimum (first or later) when one is
    set; an operator top-up is never refused for size. Either extends the balance's validity.
    """
    if amount_li <= 0:
        raise QxError("INVALID_REQUEST", "充值金额必须大于 0")
    if ledger_store.has_entry(tx, account_id, "topup", ref):
        raise QxError("TOPUP_DUPLICATE", ref=ref)
    bal = ledger_store.balance(tx, account_id)
    if bal is None:
        raise QxError("NOT_FOUND", "账户不存在")
    st = ledger_store.state(tx, account_id)
    if not operator and st is not None:
        minimum = st.min_first_topup_li if st.topups == 0 else st.min_topup_li
        if minimum and amount_li < minimum:
            raise QxError("TOPUP_BELOW_MINIMUM", f"单次充值不得少于 {li_to_yuan(minimum)} 元", minimum_li=minimum)
    now = now_ms()
    expires = st.balance_expires_at if st is not None else None
    if expires is not None and expires <= now and bal > 0:
        _expire_balance(tx, account_id, expires)
    balance = _credit(tx, account_id, "topup", amount_li, ref, note)
    months = st.validity_months if st is not None else DEFAULT_VALIDITY_MONTHS
    new_expiry = add_months(max(expires or now, now), months) if months > 0 else None
    ledger_store.ensure_row(tx, account_id)
    ledger_store.record_topup(tx, account_id, new_expiry, counted=not operator)
    ledger_store.rearm_alert(tx, account_id, balance)
    return balance


def _expire_balance(tx: Tx, account_id: int, expires_at: int) -> int:
    """Write off the whole balance of an account whose validity ended at ``expires_at``. Returns 厘 written off."""
    bal = ledger_store.balance(tx, account_id) or 0
    if bal <= 0:
        return 0
    ref = f"balance:{expires_at}"
    if ledger_store.has_entry(tx, account_id, "expire", ref):
        return 0
    after = ledger_store.take_exactly(tx, account_id, bal)
    if after is None:  # changed meanwhile; the next sweep sees the new balance
        return 0
    ledger_store.append(tx, account_id, "expire", -bal, after, ref, "余额有效期届满，余额清零")
    return bal


def charge(tx: Tx, account_id: int, amount_li: int, ref: str, note: str | None = None) -> int:
    """Debit ``amount_li`` if the balance covers it; otherwise raise INSUFFICIENT_BALANCE having written nothing."""
    after = ledger_store.take_if_covered(tx, account_id, amount_li)
    if after is None:
        raise QxError(
            "INSUFFICIENT_BALANCE",
            required_li=amount_li,
            balance_li=ledger_store.balance(tx, account_id) or 0,
        )
    ledger_store.append(tx, account_id, "charge", -amount_li, after, ref, note)
    return after


def _check_alert(tx: Tx, account_id: int, st: BillingState | None, balance: int) -> None:
    """After a debit: one balance-low notice per crossing of the threshold."""
    if st is None or not st.low_balance_li or not st.low_alert_armed or balance >= st.low_balance_li:
        return
    if ledger_store.claim_alert(tx, account_id):
        threshold = li_to_yuan(st.low_balance_li)
        notify.record(
            tx, account_id, "balance_low", f"余额不足提醒：当前余额 {li_to_yuan(balance)} 元",
            f"您的账户 {account_id} 余额 {li_to_yuan(balance)} 元，已低于提醒阈值 {threshold} 元，"
            "请及时充值以免影响发送。",
            ref=f"balance_low:{now_ms()}", channels=("email", "webhook", "sms"),
        )  # fmt: skip


def _money_guard(st: BillingState | None, now: int) -> None:
    if st is not None and st.balance_expires_at is not None and st.balance_expires_at <= now:
        raise QxError("BALANCE_EXPIRED", expired_at=st.balance_expires_at)


def debit(tx: Tx, account_id: int, amount_li: int, ref: str, note: str | None = None) -> int:
    """A money charge with every account rule: validity, conditional update, ledger, balance-low alert."""
    st = ledger_store.state(tx, account_id)
    _money_guard(st, now_ms())
    balance = charge(tx, account_id, amount_li, ref, note)
    _check_alert(tx, account_id, st, balance)
    return balance


def debit_each(tx: Tx, account_id: int, charges: Sequence[tuple[int, str, str | None]]) -> list[QxError | None]:
    """``debit`` of many charges (amount > 0, ref, note) of one account in order, in three statements when
    the balance covers them all (one conditional update for their sum, their ledger rows, each with its
    own balance after); otherwise one by one. Never raises QxError: a charge refused (BALANCE_EXPIRED,
    INSUFFICIENT_BALANCE) answers its error, the others are made — each outcome as the one ``debit``
    would have given in this order."""
    if not charges:
        return []
    st = ledger_store.state(tx, account_id)
    try:
        _money_guard(st, now_ms())
    except QxError as e:
        return [e for _ in charges]
    out: list[QxError | None] = []
    rows: list[tuple[int, str, int, int, str, str | None]] = []
    total = sum(a for a, _, _ in charges)
    after = ledger_store.take_if_covered(tx, account_id, total)
    if after is not None:
        running = after + total
        for amount, ref, note in charges:
            running -= amount
            rows.append((account_id, "charge", -amount, running, ref, note))
            out.append(None)
    else:
        for amount, ref, note in charges:
            one = ledger_store.take_if_covered(tx, account_id, amount)
            if one is None:
                bal = ledger_store.balance(tx, account_id) or 0
                out.append(QxError("INSUFFICIENT_BALANCE", required_li=amount, balance_li=bal))
                continue
            rows.append((account_id, "charge", -amount, one, ref, note))
            out.append(None)
    ledger_store.append_many(tx, rows)
    if rows:
        _check_alert(tx, account_id, st, rows[-1][3])
    return out


# -- packages -------------------------------------------------------------------------------------------


def usable_packages(tx: Tx, account_id: int, product: str, now: int, lock: bool = False) -> list[tuple[int, int]]:
    """(package id, remaining parts) usable now, oldest expiry first."""
    return package_store.usable(tx, account_id, product, now, lock)


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
    if not ledger_store.account_exists(tx, account_id):
        raise QxError("NOT_FOUND", "账户不存在")
    if package_store.ref_exists(tx, account_id, ref):
        raise QxError("PACKAGE_DUPLICATE", ref=ref)
    if pay_from_balance and price_li > 0:
        _money_guard(ledger_store.state(tx, account_id), now)
        after = ledger_store.take_if_covered(tx, account_id, price_li)
        if after is None:
            raise QxError("INSUFFICIENT_BALANCE", required_li=price_li)
        ledger_store.append(tx, account_id, "package", -price_li, after, f"package:{ref}", f"购买套餐 {name or ref}")
    pid = package_store.insert(tx, account_id, product, kind, name, parts, price_li, start, end, ref, now)
    package_store.append(tx, pid, account_id, "grant", parts, parts, "grant", name or None)
    return package_dict((pid, account_id, product, kind, name, parts, parts, price_li, start, end, "active", ref, now))


PACKAGE_COLUMNS = ", ".join(package_store.PACKAGE_KEYS)


def package_dict(r: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(package_store.PACKAGE_KEYS, r, strict=True))


def list_packages(tx: Tx, account_id: int) -> list[dict[str, Any]]:
    return package_store.of_account(tx, account_id)


def expire_package(tx: Tx, package_id: int) -> int:
    """Clear an expired package: its remaining parts become an ``expire`` entry. Returns parts cleared."""
    got = package_store.active_remaining(tx, package_id)
    if got is None:
        return 0
    account_id, remaining = got
    if not package_store.mark_expired(tx, package_id, remaining):
        return 0
    if remaining:
        package_store.append(tx, package_id, account_id, "expire", -remaining, 0, "expire", "套餐到期清零")
    return remaining


def expire_due(tx: Tx, now: int | None = None) -> dict[str, int]:
    """Expire every package and balance whose validity has ended (run by the billing worker and ``sweep``)."""
    now = now if now is not None else now_ms()
    parts = 0
    pkgs = package_store.due_to_expire(tx, now)
    for pid in pkgs:
        parts += expire_package(tx, pid)
    money = 0
    for account_id, expires in ledger_store.balances_expired(tx, now):
        money += _expire_balance(tx, account_id, expires)
    return {"packages": len(pkgs), "parts": parts, "balance_li": money}


# -- the accept charge ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    """What one accepted batch costs: its messages in id order, each (message id, carrier, fee_li), where
    ``fee_li`` is the money price of the whole message (all its ``parts``)."""

    account_id: int
    batch_id: int
    msg_type: str
    items: Sequence[tuple[int, str, int]]
    parts: int  # billed parts per message


@dataclass(frozen=True, slots=True)
class ChargeResult:
    """How a batch was paid: the first ``package_messages`` items by packages (their fee is 0), the rest
    in money (``money_li`` in total)."""

    money_li: int
    package_messages: int
    package_parts: int

    def fees(self, req: ChargeRequest) -> list[int]:
        """The fee actually charged per message, in the request's order."""
        n = self.package_messages
        return [0] * n + [it[2] for it in req.items[n:]]


def _batch_note(messages: int, parts: int) -> str:
    """A batch charge's ledger note: "N 条 × P 计费条"."""
    return f"{messages} 条 × {parts} 计费条"


def charge_batch(tx: Tx, req: ChargeRequest) -> ChargeResult:
    """Pay for every part of an accepted batch: packages first (oldest expiry first), the rest in money.

    Called by accept's ``persist`` as its first write; refuses (INSUFFICIENT_BALANCE, BALANCE_EXPIRED)
    before writing anything.
    """
    account_id = req.account_id
    now = now_ms()
    per = req.parts
    items = req.items
    covered = 0
    uses: list[tuple[int, int, int]] = []  # (package id, first item, end item)
    packs = package_store.usable(tx, account_id, "sms", now, lock=True) if per > 0 else []
    for pid, remaining in packs:
        k = min(len(items) - covered, remaining // per)
        if k > 0:
            uses.append((pid, covered, covered + k))
            covered += k
            if covered == len(items):
                break
    money = sum(it[2] for it in items[covered:]) if covered else sum(it[2] for it in items)
    st = ledger_store.state(tx, account_id)
    if money > 0:
        _money_guard(st, now)
        balance = charge(
            tx, account_id, money, ref=f"batch:{req.batch_id}",
            note=_batch_note(len(items) - covered, per) + (f"，另 {covered * per} 条套餐" if covered else ""),
        )  # fmt: skip
        _check_alert(tx, account_id, st, balance)
    if not uses:
        return ChargeResult(money_li=money, package_messages=0, package_parts=0)
    ref = f"batch:{req.batch_id}"
    for pid, first, end in uses:
        parts = (end - first) * per
        after = package_store.take_parts(tx, pid, parts)
        if after is None:  # cannot happen: the rows are locked (PostgreSQL) or this is the only writer (SQLite)
            raise RuntimeError(f"package {pid} changed under a locked read")
        package_store.append(tx, pid, account_id, "use", -parts, after, ref, _batch_note(end - first, per))
    package_store.record_uses(
        tx, [(req.batch_id, pid, items[first][0], items[end - 1][0], (end - first) * per) for pid, first, end in uses]
    )
    return ChargeResult(money_li=money, package_messages=covered, package_parts=covered * per)


def charge_batches(tx: Tx, account_id: int, reqs: Sequence[ChargeRequest]) -> list[ChargeResult | QxError]:
    """``charge_batch`` of many batches of one account, in order, each outcome as ``charge_batch`` would
    have given it (a refusal answered, not raised, and nothing written for it). Without a usable package
    (the common case) the money is taken in three statements for all of them (``debit_each``: one
    conditional update for their sum, their ledger rows); otherwise one batch after the other."""
    if not reqs:
        return []
    if any(r.parts > 0 for r in reqs) and package_store.usable(tx, account_id, "sms", now_ms(), lock=True):
        out: list[ChargeResult | QxError] = []
        for r in reqs:
            try:
                out.append(charge_batch(tx, r))
            except QxError as e:
                out.append(e)
        return out
    moneys = [sum(it[2] for it in r.items) for r in reqs]
    paying = [i for i, m in enumerate(moneys) if m > 0]
    refused = debit_each(
        tx, account_id,
        [(moneys[i], f"batch:{reqs[i].batch_id}", _batch_note(len(reqs[i].items), reqs[i].parts)) for i in paying],
    )  # fmt: skip
    results: list[ChargeResult | QxError] = [ChargeResult(m, package_messages=0, package_parts=0) for m in moneys]
    for i, err in zip(paying, refused, strict=True):
        if err is not None:
            results[i] = err
    return results


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
            pkg = package_store.paid_by(tx, message_id, now)
            if pkg is None:
                continue  # free, or its package has expired: nothing to give back
        if not refund_store.claim(tx, message_id):
            continue
        if pkg is None:
            credited[account_id] = _credit(tx, account_id, "refund", fee, str(message_id), note)
        else:
            pid, parts = pkg
            after = package_store.give_back_parts(tx, pid, parts)
            package_store.append(tx, pid, account_id, "return", parts, after, str(message_id), note)
        done += 1
    for account_id, balance in credited.items():
        ledger_store.rearm_alert(tx, account_id, balance)
    return done


def refund_rules(tx: Tx) -> dict[int, set[tuple[str, str]]]:
    out: dict[int, set[tuple[str, str]]] = {}
    for r in refund_store.rules(tx):
        out.setdefault(int(r["account_id"]), set()).add((r["kind"], r["code"].upper()))
    return out


def list_refund_rules(tx: Tx) -> list[dict[str, Any]]:
    """Every refund rule (id, account_id, kind, code), by id."""
    return refund_store.rules(tx)


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
    if refund_store.rule_id(tx, account_id, kind, code) is not None:
        raise QxError("CONFLICT", "规则已存在")
    rid = refund_store.insert_rule(tx, account_id, kind, code)
    return {"id": rid, "account_id": account_id, "kind": kind, "code": code}


def remove_refund_rule(tx: Tx, rule_id: int) -> None:
    if not refund_store.delete_rule(tx, rule_id):
        raise QxError("NOT_FOUND")


def remove_refund_rule_by_code(tx: Tx, kind: str, code: str, account_id: int = 0) -> dict[str, Any]:
    """Remove the rule (account, kind, code); NOT_FOUND when there is none. Returns {"removed": id}."""
    rid = refund_store.rule_id(tx, account_id, kind, code.strip().upper())
    if rid is None:
        raise QxError("NOT_FOUND")
    remove_refund_rule(tx, rid)
    return {"removed": rid}


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
    if ledger_store.has_entry(tx, account_id, "refund", ref):
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
    out = ledger_store.settings_row(tx, account_id)
    if out is None:
        out = {k: (0 if t is int else None) for k, t in SETTING_FIELDS.items()}
        out.update(validity_months=DEFAULT_VALIDITY_MONTHS, balance_expires_at=None, topups=0, low_alert_armed=True)
        return out
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
    bal = ledger_store.balance(tx, account_id)
    if bal is None:
        raise QxError("NOT_FOUND", "账户不存在")
    ledger_store.ensure_row(tx, account_id)
    ledger_store.update_settings(tx, account_id, clean)
    if "low_balance_li" in clean:  # a new threshold starts armed unless the balance is already below it
        ledger_store.set_alert_armed(tx, account_id, bal >= clean["low_balance_li"])
    return get_settings(tx, account_id)


def ledger_page(tx: Tx, account_id: int, limit: int = 50, before_id: int | None = None) -> dict[str, Any]:
    limit = max(1, min(limit, 500))
    rows = ledger_store.page(tx, account_id, limit + 1, before_id)
    entries = rows[:limit]
    for e in entries:
        e["amount"] = li_to_yuan(int(e["amount_li"]))
    nxt = entries[-1]["id"] if len(rows) > limit else None
    return {"entries": entries, "next_before_id": nxt}


def balance_view(tx: Tx, account_id: int) -> dict[str, Any]:
    bal = ledger_store.balance(tx, account_id)
    if bal is None:
        raise QxError("NOT_FOUND")
    st = get_settings(tx, account_id)
    packs = package_store.usable(tx, account_id, "sms", now_ms())
    return {
        "account_id": account_id,
        "balance_li": bal,
        "balance": li_to_yuan(bal),
        "balance_expires_at": st["balance_expires_at"],
        "package_parts": sum(r for _, r in packs),
        "low_balance_li": st["low_balance_li"],
    }


def account_view(tx: Tx, account_id: int) -> dict[str, Any]:
    """The finance staff's view of an account: its balance view plus its settings."""
    return balance_view(tx, account_id) | {"settings": get_settings(tx, account_id)}


def ledger_sum(tx: Tx, account_id: int) -> int:
    return ledger_store.total(tx, account_id)


def package_sum(tx: Tx, package_id: int) -> int:
    return package_store.entries_total(tx, package_id)


def verify(tx: Tx) -> dict[str, Any]:
    """Every balance equals the sum of its ledger entries, every package counter the sum of its entries."""
    sums = ledger_store.totals_by_account(tx)
    accounts = ledger_store.all_balances(tx)
    bad: list[dict[str, Any]] = [
        {"account_id": a, "balance_li": b, "ledger_li": sums.get(a, 0)} for a, b in accounts if b != sums.get(a, 0)
    ]
    psums = package_store.totals_by_package(tx)
    packs = package_store.all_remaining(tx)
    bad_packs = [
        {"package_id": p, "account_id": a, "remaining_parts": r, "entries_parts": psums.get(p, 0)}
        for p, a, r in packs
        if r != psums.get(p, 0)
    ]
    negative = [a for a, b in accounts if b < 0]
    return {
        "accounts": len(accounts),
        "packages": len(packs),
        "mismatches": bad,
        "package_mismatches": bad_packs,
        "negative": negative,
        "ok": not (bad or bad_packs or negative),
    }
