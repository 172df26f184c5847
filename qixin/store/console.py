"""Console users, login sessions and login IP ranges: the queries (SQL only here; rules in
services/console_users.py)."""

from __future__ import annotations

from typing import Any

from qixin.store.db import Tx, now_ms

# (id, kind, account_id, staff_id, name, phone, role, password_hash, must_change, failed_count, locked_until,
#  password_changed_at, totp_secret, status); a staff user's role and status are its staff row's
USER_COLUMNS = (
    "u.id, u.kind, u.account_id, u.staff_id, u.name, u.phone, COALESCE(s.role, u.role), u.password_hash,"
    " u.must_change, u.failed_count, u.locked_until, u.password_changed_at, u.totp_secret,"
    " CASE WHEN s.status IS NOT NULL AND s.status <> 'active' THEN s.status ELSE u.status END"
)
_FROM = " FROM console_users u LEFT JOIN staff s ON s.id = u.staff_id"


def insert_user(
    tx: Tx, kind: str, account_id: int | None, staff_id: int | None, name: str, phone: str, role: str,
    password_hash: str, must_change: bool,
) -> int:  # fmt: skip
    now = now_ms()
    row = tx.one(
        "INSERT INTO console_users (kind, account_id, staff_id, name, phone, role, password_hash, must_change,"
        " failed_count, locked_until, password_changed_at, status, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, 'active', ?) RETURNING id",
        (kind, account_id, staff_id, name, phone, role, password_hash, must_change, now, now),
    )
    return int(row[0])


def phone_taken(tx: Tx, phone: str) -> bool:
    return tx.one("SELECT 1 FROM console_users WHERE phone = ?", (phone,)) is not None


def user_by_phone(tx: Tx, phone: str) -> Any:
    return tx.one(f"SELECT {USER_COLUMNS}{_FROM} WHERE u.phone = ?", (phone,))


def user_by_id(tx: Tx, user_id: int) -> Any:
    return tx.one(f"SELECT {USER_COLUMNS}{_FROM} WHERE u.id = ?", (user_id,))


def user_by_staff(tx: Tx, staff_id: int) -> Any:
    return tx.one(f"SELECT {USER_COLUMNS}{_FROM} WHERE u.staff_id = ?", (staff_id,))


def users(tx: Tx, account_id: int | None) -> list[Any]:
    """An account's users (None: the staff users), oldest first."""
    if account_id is None:
        return tx.all(f"SELECT {USER_COLUMNS}{_FROM} WHERE u.kind = 'staff' ORDER BY u.id")
    return tx.all(f"SELECT {USER_COLUMNS}{_FROM} WHERE u.account_id = ? ORDER BY u.id", (account_id,))


def set_failures(tx: Tx, user_id: int, count: int, locked_until: int) -> None:
    tx.execute(
        "UPDATE console_users SET failed_count = ?, locked_until = ? WHERE id = ?", (count, locked_until, user_id)
    )


def set_password(tx: Tx, user_id: int, password_hash: str, must_change: bool) -> None:
    tx.execute(
        "UPDATE console_users SET password_hash = ?, must_change = ?, password_changed_at = ? WHERE id = ?",
        (password_hash, must_change, now_ms(), user_id),
    )


def set_status(tx: Tx, user_id: int, status: str) -> bool:
    tx.execute("UPDATE console_users SET status = ? WHERE id = ?", (status, user_id))
    return tx.rowcount > 0


def set_totp(tx: Tx, user_id: int, secret: str | None) -> None:
    tx.execute("UPDATE console_users SET totp_secret = ? WHERE id = ?", (secret, user_id))


# -- sessions -------------------------------------------------------------------------------------------


def insert_session(
    tx: Tx, token_hash: str, user_id: int, stage: str, csrf: str, code_hash: str | None, code_expires_at: int,
    ip: str | None, expires_at: int,
) -> None:  # fmt: skip
    tx.execute(
        "INSERT INTO console_sessions (token_hash, user_id, stage, csrf, code_hash, code_expires_at, code_attempts,"
        " ip, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
        (token_hash, user_id, stage, csrf, code_hash, code_expires_at, ip, now_ms(), expires_at),
    )


def session_row(tx: Tx, token_hash: str) -> Any:
    """(user_id, stage, csrf, code_hash, code_expires_at, code_attempts, expires_at, view_account_id) or None."""
    return tx.one(
        "SELECT user_id, stage, csrf, code_hash, code_expires_at, code_attempts, expires_at, view_account_id"
        " FROM console_sessions WHERE token_hash = ?",
        (token_hash,),
    )


def session_attempt(tx: Tx, token_hash: str) -> None:
    tx.execute("UPDATE console_sessions SET code_attempts = code_attempts + 1 WHERE token_hash = ?", (token_hash,))


def promote_session(tx: Tx, token_hash: str, expires_at: int) -> None:
    tx.execute(
        "UPDATE console_sessions SET stage = 'full', code_hash = NULL, expires_at = ? WHERE token_hash = ?",
        (expires_at, token_hash),
    )


def set_session_view(tx: Tx, token_hash: str, account_id: int | None) -> bool:
    """A staff session starts (an account id) or stops (None) viewing a customer's console read-only."""
    tx.execute("UPDATE console_sessions SET view_account_id = ? WHERE token_hash = ?", (account_id, token_hash))
    return tx.rowcount > 0


def delete_session(tx: Tx, token_hash: str) -> bool:
    tx.execute("DELETE FROM console_sessions WHERE token_hash = ?", (token_hash,))
    return tx.rowcount > 0


def delete_user_sessions(tx: Tx, user_id: int, keep: str | None = None) -> None:
    tx.execute("DELETE FROM console_sessions WHERE user_id = ? AND token_hash <> ?", (user_id, keep or ""))


def purge_sessions(tx: Tx, now: int) -> None:
    tx.execute("DELETE FROM console_sessions WHERE expires_at < ?", (now,))


# -- login IP ranges ------------------------------------------------------------------------------------


def login_ranges(tx: Tx, account_id: int) -> tuple[str, ...]:
    r = tx.one("SELECT ranges FROM console_login_ranges WHERE account_id = ?", (account_id,))
    return tuple(x for x in (r[0] if r else "").split(",") if x)


def set_login_ranges(tx: Tx, account_id: int, ranges: tuple[str, ...]) -> None:
    tx.execute("DELETE FROM console_login_ranges WHERE account_id = ?", (account_id,))
    if ranges:
        tx.execute(
            "INSERT INTO console_login_ranges (account_id, ranges) VALUES (?, ?)", (account_id, ",".join(ranges))
        )


# -- the platform's own sending account (login codes) ----------------------------------------------------


def account_id_by_name(tx: Tx, name: str) -> int | None:
    r = tx.one("SELECT id FROM accounts WHERE name = ? ORDER BY id LIMIT 1", (name,))
    return int(r[0]) if r else None


def first_active_key(tx: Tx, account_id: int) -> str | None:
    """The app_key of the account's oldest active API key (the console sends through it)."""
    r = tx.one(
        "SELECT app_key FROM api_keys WHERE account_id = ? AND status = 'active' ORDER BY id LIMIT 1", (account_id,)
    )
    return str(r[0]) if r else None


# -- the dashboard ----------------------------------------------------------------------------------------


def recent_batches(tx: Tx, account_id: int, limit: int) -> list[dict[str, Any]]:
    """An account's latest batches, newest first (index ix_batches_account_id)."""
    keys = ("id", "type", "signature", "template_id", "total", "accepted", "rejected", "fee_li", "created_at",
            "send_at")  # fmt: skip
    rows = tx.all(
        f"SELECT {', '.join(keys)} FROM batches WHERE account_id = ? ORDER BY id DESC LIMIT ?", (account_id, limit)
    )
    return [dict(zip(keys, r, strict=True)) for r in rows]
