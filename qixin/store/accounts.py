"""Accounts, API keys, signatures and templates: the queries (SQL only here; rules in services/).

Every function takes the transaction (or read cursor) ``tx`` and plain values and returns rows or plain
values. Customer-facing reads always filter by ``account_id`` (invariant I4).
"""

from __future__ import annotations

from typing import Any

from qixin.store.db import Tx, now_ms

KEY_COLUMNS = (
    "k.id, k.account_id, k.app_key, k.app_secret, k.callback_url, k.ip_allowlist, a.status, a.price_li,"
    " a.allow_free_text"
)


# -- accounts ---------------------------------------------------------------------------------------------


def insert_account(tx: Tx, name: str, price_li: int, allow_free_text: bool) -> int:
    row = tx.one(
        "INSERT INTO accounts (name, status, balance_li, price_li, allow_free_text, created_at)"
        " VALUES (?, 'active', 0, ?, ?, ?) RETURNING id",
        (name, price_li, allow_free_text, now_ms()),
    )
    return int(row[0])


def account_exists(tx: Tx, account_id: int) -> bool:
    return tx.one("SELECT 1 FROM accounts WHERE id = ?", (account_id,)) is not None


def account_row(tx: Tx, account_id: int) -> Any:
    """(id, name, status, balance_li, price_li) or None."""
    return tx.one("SELECT id, name, status, balance_li, price_li FROM accounts WHERE id = ?", (account_id,))


def list_accounts(tx: Tx) -> list[Any]:
    return tx.all("SELECT id, name, status, balance_li, price_li, created_at FROM accounts ORDER BY id")


def account_ids_created_before(tx: Tx, at: int) -> list[int]:
    return [int(a) for (a,) in tx.all("SELECT id FROM accounts WHERE created_at < ? ORDER BY id", (at,))]


# -- API keys ---------------------------------------------------------------------------------------------


def insert_key(tx: Tx, account_id: int, app_key: str, stored_secret: str, callback_url: str | None) -> int:
    row = tx.one(
        "INSERT INTO api_keys (account_id, app_key, app_secret, callback_url, status, created_at)"
        " VALUES (?, ?, ?, ?, 'active', ?) RETURNING id",
        (account_id, app_key, stored_secret, callback_url, now_ms()),
    )
    return int(row[0])


def key_row(tx: Tx, app_key: str) -> Any:
    """The active key joined with its account (KEY_COLUMNS), or None."""
    return tx.one(
        f"SELECT {KEY_COLUMNS} FROM api_keys k JOIN accounts a ON a.id = k.account_id"
        " WHERE k.app_key = ? AND k.status = 'active'",
        (app_key,),
    )


def key_account(tx: Tx, app_key: str) -> int | None:
    """The account of a key (active or not)."""
    r = tx.one("SELECT account_id FROM api_keys WHERE app_key = ?", (app_key,))
    return int(r[0]) if r else None


def key_callback(tx: Tx, app_key: str) -> tuple[int, int, str | None, str] | None:
    """(key id, account id, callback URL, status) of a key."""
    r = tx.one("SELECT id, account_id, callback_url, status FROM api_keys WHERE app_key = ?", (app_key,))
    return (int(r[0]), int(r[1]), r[2], str(r[3])) if r else None


def list_keys(tx: Tx, account_id: int) -> list[Any]:
    return tx.all(
        "SELECT app_key, callback_url, ip_allowlist, status, created_at FROM api_keys WHERE account_id = ? ORDER BY id",
        (account_id,),
    )


def update_key(tx: Tx, app_key: str, column: str, value: Any) -> bool:
    if column not in ("callback_url", "ip_allowlist", "status", "app_secret"):
        raise ValueError(column)
    tx.execute(f"UPDATE api_keys SET {column} = ? WHERE app_key = ?", (value, app_key))
    return tx.rowcount > 0


# -- signatures and templates ---------------------------------------------------------------------------


def insert_signature(tx: Tx, account_id: int, name: str, status: str) -> int:
    row = tx.one(
        "INSERT INTO signatures (account_id, name, status, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        (account_id, name, status, now_ms()),
    )
    return int(row[0])


def signature_exists(tx: Tx, account_id: int, name: str) -> bool:
    return tx.one("SELECT 1 FROM signatures WHERE account_id = ? AND name = ?", (account_id, name)) is not None


def approved_signature_names(tx: Tx, account_id: int) -> frozenset[str]:
    rows = tx.all("SELECT name FROM signatures WHERE account_id = ? AND status = 'approved'", (account_id,))
    return frozenset(r[0] for r in rows)


def list_signatures(tx: Tx, account_id: int | None = None, status: str | None = None) -> list[Any]:
    """(id, account_id, name, status, reason, created_at) rows, optionally for one account / status."""
    where, params = _where(account_id, status)
    return tx.all(f"SELECT id, account_id, name, status, reason, created_at FROM signatures{where} ORDER BY id", params)


def insert_template(
    tx: Tx, account_id: int, name: str, category: str, content: str, variables_json: str, status: str
) -> int:
    row = tx.one(
        "INSERT INTO templates (account_id, name, category, content, variables, status, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (account_id, name, category, content, variables_json, status, now_ms()),
    )
    return int(row[0])


def template_row(tx: Tx, template_id: int, account_id: int | None = None) -> Any:
    """(id, account_id, name, category, content, variables, status, reason, created_at) or None."""
    sql = (
        "SELECT id, account_id, name, category, content, variables, status, reason, created_at FROM templates"
        " WHERE id = ?"
    )
    if account_id is None:
        return tx.one(sql, (template_id,))
    return tx.one(sql + " AND account_id = ?", (template_id, account_id))


def list_templates(tx: Tx, account_id: int | None = None, status: str | None = None) -> list[Any]:
    where, params = _where(account_id, status)
    return tx.all(
        "SELECT id, account_id, name, category, content, variables, status, reason, created_at FROM templates"
        f"{where} ORDER BY id",
        params,
    )


def set_review(tx: Tx, table: str, item_id: int, status: str, reason: str | None) -> bool:
    if table not in ("signatures", "templates"):
        raise ValueError(table)
    tx.execute(f"UPDATE {table} SET status = ?, reason = ? WHERE id = ?", (status, reason, item_id))
    return tx.rowcount > 0


def _where(account_id: int | None, status: str | None) -> tuple[str, tuple[Any, ...]]:
    clauses: list[str] = []
    params: list[Any] = []
    if account_id is not None:
        clauses.append("account_id = ?")
        params.append(account_id)
    if status:
        clauses.append("status = ?")
        params.append(status)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


# -- withdrawing and amending applications (the Aliyun Delete*/Modify* actions, services/accounts.py) -------

_AMENDABLE = {"signatures": ("reason",), "templates": ("name", "category", "content", "variables", "reason")}


def reviewed_status(tx: Tx, table: str, item_id: int, account_id: int | None) -> str | None:
    """The review status of a signature or template (of ``account_id`` when given), None if absent."""
    if table not in _AMENDABLE:
        raise ValueError(table)
    sql = f"SELECT status FROM {table} WHERE id = ?"
    r = tx.one(sql, (item_id,)) if account_id is None else tx.one(sql + " AND account_id = ?", (item_id, account_id))
    return str(r[0]) if r else None


def delete_reviewed(tx: Tx, table: str, item_id: int) -> None:
    if table not in _AMENDABLE:
        raise ValueError(table)
    tx.execute(f"DELETE FROM {table} WHERE id = ?", (item_id,))


def resubmit(tx: Tx, table: str, item_id: int, changes: dict[str, Any]) -> None:
    """Back to ``pending`` with ``changes`` (columns of _AMENDABLE), for another review."""
    cols = [c for c in changes if c in _AMENDABLE[table]]
    sets = "".join(f", {c} = ?" for c in cols)
    tx.execute(f"UPDATE {table} SET status = 'pending'{sets} WHERE id = ?", (*[changes[c] for c in cols], item_id))
