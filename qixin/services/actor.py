"""Who acts, and the one way a use case changes something: a transaction with its audit row.

Rules:
- Every use case takes an ``Actor``: a customer (an API key, or later a console user, of one account),
  a staff member with a role, the operator at the command line (``cli``: trusted like an admin, because
  whoever runs ``qixin`` on the server already holds the database), or the platform itself (``system``).
- Permission is decided in the use case, by area (``domain/roles.ROLE_GRANTS``): ``Actor.require``.
  A customer acts only on its own account: ``Actor.account_for`` answers NOT_FOUND for any other, so a
  refusal never reveals whether another account's object exists (invariant I4).
- A change and its audit row are written in ONE transaction (``UseCase.change``), with secrets removed
  from the audit detail (``scrub``); caches are invalidated after the commit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from qixin.domain.roles import CUSTOMER_GRANTS, CUSTOMER_ROLES, ROLE_GRANTS
from qixin.errors import QxError
from qixin.store import staff as staff_store
from qixin.store.db import Database, Tx

T = TypeVar("T")

SECRET_KEYS = ("secret", "password", "token", "passwd", "authenticator")


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str  # customer | staff | cli | system
    id: str  # app_key, staff id, "cli", or the worker's name
    account_id: int | None = None  # the customer's account
    role: str | None = None  # the staff role, or a console user's customer role (owner, operator, …)
    ip: str | None = None
    name: str | None = None  # a person's name, for records that name who acted (lexicon versions, complaints)
    # a staff member viewing a customer's console (services/console_users.py ``start_view``): reads as the
    # account's owner, every change refused (``UseCase.change`` and ``audit``, which every write passes)
    read_only: bool = False

    @classmethod
    def customer(cls, account_id: int, app_key: str, ip: str | None = None) -> Actor:
        return cls("customer", app_key, account_id=account_id, ip=ip)

    @classmethod
    def staff(cls, staff_id: int, role: str, ip: str | None = None, name: str | None = None) -> Actor:
        return cls("staff", str(staff_id), role=role, ip=ip, name=name)

    @classmethod
    def console_user(cls, user_id: int, account_id: int, role: str, ip: str | None = None) -> Actor:
        """A customer's console user (services/console_users.py): acts on its account within its role."""
        return cls("customer", f"user:{user_id}", account_id=account_id, role=role, ip=ip)

    @classmethod
    def staff_view(cls, staff_id: int, account_id: int, ip: str | None = None, name: str | None = None) -> Actor:
        """A staff member viewing ``account_id``'s console read-only: the owner's reads, no change."""
        return cls("customer", f"staff-view:{staff_id}", account_id=account_id, role="owner", ip=ip, name=name,
                   read_only=True)  # fmt: skip

    @classmethod
    def cli(cls) -> Actor:
        return cls("cli", "cli")

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls("system", name)

    @property
    def is_customer(self) -> bool:
        return self.kind == "customer"

    def may(self, area: str) -> bool:
        if self.kind in ("cli", "system"):
            return True
        if self.kind == "staff":
            return self.role == "admin" or self.role in ROLE_GRANTS.get(area, frozenset())
        if self.role in CUSTOMER_ROLES:  # a console user of its account (domain/roles.CUSTOMER_GRANTS)
            return self.role in CUSTOMER_GRANTS.get(area, frozenset())
        return False

    def require(self, area: str) -> None:
        if not self.may(area):
            who = f"角色 {self.role}" if self.kind == "staff" else "客户"
            raise QxError("FORBIDDEN", f"{who}无权执行此操作（{area}）")

    def account_for(self, account_id: int | None, area: str = "accounts.read") -> int:
        """The account this actor acts on: a customer's own (another account is NOT_FOUND), or the one
        named by staff / the CLI, who need ``area``."""
        if self.is_customer:
            if account_id is not None and account_id != self.account_id:
                raise QxError("NOT_FOUND")
            assert self.account_id is not None
            return self.account_id
        self.require(area)
        if account_id is None:
            raise QxError("INVALID_REQUEST", "缺少账户 ID")
        return account_id


def refuse_read_only(actor: Actor) -> None:
    """READ_ONLY for a staff member viewing a customer's console: nothing may change in that view."""
    if actor.read_only:
        raise QxError("READ_ONLY", "只读查看模式：不能执行修改操作")


def scrub(detail: Any) -> Any:
    """``detail`` without secret-looking fields (at any depth), for the audit log."""
    if isinstance(detail, dict):
        return {
            k: scrub(v)
            for k, v in detail.items()
            if not (isinstance(k, str) and any(s in k.lower() for s in SECRET_KEYS))
        }
    if isinstance(detail, list | tuple):
        return [scrub(v) for v in detail]
    return detail


def audit(tx: Tx, actor: Actor, action: str, target: str = "", detail: Any = None) -> None:
    """One audit row for ``actor``'s ``action`` (secrets removed)."""
    refuse_read_only(actor)
    body = orjson.dumps(scrub(detail or {}), default=str).decode()
    staff_store.insert_audit(tx, actor.kind, actor.id, action, target, body, actor.ip)


def audit_many(tx: Tx, entries: Sequence[tuple[Actor, str, str, Any]]) -> None:
    """(actor, action, target, detail) each: ``audit`` of many rows in one round trip."""
    staff_store.insert_audits(
        tx, [(a.kind, a.id, action, target, orjson.dumps(scrub(detail or {}), default=str).decode(), a.ip)
             for a, action, target, detail in entries],
    )  # fmt: skip


class UseCase:
    """Base of the use-case classes: the database and what to invalidate after a change."""

    def __init__(self, db: Database, on_change: Callable[[], None] | None = None) -> None:
        self.db = db
        self._on_change = on_change

    async def change(
        self,
        actor: Actor,
        action: str,
        target: str | Callable[[Any], str],
        fn: Callable[[Tx], T],
        detail: Callable[[T], Any] | None = None,
    ) -> T:
        """Run ``fn`` and its audit row in one transaction; then invalidate caches."""
        refuse_read_only(actor)

        def job(tx: Tx) -> T:
            out = fn(tx)
            what = target(out) if callable(target) else target
            audit(
                tx, actor, action, what, detail(out) if detail else (out if isinstance(out, dict) else {"result": out})
            )
            return out

        result = await self.db.write(job)
        if self._on_change is not None:
            self._on_change()
        return result

    async def read(self, fn: Callable[[Tx], T]) -> T:
        return await self.db.read(fn)
