"""Read models the console shows that no other use case has yet: an account's recent batches."""

from __future__ import annotations

from typing import Any

from qixin.services.actor import Actor, UseCase
from qixin.store import console as store


class ConsoleViews(UseCase):
    async def recent_batches(
        self, actor: Actor, account_id: int | None = None, limit: int = 10
    ) -> list[dict[str, Any]]:
        """The latest batches of the actor's account (staff: of ``account_id``), newest first."""
        if actor.is_customer:
            actor.require("console.read")
        account = actor.account_for(account_id)
        rows = await self.read(lambda tx: store.recent_batches(tx, account, max(1, min(limit, 100))))
        for r in rows:
            r["id"] = str(r["id"])
        return rows
