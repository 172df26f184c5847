"""Sending from the console: a console user's send and the platform's own login-code SMS, both through
the one accept use case (``AcceptService.accept``, the same as POST /v1/sms).

Rules:
- A console user sends as its account, through the account's oldest active API key (its price, its
  frozen state, its callback URL): exactly what the API would do with that key. Only the roles of the
  ``console.send`` area may send (owner, operator); a viewer is refused in the use case.
- Login codes are sent from the platform's own account (``console_sms_account``; 0: the account named
  ``SYSTEM_ACCOUNT_NAME``, created on first use with signature ``console_sms_signature``, price 0), as
  verification messages, through the channels like any other message.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from qixin.errors import QxError
from qixin.services.accounts import ApiKey, Directory, create_account
from qixin.services.actor import Actor, audit
from qixin.services.compliance.store import update_policy, validate_policy_changes
from qixin.store import console as store
from qixin.store.db import Database, Tx

SYSTEM_ACCOUNT_NAME = "企信平台"
# Login codes per phone number from the platform's own account: more than a person logging in needs, few
# enough that a stolen password cannot flood a phone (the customer default is 1/minute;5/hour;10/day).
LOGIN_CODE_LIMITS = "3/minute;20/hour;50/day"


class ConsoleSender:
    def __init__(
        self, db: Database, directory: Directory, accept: Any, account_id: int = 0, signature: str = "企信"
    ) -> None:
        self.db = db
        self.directory = directory
        self.accept = accept  # services.accept.AcceptService (typed loosely: it is above us in nothing)
        self.account_id = account_id
        self.signature = signature
        self._lock = asyncio.Lock()

    async def _key(self, account_id: int) -> ApiKey:
        app_key = await self.db.read(lambda tx: store.first_active_key(tx, account_id))
        key = await self.directory.key(app_key) if app_key else None
        if key is None:
            raise QxError("APPKEY_INVALID", "账户没有可用的 API 密钥，无法发送")
        return key

    async def system_account(self) -> int:
        """The account login codes are sent from (created on first use when not configured)."""
        if self.account_id:
            return self.account_id
        async with self._lock:
            found = await self.db.read(lambda tx: store.account_id_by_name(tx, SYSTEM_ACCOUNT_NAME))
            if found is None:

                def job(tx: Tx) -> int:
                    again = store.account_id_by_name(tx, SYSTEM_ACCOUNT_NAME)
                    if again is not None:
                        return again
                    out = create_account(tx, SYSTEM_ACCOUNT_NAME, self.signature, 0, 0, box=self.directory.box)
                    limits = validate_policy_changes({"limits": {"verification": LOGIN_CODE_LIMITS}})
                    update_policy(tx, out["account_id"], limits)
                    audit(tx, Actor.system("console"), "account.create", f"account:{out['account_id']}",
                          {"name": SYSTEM_ACCOUNT_NAME, "purpose": "console login codes"})  # fmt: skip
                    return int(out["account_id"])

                found = await self.db.write(job)
            self.account_id = found
            return found

    async def send_login_code(self, phone: str, text: str) -> dict[str, Any]:
        key = await self._key(await self.system_account())
        body = {"to": phone, "content": text, "signature": self.signature, "type": "verification"}
        try:
            return dict(await self.accept.accept(key, body, orjson.dumps(body)))
        except QxError as e:
            codes = {r.get("code") for r in e.detail.get("rejected", [])}
            if "RATE_LIMITED" in codes:
                raise QxError("RATE_LIMITED", "验证码发送过于频繁，请稍后再试") from None
            raise

    async def send(self, actor: Actor, body: dict[str, Any]) -> dict[str, Any]:
        """A console user's send (single or pasted numbers, free text or template): POST /v1/sms's rules."""
        actor.require("console.send")
        account_id = actor.account_for(None)
        key = await self._key(account_id)
        return dict(await self.accept.accept(key, body, orjson.dumps(body)))
