"""Billing use cases with an actor: what the customer API, the finance staff API and ``qixin billing``
call. Each method checks who acts (a customer sees only its own account; staff need area "money"; the
CLI operator is trusted), validates, then runs the billing rule (services/billing.py, pricing.py,
statements.py, notify.py) and, for a change, its audit row in ONE transaction (``UseCase.change``);
the price cache is dropped after a price change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qixin.services import billing, notify, pricing, statements
from qixin.services.actor import Actor, UseCase
from qixin.store.db import Database, Tx

AREA = "money"


class BillingDesk(UseCase):
    def __init__(
        self,
        db: Database,
        smtp: notify.Smtp,
        holidays: tuple[str, ...] = (),
        price_notice_ms: int = 0,
        on_price_change: Callable[[int], None] | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(db, on_change)
        self.smtp = smtp
        self.holidays = tuple(holidays)
        self.price_notice_ms = price_notice_ms
        self._on_price_change = on_price_change

    def _account(self, actor: Actor, account_id: int | None) -> int:
        return actor.account_for(account_id, AREA)

    # -- reads ------------------------------------------------------------------------------------------
    async def balance(self, actor: Actor, account_id: int | None = None) -> dict[str, Any]:
        acct = self._account(actor, account_id)
        return await self.read(lambda tx: billing.balance_view(tx, acct))

    async def account(self, actor: Actor, account_id: int) -> dict[str, Any]:
        """The finance view: balance, validity, package parts and the account's billing settings."""
        actor.require(AREA)
        return await self.read(lambda tx: billing.account_view(tx, account_id))

    async def packages(self, actor: Actor, account_id: int | None = None) -> list[dict[str, Any]]:
        acct = self._account(actor, account_id)
        return await self.read(lambda tx: billing.list_packages(tx, acct))

    async def ledger(
        self, actor: Actor, account_id: int | None = None, limit: int = 50, before_id: int | None = None
    ) -> dict[str, Any]:
        acct = self._account(actor, account_id)
        return await self.read(lambda tx: billing.ledger_page(tx, acct, limit, before_id))

    async def prices(self, actor: Actor, account_id: int | None = None) -> dict[str, Any]:
        acct = self._account(actor, account_id)
        return await self.read(lambda tx: pricing.current_prices(tx, acct))

    async def plans(self, actor: Actor, account_id: int) -> list[dict[str, Any]]:
        actor.require(AREA)
        return await self.read(lambda tx: pricing.list_plans(tx, account_id))

    async def notices(
        self, actor: Actor, account_id: int | None = None, limit: int = 50, before_id: int | None = None
    ) -> list[dict[str, Any]]:
        acct = self._account(actor, account_id)
        return await self.read(lambda tx: notify.listing(tx, acct, limit, before_id))

    async def refund_rules(self, actor: Actor) -> list[dict[str, Any]]:
        actor.require(AREA)
        return await self.read(billing.list_refund_rules)

    async def verify(self, actor: Actor) -> dict[str, Any]:
        actor.require(AREA)
        return await self.read(billing.verify)

    async def statements(
        self, actor: Actor, account_id: int | None = None, period: str | None = None
    ) -> list[dict[str, Any]]:
        """A customer's own statements; staff: every account's (or one account's), optionally of one period."""
        if actor.is_customer:
            account_id, period = self._account(actor, account_id), None
        else:
            actor.require(AREA)
        return await self.read(lambda tx: statements.listing(tx, account_id, period))

    async def statement(self, actor: Actor, statement_id: int) -> dict[str, Any]:
        """One statement with its detail (a customer's: only its own, another is NOT_FOUND)."""
        owner = self._account(actor, None) if actor.is_customer else None
        if owner is None:
            actor.require(AREA)
        return await self.read(lambda tx: statements.get(tx, statement_id, owner))

    # -- the customer's decisions on a statement ---------------------------------------------------------
    async def dispute(self, actor: Actor, statement_id: int, reason: str) -> dict[str, Any]:
        acct = self._account(actor, None)
        return await self.change(actor, "statement.dispute", f"statement:{statement_id}",
                                 lambda tx: statements.dispute(tx, acct, statement_id, reason),
                                 detail=lambda _: {"reason": reason})  # fmt: skip

    async def confirm(self, actor: Actor, statement_id: int) -> dict[str, Any]:
        acct = self._account(actor, None)
        return await self.change(
            actor, "statement.confirm", f"statement:{statement_id}",
            lambda tx: statements.confirm(tx, acct, statement_id), detail=lambda _: {},
        )  # fmt: skip

    # -- finance changes ---------------------------------------------------------------------------------
    async def topup(
        self, actor: Actor, account_id: int, amount_li: int, ref: str, note: str | None = None, operator: bool = False
    ) -> int:
        """Credit the account (``operator``: never refused for the account's minimum); the new balance."""
        actor.require(AREA)
        return await self.change(
            actor, "account.topup", f"account:{account_id}",
            lambda tx: billing.topup(tx, account_id, amount_li, ref, note, operator=operator),
        )  # fmt: skip

    async def update_settings(self, actor: Actor, account_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        actor.require(AREA)
        return await self.change(actor, "billing.settings", f"account:{account_id}",
                                 lambda tx: billing.update_settings(tx, account_id, changes))  # fmt: skip

    async def add_price_plan(
        self,
        actor: Actor,
        account_id: int,
        product: str,
        price_li: int,
        carrier: str = "",
        msg_type: str = "",
        effective_at: int | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """A price plan from ``effective_at`` (announced to the customer now); the price cache is dropped."""
        actor.require(AREA)
        by = f"staff:{actor.id}" if actor.kind == "staff" else actor.kind

        def fn(tx: Tx) -> dict[str, Any]:
            return pricing.create_plan(tx, account_id, product, price_li, carrier=carrier, msg_type=msg_type,
                                       effective_at=effective_at, note=note, created_by=by,
                                       min_notice_ms=self.price_notice_ms)  # fmt: skip

        out = await self.change(actor, "billing.price_plan", f"account:{account_id}", fn)
        if self._on_price_change is not None:
            self._on_price_change(account_id)
        return out

    async def grant_package(
        self, actor: Actor, account_id: int, kind: str, parts: int, ref: str, **options: Any
    ) -> dict[str, Any]:
        """Open a package (``options``: year, starts_at, expires_at, months, price_li, pay_from_balance, name)."""
        actor.require(AREA)
        return await self.change(
            actor, "billing.package", f"account:{account_id}",
            lambda tx: billing.grant_package(tx, account_id, kind, parts, ref, **options),
        )  # fmt: skip

    async def add_refund_rule(self, actor: Actor, kind: str, code: str, account_id: int = 0) -> dict[str, Any]:
        actor.require(AREA)
        return await self.change(actor, "billing.refund_rule.add", f"account:{account_id}",
                                 lambda tx: billing.add_refund_rule(tx, kind, code, account_id))  # fmt: skip

    async def remove_refund_rule(self, actor: Actor, rule_id: int) -> dict[str, Any]:
        actor.require(AREA)

        def fn(tx: Tx) -> dict[str, Any]:
            billing.remove_refund_rule(tx, rule_id)
            return {"id": rule_id, "deleted": True}

        return await self.change(actor, "billing.refund_rule.remove", f"refund_rule:{rule_id}", fn)

    async def remove_refund_rule_by_code(
        self, actor: Actor, kind: str, code: str, account_id: int = 0
    ) -> dict[str, Any]:
        actor.require(AREA)
        return await self.change(actor, "billing.refund_rule.remove", f"account:{account_id}",
                                 lambda tx: billing.remove_refund_rule_by_code(tx, kind, code, account_id))  # fmt: skip

    async def issue_statements(
        self, actor: Actor, period: str, account_id: int | None = None, email: bool = False
    ) -> dict[str, Any]:
        """Issue ``period``'s statements (one account, or every account): ``statements.issue_period``, the
        same rule the billing worker runs each month; with ``email`` each is then mailed."""
        actor.require(AREA)

        def fn(tx: Tx) -> dict[str, Any]:
            done = statements.issue_period(tx, period, holidays=self.holidays, account_id=account_id)
            return {"period": period, "statement_ids": [i.statement_id for i in done]}

        out = await self.change(actor, "billing.statement.issue", f"period:{period}", fn)
        if email:
            out["emailed"] = [await statements.email_statement(self.db, self.smtp, sid) for sid in out["statement_ids"]]
        return out

    async def email_statement(self, actor: Actor, statement_id: int, smtp: notify.Smtp | None = None) -> dict[str, Any]:
        actor.require(AREA)
        return await statements.email_and_report(self.db, smtp or self.smtp, statement_id)
