"""Staff users and the audit log: the queries (SQL only here; rules in services/staff.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qixin.store.db import Tx, now_ms


def staff_id_by_name(tx: Tx, name: str) -> int | None:
    r = tx.one("SELECT id FROM staff WHERE name = ?", (name,))
    return int(r[0]) if r else None


def insert_staff(tx: Tx, name: str, role: str, token_hash: str) -> int:
    row = tx.one(
        "INSERT INTO staff (name, role, token_hash, status, created_at) VALUES (?, ?, ?, 'active', ?) RETURNING id",
        (name, role, token_hash, now_ms()),
    )
    return int(row[0])


def active_staff_by_token(tx: Tx, token_hash: str) -> Any:
    """(id, name, role) of the active staff member with this token, or None."""
    return tx.one("SELECT id, name, role FROM staff WHERE token_hash = ? AND status = 'active'", (token_hash,))


def set_staff_status(tx: Tx, staff_id: int, status: str) -> bool:
    tx.execute("UPDATE staff SET status = ? WHERE id = ?", (status, staff_id))
    return tx.rowcount > 0


def list_staff(tx: Tx) -> list[Any]:
    return tx.all("SELECT id, name, role, status, created_at FROM staff ORDER BY id")


def insert_audit(
    tx: Tx, actor_type: str, actor_id: str, action: str, target: str, detail_json: str, ip: str | None
) -> None:
    tx.execute(
        "INSERT INTO audit_log (actor_type, actor_id, action, target, detail, ip, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (actor_type, actor_id, action, target, detail_json, ip, now_ms()),
    )


def insert_audits(tx: Tx, rows: Sequence[tuple[str, str, str, str, str, str | None]]) -> None:
    """(actor_type, actor_id, action, target, detail_json, ip) each: ``insert_audit`` of many rows."""
    at = now_ms()
    tx.executemany(
        "INSERT INTO audit_log (actor_type, actor_id, action, target, detail, ip, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(*r, at) for r in rows],
    )


def audit_page(tx: Tx, limit: int, before_id: int | None = None, action: str | None = None) -> list[Any]:
    sql = "SELECT id, actor_type, actor_id, action, target, detail, ip, created_at FROM audit_log"
    clauses: list[str] = []
    params: list[Any] = []
    if before_id:
        clauses.append("id < ?")
        params.append(before_id)
    if action:
        clauses.append("action = ?")
        params.append(action)
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    return tx.all(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
