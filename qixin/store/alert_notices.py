"""Alert notices (the outbox of staff notices) and named leases (SQL only; rules in services/alerts.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx

NOTICE_COLUMNS = "id, alert_id, event, target, payload, status, attempts, next_at, last_error, created_at, sent_at"


def insert_notices(tx: Tx, alert_id: int, event: str, targets: Sequence[str], payload: str, now: int) -> None:
    tx.executemany(
        "INSERT INTO alert_notices (alert_id, event, target, payload, status, attempts, next_at, created_at)"
        " VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)",
        [(alert_id, event, t, payload, now, now) for t in targets],
    )


def due(tx: Tx, now: int, limit: int = 50) -> list[Any]:
    return tx.all(
        f"SELECT {NOTICE_COLUMNS} FROM alert_notices WHERE status = 'pending' AND next_at <= ? ORDER BY id LIMIT ?",
        (now, limit),
    )


def claim(tx: Tx, notice_id: int, now: int, until: int) -> bool:
    """Take a due notice for one attempt (its next_at moves to ``until``: nobody else sends it meanwhile)."""
    tx.execute(
        "UPDATE alert_notices SET next_at = ?, attempts = attempts + 1"
        " WHERE id = ? AND status = 'pending' AND next_at <= ?",
        (until, notice_id, now),
    )
    return tx.rowcount == 1


def sent(tx: Tx, notice_id: int, now: int) -> None:
    tx.execute(
        "UPDATE alert_notices SET status = 'sent', sent_at = ?, last_error = NULL WHERE id = ?", (now, notice_id)
    )


def failed(tx: Tx, notice_id: int, error: str, next_at: int | None) -> None:
    """A failed attempt: tried again at ``next_at``, or given up (dead) when None."""
    if next_at is None:
        tx.execute("UPDATE alert_notices SET status = 'dead', last_error = ? WHERE id = ?", (error[:500], notice_id))
    else:
        tx.execute(
            "UPDATE alert_notices SET next_at = ?, last_error = ? WHERE id = ?", (next_at, error[:500], notice_id)
        )


def of_alerts(tx: Tx, alert_ids: Sequence[int]) -> list[Any]:
    if not alert_ids:
        return []
    return tx.all(
        f"SELECT {NOTICE_COLUMNS} FROM alert_notices WHERE alert_id IN ({tx.in_list(alert_ids)}) ORDER BY id",
        tuple(alert_ids),
    )


def take_lease(tx: Tx, name: str, holder: str, now: int, until: int) -> bool:
    """Take the lease ``name`` (free or run out) or renew it (already ``holder``'s); False: another holds it."""
    tx.execute(
        "INSERT INTO service_leases (name, holder, until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
        " holder = excluded.holder, until = excluded.until"
        " WHERE service_leases.until < ? OR service_leases.holder = excluded.holder",
        (name, holder, until, now),
    )
    return tx.rowcount == 1


def lease_holder(tx: Tx, name: str) -> tuple[str, int] | None:
    row = tx.one("SELECT holder, until FROM service_leases WHERE name = ?", (name,))
    return (str(row[0]), int(row[1])) if row else None
