"""Alert rules, alerts and announcements; the cheap facts the alert rules read.

Every fact query reads a small table or an indexed range: the queue's due index, the webhook outbox's
(status, next_at) index, the hourly rollups by hour, the accounts table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx

RULE_COLUMNS = "id, kind, scope, threshold, for_seconds, window_seconds, min_messages, enabled, updated_at"
ALERT_COLUMNS = "id, rule_id, kind, subject, value, message, fired_at, resolved_at, acknowledged_by, acknowledged_at"
ANN_COLUMNS = "id, kind, title, body, starts_at, ends_at, audience, status, created_by, published_at, updated_at"


# -- rules ---------------------------------------------------------------------------------------------------


def rules(tx: Tx) -> list[Any]:
    return tx.all(f"SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY id")


def rule(tx: Tx, rule_id: int) -> Any:
    return tx.one(f"SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = ?", (rule_id,))


def update_rule(
    tx: Tx, rule_id: int, threshold: int, for_seconds: int, window_seconds: int, min_messages: int, enabled: bool,
    now: int,
) -> None:  # fmt: skip
    tx.execute(
        "UPDATE alert_rules SET threshold = ?, for_seconds = ?, window_seconds = ?, min_messages = ?, enabled = ?,"
        " updated_at = ? WHERE id = ?",
        (threshold, for_seconds, window_seconds, min_messages, enabled, now, rule_id),
    )


# -- alerts --------------------------------------------------------------------------------------------------


def open_alerts(tx: Tx) -> list[Any]:
    return tx.all(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE resolved_at IS NULL ORDER BY id")


def insert_alert(tx: Tx, rule_id: int, kind: str, subject: str, value: int, message: str, now: int) -> int:
    row = tx.one(
        "INSERT INTO alerts (rule_id, kind, subject, value, message, fired_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (rule_id, kind, subject, value, message, now),
    )
    return int(row[0])


def resolve(tx: Tx, alert_id: int, now: int) -> bool:
    tx.execute("UPDATE alerts SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL", (now, alert_id))
    return tx.rowcount > 0


def alert(tx: Tx, alert_id: int) -> Any:
    return tx.one(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,))


def acknowledge(tx: Tx, alert_id: int, who: str, now: int) -> bool:
    tx.execute(
        "UPDATE alerts SET acknowledged_by = ?, acknowledged_at = ? WHERE id = ? AND acknowledged_at IS NULL",
        (who, now, alert_id),
    )
    return tx.rowcount > 0


def list_alerts(tx: Tx, state: str | None, kind: str | None, before_id: int | None, limit: int) -> list[Any]:
    """Newest first. ``state``: open (not resolved), resolved, unacknowledged, or None for all."""
    clauses: list[str] = []
    params: list[Any] = []
    if state == "open":
        clauses.append("resolved_at IS NULL")
    elif state == "resolved":
        clauses.append("resolved_at IS NOT NULL")
    elif state == "unacknowledged":
        clauses.append("acknowledged_at IS NULL")
    if kind:
        clauses.append("kind = ?")
        params.append(kind)
    if before_id is not None:
        clauses.append("id < ?")
        params.append(before_id)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return tx.all(f"SELECT {ALERT_COLUMNS} FROM alerts{where} ORDER BY id DESC LIMIT ?", (*params, limit))


# -- facts ---------------------------------------------------------------------------------------------------


def rates(tx: Tx, column: str, since_hour: int) -> list[Any]:
    """(subject value, status, messages) from the hourly rollups since ``since_hour``; ``column``: channel or
    account_id."""
    assert column in ("channel", "account_id")
    return tx.all(
        f"SELECT {column}, status, SUM(messages) FROM stats_hourly WHERE hour >= ?"
        " AND status IN ('delivered', 'undelivered', 'failed', 'expired') GROUP BY " + column + ", status",
        (since_hour,),
    )


def dead_letters(tx: Tx, since: int) -> list[Any]:
    """(account_id, count) of webhook events given up, created since ``since``."""
    return tx.all(
        "SELECT account_id, COUNT(*) FROM webhook_outbox WHERE status = 'dead' AND created_at >= ? GROUP BY account_id",
        (since,),
    )


def low_balances(tx: Tx, threshold_li: int) -> list[Any]:
    """(account_id, balance_li) of active accounts below ``threshold_li``."""
    return tx.all("SELECT id, balance_li FROM accounts WHERE status = 'active' AND balance_li < ?", (threshold_li,))


# -- announcements -------------------------------------------------------------------------------------------


def insert_announcement(
    tx: Tx, kind: str, title: str, body: str, starts_at: int, ends_at: int | None, audience: str, created_by: str,
    now: int,
) -> int:  # fmt: skip
    row = tx.one(
        "INSERT INTO announcements (kind, title, body, starts_at, ends_at, audience, status, created_by,"
        " published_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'published', ?, ?, ?) RETURNING id",
        (kind, title, body, starts_at, ends_at, audience, created_by, now, now),
    )
    return int(row[0])


def insert_audience(tx: Tx, announcement_id: int, account_ids: Sequence[int]) -> None:
    tx.executemany(
        "INSERT INTO announcement_accounts (announcement_id, account_id) VALUES (?, ?)",
        [(announcement_id, a) for a in account_ids],
    )


def audience(tx: Tx, announcement_id: int) -> list[int]:
    rows = tx.all(
        "SELECT account_id FROM announcement_accounts WHERE announcement_id = ? ORDER BY account_id",
        (announcement_id,),
    )
    return [int(r[0]) for r in rows]


def existing_accounts(tx: Tx, account_ids: Sequence[int]) -> list[int]:
    if not account_ids:
        return []
    rows = tx.all(f"SELECT id FROM accounts WHERE id IN ({tx.in_list(account_ids)})", tuple(account_ids))
    return sorted(int(r[0]) for r in rows)


def active_accounts(tx: Tx) -> list[int]:
    return [int(r[0]) for r in tx.all("SELECT id FROM accounts WHERE status = 'active' ORDER BY id")]


def announcement(tx: Tx, announcement_id: int) -> Any:
    return tx.one(f"SELECT {ANN_COLUMNS} FROM announcements WHERE id = ?", (announcement_id,))


def update_announcement(
    tx: Tx, announcement_id: int, title: str, body: str, ends_at: int | None, status: str, now: int
) -> None:
    tx.execute(
        "UPDATE announcements SET title = ?, body = ?, ends_at = ?, status = ?, updated_at = ? WHERE id = ?",
        (title, body, ends_at, status, now, announcement_id),
    )


def list_announcements(
    tx: Tx, account_id: int | None, include_withdrawn: bool, before_id: int | None, limit: int
) -> list[Any]:
    """Newest first; ``account_id``: only those addressed to it (audience all, or listed)."""
    clauses: list[str] = []
    params: list[Any] = []
    if account_id is not None:
        clauses.append(
            "(audience = 'all' OR id IN (SELECT announcement_id FROM announcement_accounts WHERE account_id = ?))"
        )
        params.append(account_id)
    if not include_withdrawn:
        clauses.append("status = 'published'")
    if before_id is not None:
        clauses.append("id < ?")
        params.append(before_id)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return tx.all(f"SELECT {ANN_COLUMNS} FROM announcements{where} ORDER BY id DESC LIMIT ?", (*params, limit))
