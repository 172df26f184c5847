"""Accounts, API keys, signatures and templates, and the short-lived directory cache the API reads.

Rules:
- An account is created with a top-up (a ledger entry, never a bare balance), one approved signature
  and one API key, in one transaction.
- The directory cache holds what every request needs (key → account, approved signatures, approved
  templates) for a few seconds; balances are never cached.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from qixin.errors import QxError
from qixin.services import billing
from qixin.services.channels import extension_of
from qixin.store.db import Database, Tx, now_ms

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: int
    account_id: int
    app_key: str
    app_secret: str
    callback_url: str | None
    ip_allowlist: tuple[str, ...]
    account_status: str
    price_li: int
    allow_free_text: bool


@dataclass(frozen=True, slots=True)
class Template:
    id: int
    account_id: int
    name: str
    category: str
    content: str
    variables: dict[str, Any]
    status: str


def create_account(
    tx: Tx,
    name: str,
    signature: str,
    balance_li: int,
    price_li: int,
    callback_url: str | None = None,
    allow_free_text: bool = True,
) -> dict[str, Any]:
    if not name.strip():
        raise QxError("INVALID_REQUEST", "账户名称不能为空")
    if price_li < 0:
        raise QxError("INVALID_REQUEST", "单价不能为负")
    ts = now_ms()
    row = tx.one(
        "INSERT INTO accounts (name, status, balance_li, price_li, allow_free_text, created_at)"
        " VALUES (?, 'active', 0, ?, ?, ?) RETURNING id",
        (name, price_li, allow_free_text, ts),
    )
    account_id = int(row[0])
    if balance_li:
        billing.topup(tx, account_id, balance_li, ref=f"init-{account_id}", note="开户充值")
    if signature:
        tx.execute(
            "INSERT INTO signatures (account_id, name, status, created_at) VALUES (?, ?, 'approved', ?)",
            (account_id, signature, ts),
        )
    app_key, secret = issue_key(tx, account_id, callback_url)
    extension_of(tx, account_id)
    return {"account_id": account_id, "app_key": app_key, "app_secret": secret}


def issue_key(tx: Tx, account_id: int, callback_url: str | None = None) -> tuple[str, str]:
    app_key = "qx" + secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    tx.execute(
        "INSERT INTO api_keys (account_id, app_key, app_secret, callback_url, status, created_at)"
        " VALUES (?, ?, ?, ?, 'active', ?)",
        (account_id, app_key, secret, callback_url, now_ms()),
    )
    return app_key, secret


def set_callback(tx: Tx, app_key: str, url: str | None) -> None:
    tx.execute("UPDATE api_keys SET callback_url = ? WHERE app_key = ?", (url, app_key))
    if tx.rowcount == 0:
        raise QxError("APPKEY_INVALID")


def set_ip_allowlist(tx: Tx, app_key: str, ips: list[str]) -> None:
    tx.execute("UPDATE api_keys SET ip_allowlist = ? WHERE app_key = ?", (",".join(ips) or None, app_key))
    if tx.rowcount == 0:
        raise QxError("APPKEY_INVALID")


def add_signature(tx: Tx, account_id: int, name: str, status: str = "pending") -> int:
    row = tx.one(
        "INSERT INTO signatures (account_id, name, status, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        (account_id, name, status, now_ms()),
    )
    return int(row[0])


def review(tx: Tx, table: str, item_id: int, approve: bool, reason: str | None = None) -> None:
    if table not in ("signatures", "templates"):
        raise ValueError(table)
    tx.execute(
        f"UPDATE {table} SET status = ?, reason = ? WHERE id = ?",
        ("approved" if approve else "rejected", reason, item_id),
    )
    if tx.rowcount == 0:
        raise QxError("NOT_FOUND")


def add_template(
    tx: Tx,
    account_id: int,
    name: str,
    category: str,
    content: str,
    variables: dict[str, Any],
    status: str = "pending",
) -> int:
    if category not in ("verification", "notification", "marketing"):
        raise QxError("TYPE_INVALID")
    row = tx.one(
        "INSERT INTO templates (account_id, name, category, content, variables, status, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (account_id, name, category, content, orjson.dumps(variables).decode(), status, now_ms()),
    )
    return int(row[0])


class Directory:
    """Read-mostly lookups with a short TTL, shared by all requests of one process."""

    def __init__(self, db: Database, ttl: float = 3.0) -> None:
        self.db = db
        self.ttl = ttl
        self._cache: dict[tuple[Any, ...], tuple[float, Any]] = {}

    def invalidate(self) -> None:
        self._cache.clear()

    async def _cached(self, key: tuple[Any, ...], query: Callable[[Tx], T]) -> T:
        hit = self._cache.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        value = await self.db.read(query)
        self._cache[key] = (time.monotonic() + self.ttl, value)
        return value

    async def key(self, app_key: str) -> ApiKey | None:
        def q(tx: Tx) -> ApiKey | None:
            r = tx.one(
                "SELECT k.id, k.account_id, k.app_key, k.app_secret, k.callback_url, k.ip_allowlist,"
                " a.status, a.price_li, a.allow_free_text"
                " FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.app_key = ? AND k.status = 'active'",
                (app_key,),
            )
            if r is None:
                return None
            ips = tuple(x.strip() for x in (r[5] or "").split(",") if x.strip())
            return ApiKey(int(r[0]), int(r[1]), r[2], r[3], r[4], ips, r[6], int(r[7]), bool(r[8]))

        return await self._cached(("key", app_key), q)

    async def approved_signatures(self, account_id: int) -> frozenset[str]:
        def q(tx: Tx) -> frozenset[str]:
            rows = tx.all("SELECT name FROM signatures WHERE account_id = ? AND status = 'approved'", (account_id,))
            return frozenset(r[0] for r in rows)

        return await self._cached(("signatures", account_id), q)

    async def template(self, account_id: int, template_id: int) -> Template | None:
        def q(tx: Tx) -> Template | None:
            r = tx.one(
                "SELECT id, account_id, name, category, content, variables, status FROM templates"
                " WHERE id = ? AND account_id = ?",
                (template_id, account_id),
            )
            if r is None:
                return None
            return Template(int(r[0]), int(r[1]), r[2], r[3], r[4], orjson.loads(r[5] or "{}"), r[6])

        return await self._cached(("template", account_id, template_id), q)
