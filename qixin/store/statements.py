"""Queries on ``statements`` (monthly reconciliation) and the per-period SMS totals they are built from.
No rules here (services/statements.py)."""

from __future__ import annotations

from typing import Any

import orjson

from qixin.ids import EPOCH_MS
from qixin.store.db import Tx

KEYS = (
    "id", "account_id", "period", "period_start", "period_end", "opening_li", "topups_li", "charges_li",
    "refunds_li", "expired_li", "other_li", "closing_li", "messages", "parts", "package_used", "package_expired",
    "detail", "status", "issued_at", "dispute_deadline_at", "dispute_reason", "decided_at", "emailed_at",
    "email_error",
)  # fmt: skip
_COLUMNS = ", ".join(KEYS)


def _row(r: Any) -> dict[str, Any]:
    out = dict(zip(KEYS, r, strict=True))
    out["detail"] = orjson.loads(out["detail"] or "{}")
    return out


# a message's id is taken shortly before its created_at (the accept's prepare step; a burst that borrows
# the next milliseconds runs a little ahead): the id range is widened by this much on both sides
_ID_MARGIN_MS = 600_000


def _first_id_at(ms: int) -> int:
    return max(ms - EPOCH_MS, 0) << 22  # qixin/ids.py: the creation milliseconds are the high bits


def sms_totals(tx: Tx, account_id: int, start: int, end: int) -> list[tuple[str, str, int, int, int, int]]:
    """(type, carrier, messages, parts, fee, refunded messages) of messages accepted in [start, end): a
    range of ix_messages_account_id (ids are time-ordered), then the exact created_at bounds."""
    rows = tx.all(
        "SELECT type, carrier, COUNT(*), SUM(parts), SUM(fee_li), SUM(CASE WHEN refunded THEN 1 ELSE 0 END)"
        " FROM messages WHERE account_id = ? AND id >= ? AND id < ? AND created_at >= ? AND created_at < ?"
        " GROUP BY type, carrier ORDER BY type, carrier",
        (account_id, _first_id_at(start - _ID_MARGIN_MS), _first_id_at(end + _ID_MARGIN_MS), start, end),
    )
    return [(str(t), str(c), int(n), int(p), int(f), int(r)) for t, c, n, p, f, r in rows]


def id_of(tx: Tx, account_id: int, period: str) -> int | None:
    row = tx.one("SELECT id FROM statements WHERE account_id = ? AND period = ?", (account_id, period))
    return int(row[0]) if row is not None else None


def insert(tx: Tx, s: dict[str, Any], issued_at: int, deadline: int) -> int:
    """A new 'issued' statement from the numbers of ``build``; returns its id."""
    row = tx.one(
        "INSERT INTO statements (account_id, period, period_start, period_end, opening_li, topups_li, charges_li,"
        " refunds_li, expired_li, other_li, closing_li, messages, parts, package_used, package_expired, detail,"
        " status, issued_at, dispute_deadline_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'issued', ?, ?) RETURNING id",
        (s["account_id"], s["period"], s["period_start"], s["period_end"], s["opening_li"], s["topups_li"],
         s["charges_li"], s["refunds_li"], s["expired_li"], s["other_li"], s["closing_li"], s["messages"],
         s["parts"], s["package_used"], s["package_expired"], orjson.dumps(s["detail"]).decode(), issued_at,
         deadline),
    )  # fmt: skip
    return int(row[0])


def accounts_created_before(tx: Tx, end: int) -> list[int]:
    return [int(a) for (a,) in tx.all("SELECT id FROM accounts WHERE created_at < ? ORDER BY id", (end,))]


def close_windows(tx: Tx, now: int) -> int:
    """'issued' -> 'confirmed' where the dispute deadline has passed; returns how many."""
    cur = tx.execute(
        "UPDATE statements SET status = 'confirmed', decided_at = ? WHERE status = 'issued'"
        " AND dispute_deadline_at <= ?",
        (now, now),
    )
    return int(cur.rowcount)


def one(tx: Tx, statement_id: int, account_id: int | None = None) -> dict[str, Any] | None:
    sql = f"SELECT {_COLUMNS} FROM statements WHERE id = ?"
    params: tuple[Any, ...] = (statement_id,)
    if account_id is not None:
        sql += " AND account_id = ?"
        params += (account_id,)
    r = tx.one(sql, params)
    return _row(r) if r is not None else None


def many(tx: Tx, account_id: int | None = None, period: str | None = None) -> list[dict[str, Any]]:
    sql = f"SELECT {_COLUMNS} FROM statements WHERE 1 = 1"
    params: tuple[Any, ...] = ()
    if account_id is not None:
        sql += " AND account_id = ?"
        params += (account_id,)
    if period:
        sql += " AND period = ?"
        params += (period,)
    return [_row(r) for r in tx.all(sql + " ORDER BY period DESC, account_id", params)]


def mark_disputed(tx: Tx, statement_id: int, account_id: int, reason: str, now: int) -> bool:
    """'issued' -> 'disputed' while the dispute window is open."""
    cur = tx.execute(
        "UPDATE statements SET status = 'disputed', dispute_reason = ?, decided_at = ? WHERE id = ? AND account_id = ?"
        " AND status = 'issued' AND dispute_deadline_at > ?",
        (reason, now, statement_id, account_id, now),
    )
    return bool(cur.rowcount)


def mark_confirmed(tx: Tx, statement_id: int, account_id: int, now: int) -> bool:
    cur = tx.execute(
        "UPDATE statements SET status = 'confirmed', decided_at = ? WHERE id = ? AND account_id = ?"
        " AND status = 'issued'",
        (now, statement_id, account_id),
    )
    return bool(cur.rowcount)


def record_email(tx: Tx, statement_id: int, sent_at: int | None, error: str | None) -> None:
    """The outcome of emailing a statement: sent (``sent_at``, error cleared) or the error."""
    if error is None:
        tx.execute("UPDATE statements SET emailed_at = ?, email_error = NULL WHERE id = ?", (sent_at, statement_id))
    else:
        tx.execute("UPDATE statements SET email_error = ? WHERE id = ?", (error, statement_id))
