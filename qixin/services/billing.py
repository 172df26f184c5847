"""Billing use cases on the append-only ledger.

Rules:
- Every change of ``accounts.balance_li`` is made together with exactly one ``ledger`` row whose
  ``amount_li`` is the change and ``balance_after_li`` the new balance, in the same transaction.
- A charge is a conditional update (``balance_li >= amount``): the balance never goes negative, even
  with many writers on PostgreSQL. When it fails, nothing has been written and INSUFFICIENT_BALANCE is
  raised (the rule of store/db.py for QxError).
- A refund references the message it refunds; the ledger's unique (account, kind, ref) makes it happen
  at most once, however often a failure is reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from qixin.errors import QxError
from qixin.store.db import Tx, now_ms

if TYPE_CHECKING:
    from qixin.services.accept import Prepared


def _ledger(tx: Tx, account_id: int, kind: str, amount: int, after: int, ref: str, note: str | None) -> None:
    tx.execute(
        "INSERT INTO ledger (account_id, kind, amount_li, balance_after_li, ref, note, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (account_id, kind, amount, after, ref, note, now_ms()),
    )


def topup(tx: Tx, account_id: int, amount_li: int, ref: str, note: str | None = None) -> int:
    """Credit ``amount_li`` (> 0); returns the new balance."""
    if amount_li <= 0:
        raise QxError("INVALID_REQUEST", "充值金额必须大于 0")
    if tx.one("SELECT 1 FROM ledger WHERE account_id = ? AND kind = 'topup' AND ref = ?", (account_id, ref)):
        raise QxError("TOPUP_DUPLICATE", ref=ref)
    row = tx.one(
        "UPDATE accounts SET balance_li = balance_li + ? WHERE id = ? RETURNING balance_li",
        (amount_li, account_id),
    )
    if row is None:
        raise QxError("NOT_FOUND", "账户不存在")
    _ledger(tx, account_id, "topup", amount_li, int(row[0]), ref, note)
    return int(row[0])


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


def charge_batch(tx: Tx, p: Prepared) -> None:
    """Reserve the charge for every part of an accepted batch (the accept transaction's first write)."""
    charge(tx, p.key.account_id, p.total_fee, ref=f"batch:{p.batch_id}", note=f"{len(p.rows)} 条 × {p.parts} 计费条")


def refund_messages(tx: Tx, items: Iterable[tuple[int, int, int]], note: str) -> int:
    """Refund (message_id, account_id, fee_li) items, each at most once. Returns how many were refunded."""
    done = 0
    for message_id, account_id, fee in items:
        if fee <= 0:
            continue
        claimed = tx.execute(
            "UPDATE messages SET refunded = ? WHERE id = ? AND refunded = ?", (True, message_id, False)
        ).rowcount
        if not claimed:
            continue
        row = tx.one(
            "UPDATE accounts SET balance_li = balance_li + ? WHERE id = ? RETURNING balance_li",
            (fee, account_id),
        )
        _ledger(tx, account_id, "refund", fee, int(row[0]), str(message_id), note)
        done += 1
    return done


def ledger_sum(tx: Tx, account_id: int) -> int:
    row = tx.one("SELECT COALESCE(SUM(amount_li), 0) FROM ledger WHERE account_id = ?", (account_id,))
    return int(row[0])


def yuan_to_li(text: str) -> int:
    """Parse a yuan amount ("0.035", "100") into 厘 exactly, refusing sub-厘 precision."""
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(str(text).strip())
    except InvalidOperation as e:
        raise QxError("INVALID_REQUEST", f"金额格式错误：{text}") from e
    li = value * 1000
    if li != li.to_integral_value() or li < 0:
        raise QxError("INVALID_REQUEST", f"金额精度最多到厘（0.001 元）且不能为负：{text}")
    return int(li)


def li_to_yuan(li: int) -> str:
    sign = "-" if li < 0 else ""
    li = abs(li)
    return f"{sign}{li // 1000}.{li % 1000:03d}"
