"""Platform staff, their roles and bearer tokens, and the audit log of actions.

Rules:
- Roles: admin (everything), reviewer (signatures, templates, lexicon), finance (money: top-ups,
  prices, packages, statements), ops (channels, monitoring). ``ROLE_GRANTS`` is the one table of who
  may do what; admin passes every check.
- A token is shown once, when created; only its SHA-256 is stored.
- Every staff action that changes something writes one audit row in the same transaction.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson

from qixin.errors import QxError
from qixin.store.db import Database, Tx, now_ms

ROLES = ("admin", "reviewer", "finance", "ops")
# area -> roles allowed besides admin
ROLE_GRANTS: dict[str, frozenset[str]] = {
    "accounts.read": frozenset({"reviewer", "finance", "ops"}),
    "accounts.write": frozenset(),
    "review": frozenset({"reviewer"}),
    "compliance": frozenset({"reviewer"}),
    "money": frozenset({"finance"}),
    "channels": frozenset({"ops"}),
    "audit.read": frozenset(),
}


@dataclass(frozen=True, slots=True)
class Staff:
    id: int
    name: str
    role: str

    def may(self, area: str) -> bool:
        return self.role == "admin" or self.role in ROLE_GRANTS.get(area, frozenset())

    def require(self, area: str) -> None:
        if not self.may(area):
            raise QxError("FORBIDDEN", f"角色 {self.role} 无权执行此操作（{area}）")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_staff(tx: Tx, name: str, role: str) -> dict[str, Any]:
    if role not in ROLES:
        raise QxError("INVALID_REQUEST", f"角色必须是 {', '.join(ROLES)} 之一")
    if not name.strip():
        raise QxError("INVALID_REQUEST", "员工名称不能为空")
    if tx.one("SELECT id FROM staff WHERE name = ?", (name,)) is not None:
        raise QxError("CONFLICT", f"员工 {name} 已存在")
    token = "qxs_" + secrets.token_urlsafe(32)
    row = tx.one(
        "INSERT INTO staff (name, role, token_hash, status, created_at) VALUES (?, ?, ?, 'active', ?) RETURNING id",
        (name, role, token_hash(token), now_ms()),
    )
    audit(tx, "cli", "cli", "staff.create", f"staff:{row[0]}", {"name": name, "role": role})
    return {"staff_id": int(row[0]), "name": name, "role": role, "token": token}


def audit(
    tx: Tx, actor_type: str, actor_id: str, action: str, target: str = "", detail: dict[str, Any] | None = None,
    ip: str | None = None,
) -> None:  # fmt: skip
    tx.execute(
        "INSERT INTO audit_log (actor_type, actor_id, action, target, detail, ip, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (actor_type, actor_id, action, target, orjson.dumps(detail or {}).decode(), ip, now_ms()),
    )


class StaffDirectory:
    """Token → staff lookups with a short TTL."""

    def __init__(self, db: Database, ttl: float = 3.0) -> None:
        self.db = db
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Staff | None]] = {}

    def invalidate(self) -> None:
        self._cache.clear()

    async def by_token(self, token: str) -> Staff | None:
        h = token_hash(token)
        hit = self._cache.get(h)
        if hit and hit[0] > time.monotonic():
            return hit[1]

        def q(tx: Tx) -> Staff | None:
            r = tx.one("SELECT id, name, role FROM staff WHERE token_hash = ? AND status = 'active'", (h,))
            return Staff(int(r[0]), r[1], r[2]) if r else None

        value = await self.db.read(q)
        self._cache[h] = (time.monotonic() + self.ttl, value)
        return value
