"""Platform staff: bearer tokens and the staff use cases (create, revoke, list).

Rules:
- Roles and their areas are the table in ``domain/roles.py`` (admin passes every check).
- A token is shown once, when created; only its SHA-256 is stored. A revoked token stops working at
  once in this process and within the directory's TTL (3 s) in every other.
- Every change is written with its audit row in one transaction (``UseCase.change``).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from qixin.domain.roles import ROLE_GRANTS, ROLES
from qixin.errors import QxError
from qixin.services.actor import Actor, UseCase
from qixin.services.actor import audit as services_audit
from qixin.store import staff as store
from qixin.store.db import Database, Tx

__all__ = ["ROLES", "ROLE_GRANTS", "Staff", "StaffDirectory", "StaffUsers", "audit", "create_staff", "token_hash"]


@dataclass(frozen=True, slots=True)
class Staff:
    id: int
    name: str
    role: str

    def actor(self, ip: str | None = None) -> Actor:
        return Actor.staff(self.id, self.role, ip, self.name)

    def may(self, area: str) -> bool:
        return self.actor().may(area)

    def require(self, area: str) -> None:
        self.actor().require(area)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_staff(tx: Tx, name: str, role: str) -> dict[str, Any]:
    """A staff member and a new bearer token (shown once)."""
    if role not in ROLES:
        raise QxError("INVALID_REQUEST", f"角色必须是 {', '.join(ROLES)} 之一")
    if not name.strip():
        raise QxError("INVALID_REQUEST", "员工名称不能为空")
    if store.staff_id_by_name(tx, name) is not None:
        raise QxError("CONFLICT", f"员工 {name} 已存在")
    token = "qxs_" + secrets.token_urlsafe(32)
    staff_id = store.insert_staff(tx, name, role, token_hash(token))
    return {"staff_id": staff_id, "name": name, "role": role, "token": token}


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
            r = store.active_staff_by_token(tx, h)
            return Staff(int(r[0]), r[1], r[2]) if r else None

        value = await self.db.read(q)
        self._cache[h] = (time.monotonic() + self.ttl, value)
        return value


class StaffUsers(UseCase):
    """Staff use cases: create (token shown once), revoke, list."""

    async def create(self, actor: Actor, name: str, role: str) -> dict[str, Any]:
        actor.require("staff.write")
        return await self.change(
            actor, "staff.create", lambda out: f"staff:{out['staff_id']}", lambda tx: create_staff(tx, name, role),
            detail=lambda out: {"name": out["name"], "role": out["role"]},
        )  # fmt: skip

    async def revoke(self, actor: Actor, staff_id: int) -> dict[str, Any]:
        """Disable a staff member's token (the member can no longer call /admin)."""
        actor.require("staff.write")

        def job(tx: Tx) -> dict[str, Any]:
            if not store.set_staff_status(tx, staff_id, "revoked"):
                raise QxError("NOT_FOUND", "员工不存在")
            return {"staff_id": staff_id, "status": "revoked"}

        return await self.change(actor, "staff.revoke", f"staff:{staff_id}", job)

    async def listing(self, actor: Actor) -> list[dict[str, Any]]:
        actor.require("staff.write")
        rows = await self.read(store.list_staff)
        return [dict(zip(("staff_id", "name", "role", "status", "created_at"), r, strict=True)) for r in rows]

    async def audit(
        self, actor: Actor, limit: int = 100, before_id: int | None = None, action: str | None = None
    ) -> list[dict[str, Any]]:
        """The audit log, newest first."""
        actor.require("audit.read")
        limit = max(1, min(limit, 1000))
        rows = await self.read(lambda tx: store.audit_page(tx, limit, before_id, action))
        keys = ("id", "actor_type", "actor_id", "action", "target", "detail", "ip", "created_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]


def audit(
    tx: Tx, actor_type: str, actor_id: str, action: str, target: str = "", detail: dict[str, Any] | None = None,
    ip: str | None = None,
) -> None:  # fmt: skip
    """One audit row by actor type and id (secrets removed); use cases use ``services.actor.audit``."""
    services_audit(tx, Actor(actor_type, actor_id, ip=ip), action, target, detail)
