"""Queries on the money side of billing: ``accounts.balance_li``, the append-only ``ledger`` and the
per-account ``billing_accounts`` settings. Plain values in, rows or plain values out; no rules here
(services/billing.py decides what to write and when)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qixin.store.db import Tx, now_ms

SETTING_COLUMNS = (
    "min_first_topup_li",
    "min_topup_li",
    "validity_months",
    "low_balance_li",
    "alert_email",
    "alert_webhook",
    "alert_mobile",
    "billing_email",
)
LEDGER_KEYS = ("id", "kind", "amount_li", "balance_after_li", "ref", "note", "created_at")


@dataclass(frozen=True, slots=True)
class BillingState:
    """What the money rules need of ``billing_accounts`` (absent row: no state)."""

    balance_expires_at: int | None
    low_balance_li: int
    low_alert_armed: bool
    validity_months: int
    topups: int
    min_first_topup_li: int
    min_topup_li: int


# -- accounts.balance_li -------------------------------------------------------------------------------


def balance(tx: Tx, account_id: int) -> int | None:
    """The account's balance, or None when there is no such account."""
    row = tx.one("SELECT balance_li FROM accounts WHERE id = ?", (account_id,))
    return int(row[0]) if row is not None else None


def account_exists(tx: Tx, account_id: int) -> bool:
    return tx.one("SELECT 1 FROM accounts WHERE id = ?", (account_id,)) is not None


def add_to_balance(tx: Tx, account_id: int, amount_li: int) -> int:
    """balance += amount (a credit); returns the new balance."""
    row = tx.one(
        "UPDATE accounts SET balance_li = balance_li + ? WHERE id = ? RETURNING balance_li", (amount_li, account_id)
    )
    return int(row[0])


def take_if_covered(tx: Tx, account_id: int, amount_li: int) -> int | None:
    """balance -= amount only when the balance covers it (the conditional update); None when it did not."""
    row = tx.one(
        "UPDATE accounts SET balance_li = balance_li - ? WHERE id = ? AND balance_li >= ? RETURNING balance_li",
        (amount_li, account_id, amount_li),
    )
    return int(row[0]) if row is not None else None


def take_exactly(tx: Tx, account_id: int, amount_li: int) -> int | None:
    """balance -= amount only when the balance is still exactly ``amount`` (a write-off); None otherwise."""
    row = tx.one(
        "UPDATE accounts SET balance_li = balance_li - ? WHERE id = ? AND balance_li = ? RETURNING balance_li",
        (amount_li, account_id, amount_li),
    )
    return int(row[0]) if row is not None else None


def all_balances(tx: Tx) -> list[tuple[int, int]]:
    """(account id, balance) of every account, by id."""
    return [(int(a), int(b)) for a, b in tx.all("SELECT id, balance_li FROM accounts ORDER BY id")]


# -- ledger --------------------------------------------------------------------------------------------


def append(tx: Tx, account_id: int, kind: str, amount_li: int, after_li: int, ref: str, note: str | None) -> None:
    tx.execute(
        "INSERT INTO ledger (account_id, kind, amount_li, balance_after_li, ref, note, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (account_id, kind, amount_li, after_li, ref, note, now_ms()),
    )


def append_many(tx: Tx, rows: Sequence[tuple[int, str, int, int, str, str | None]]) -> None:
    """(account_id, kind, amount_li, balance_after_li, ref, note) each, in order: ``append`` of many rows."""
    at = now_ms()
    tx.executemany(
        "INSERT INTO ledger (account_id, kind, amount_li, balance_after_li, ref, note, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(*r, at) for r in rows],
    )


def has_entry(tx: Tx, account_id: int, kind: str, ref: str) -> bool:
    return (
        tx.one("SELECT 1 FROM ledger WHERE account_id = ? AND kind = ? AND ref = ?", (account_id, kind, ref))
        is not None
    )


def page(tx: Tx, account_id: int, limit: int, before_id: int | None = None) -> list[dict[str, Any]]:
    """Up to ``limit`` entries, newest first, below ``before_id`` when given."""
    sql = "SELECT id, kind, amount_li, balance_after_li, ref, note, created_at FROM ledger WHERE account_id = ?"
    params: tuple[Any, ...] = (account_id,)
    if before_id:
        sql += " AND id < ?"
        params += (before_id,)
    rows = tx.all(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
    return [dict(zip(LEDGER_KEYS, r, strict=True)) for r in rows]


def total(tx: Tx, account_id: int, before: int | None = None) -> int:
    """Sum of the account's entries (those created before ``before`` when given)."""
    if before is None:
        row = tx.one("SELECT COALESCE(SUM(amount_li), 0) FROM ledger WHERE account_id = ?", (account_id,))
    else:
        row = tx.one(
            "SELECT COALESCE(SUM(amount_li), 0) FROM ledger WHERE account_id = ? AND created_at < ?",
            (account_id, before),
        )
    return int(row[0])


def totals_by_account(tx: Tx) -> dict[int, int]:
    return {int(a): int(s) for a, s in tx.all("SELECT account_id, SUM(amount_li) FROM ledger GROUP BY account_id")}


def period_by_kind(tx: Tx, account_id: int, start: int, end: int) -> list[tuple[str, str, int, int]]:
    """(kind, product 'sms'|'numcheck', entries, amount) of the entries created in [start, end)."""
    rows = tx.all(
        "SELECT kind, CASE WHEN ref LIKE 'numcheck:%' THEN 'numcheck' ELSE 'sms' END, COUNT(*), SUM(amount_li)"
        " FROM ledger WHERE account_id = ? AND created_at >= ? AND created_at < ? GROUP BY 1, 2 ORDER BY 1, 2",
        (account_id, start, end),
    )
    return [(str(k), str(p), int(n), int(a)) for k, p, n, a in rows]


# -- billing_accounts ----------------------------------------------------------------------------------


def state(tx: Tx, account_id: int) -> BillingState | None:
    row = tx.one(
        "SELECT balance_expires_at, low_balance_li, low_alert_armed, validity_months, topups, min_first_topup_li,"
        " min_topup_li FROM billing_accounts WHERE account_id = ?",
        (account_id,),
    )
    if row is None:
        return None
    return BillingState(
        int(row[0]) if row[0] is not None else None, int(row[1]), bool(row[2]), int(row[3]), int(row[4]),
        int(row[5]), int(row[6]),
    )  # fmt: skip


def ensure_row(tx: Tx, account_id: int) -> None:
    tx.execute(
        "INSERT INTO billing_accounts (account_id, updated_at) VALUES (?, ?) ON CONFLICT (account_id) DO NOTHING",
        (account_id, now_ms()),
    )


def record_topup(tx: Tx, account_id: int, expires_at: int | None, counted: bool) -> None:
    """After a top-up: the new validity end, and one more customer top-up when ``counted``."""
    tx.execute(
        "UPDATE billing_accounts SET balance_expires_at = ?, topups = topups + ?, updated_at = ? WHERE account_id = ?",
        (expires_at, 1 if counted else 0, now_ms(), account_id),
    )


def rearm_alert(tx: Tx, account_id: int, balance_li: int) -> None:
    """Arm the balance-low alert again when the balance is back at (or above) a set threshold."""
    tx.execute(
        "UPDATE billing_accounts SET low_alert_armed = ? WHERE account_id = ? AND low_alert_armed = ?"
        " AND low_balance_li > 0 AND low_balance_li <= ?",
        (True, account_id, False, balance_li),
    )


def claim_alert(tx: Tx, account_id: int) -> bool:
    """Disarm the balance-low alert; True for the one caller that found it armed."""
    cur = tx.execute(
        "UPDATE billing_accounts SET low_alert_armed = ? WHERE account_id = ? AND low_alert_armed = ?",
        (False, account_id, True),
    )
    return bool(cur.rowcount)


def set_alert_armed(tx: Tx, account_id: int, armed: bool) -> None:
    tx.execute("UPDATE billing_accounts SET low_alert_armed = ? WHERE account_id = ?", (armed, account_id))


def settings_row(tx: Tx, account_id: int) -> dict[str, Any] | None:
    """The settings columns plus balance_expires_at, topups and low_alert_armed; None without a row."""
    keys = (*SETTING_COLUMNS, "balance_expires_at", "topups", "low_alert_armed")
    row = tx.one(f"SELECT {', '.join(keys)} FROM billing_accounts WHERE account_id = ?", (account_id,))
    return dict(zip(keys, row, strict=True)) if row is not None else None


def update_settings(tx: Tx, account_id: int, changes: dict[str, Any]) -> None:
    """Write settings columns (names must be in SETTING_COLUMNS)."""
    if not changes:
        return
    bad = set(changes) - set(SETTING_COLUMNS)
    if bad:
        raise ValueError(f"not a billing setting: {sorted(bad)}")
    sets = ", ".join(f"{k} = ?" for k in changes)
    tx.execute(f"UPDATE billing_accounts SET {sets}, updated_at = ? WHERE account_id = ?",
               (*changes.values(), now_ms(), account_id))  # fmt: skip


def contacts_row(tx: Tx, account_id: int) -> tuple[str | None, str | None, str | None, str | None] | None:
    """(billing_email, alert_email, alert_webhook, alert_mobile), or None without a row."""
    row = tx.one(
        "SELECT billing_email, alert_email, alert_webhook, alert_mobile FROM billing_accounts WHERE account_id = ?",
        (account_id,),
    )
    return (row[0], row[1], row[2], row[3]) if row is not None else None


def balances_expired(tx: Tx, now: int) -> list[tuple[int, int]]:
    """(account id, balance_expires_at) of positive balances whose validity has ended by ``now``."""
    rows = tx.all(
        "SELECT b.account_id, b.balance_expires_at FROM billing_accounts b JOIN accounts a ON a.id = b.account_id"
        " WHERE b.balance_expires_at <= ? AND a.balance_li > 0",
        (now,),
    )
    return [(int(a), int(e)) for a, e in rows]
