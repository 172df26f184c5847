"""Freezing and unfreezing an account (staff, accounts.write): the use case behind the console's buttons.

A frozen account's sends are refused with ACCOUNT_FROZEN (services/accept.py) once the directory cache
is invalidated, which ``change`` does after the commit.
"""

from __future__ import annotations

from typing import Any

from qixin.errors import QxError
from qixin.services.actor import Actor, UseCase
from qixin.services.compliance.store import set_account_status


class AccountStatus(UseCase):
    async def set_frozen(self, actor: Actor, account_id: int, frozen: bool, reason: str) -> dict[str, Any]:
        actor.require("accounts.write")
        if frozen and not reason.strip():
            raise QxError("INVALID_REQUEST", "冻结须填写原因")
        action = "account.freeze" if frozen else "account.unfreeze"
        return await self.change(
            actor, action, f"account:{account_id}", lambda tx: set_account_status(tx, account_id, frozen, reason)
        )
