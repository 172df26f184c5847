"""Privacy numbers (c004 通信服务): recipient tokens that stand for a real number the customer never sees.

Rules:
- An account (or staff / the CLI on its behalf) registers a token for a mainland mobile number with a
  time to live (``ttl_seconds``, 60 s to 366 days): ``tk_`` + 22 random URL-safe characters, owned by
  that account only. The number is stored sealed (``SecretBox``) with a keyed hash for lookups; it is
  never written to the audit log, a log line or an answer to the customer.
- Sending: a ``to`` entry starting with ``tk_`` is resolved in the accept use case (``resolve``; no
  query at all when no entry is a token). Unknown tokens — or another account's — are refused per
  entry with TOKEN_UNKNOWN, expired ones with TOKEN_EXPIRED; a token whose number is already in the
  request is NUMBER_DUPLICATE (reported as the token). Everything after that — compliance, opt-outs,
  frequency limits, pricing, routing — works on the real number; the message row keeps the token
  (``messages.token``) and every customer read (send answer, records, search, exports, batch reports,
  receipts and their webhooks) shows the token in place of the number. Searching records by a
  number does not find tokenised messages (that would confirm which number a token stands for);
  searching by the token does.
- MO: a reply from a number the account holds a token for reaches the customer with its latest token
  (expired or not) as ``from`` (``present_source``). A "TD" (opt-out word) reply is stored by compliance
  against the real number, so later sends to the token — or to the number — are refused OPTED_OUT
  (reported as the token); the customer's own opt-out list (``GET /v1/optouts``) shows the token
  (``tokens_of``).
- Staff with ``numbers.read`` may resolve a token to its number; each resolution is audited.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qixin.domain.numbers import normalize_cn_mobile
from qixin.domain.secretbox import SecretBox
from qixin.errors import CATALOGUE, QxError
from qixin.services.actor import Actor, UseCase
from qixin.store import tokens as store
from qixin.store.db import Database, Tx, now_ms

PREFIX = "tk_"
HASH_LABEL = "token-number"
TTL_MIN, TTL_MAX = 60, 366 * 86_400


@dataclass(slots=True)
class Resolved:
    """``to`` with tokens replaced by their numbers, which number stands behind which token, refusals."""

    to: list[str]
    tokens: dict[str, str] = field(default_factory=dict)  # number -> token
    rejected: list[dict[str, str]] = field(default_factory=list)


def _reject(token: str, code: str) -> dict[str, str]:
    return {"to": token, "code": code, "message": CATALOGUE[code][1]}


def has_tokens(to: Sequence[str]) -> bool:
    return any(n.startswith(PREFIX) for n in to)


class RecipientTokens(UseCase):
    def __init__(self, db: Database, box: SecretBox) -> None:
        super().__init__(db)
        self.box = box

    def number_hash(self, number: str) -> str:
        return self.box.mac(HASH_LABEL, number)

    async def create(
        self, actor: Actor, number: Any, ttl_seconds: Any, account_id: int | None = None
    ) -> dict[str, Any]:
        """Register a token for ``number``, valid ``ttl_seconds``: {"token", "expires_at"} (ms UTC)."""
        acct = actor.account_for(account_id, "accounts.write")
        n = normalize_cn_mobile(number) if isinstance(number, str) else None
        if n is None:
            raise QxError("NUMBER_INVALID")
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or not TTL_MIN <= ttl_seconds <= TTL_MAX:
            raise QxError("INVALID_REQUEST", f"ttl_seconds 必须是 {TTL_MIN}–{TTL_MAX} 之间的整数")
        token = PREFIX + secrets.token_urlsafe(16)
        now = now_ms()
        expires = now + ttl_seconds * 1000
        sealed, digest = self.box.seal(n), self.number_hash(n)

        def write(tx: Tx) -> dict[str, Any]:
            store.insert(tx, token, acct, sealed, digest, expires, actor.id, now)
            return {"token": token, "expires_at": expires}

        # the audit detail names neither the number nor the token ("token" keys are scrubbed anyway)
        return await self.change(
            actor, "tokens.create", f"account:{acct}", write, lambda _: {"account_id": acct, "expires_at": expires}
        )

    async def resolve(self, account_id: int, to: list[str]) -> Resolved:
        """Tokens of ``to`` replaced by their numbers (the accept path; see the module rules)."""
        asked = list(dict.fromkeys(t for t in to if t.startswith(PREFIX)))
        rows = await self.db.read_small(lambda tx: store.of_account(tx, account_id, asked))
        now = now_ms()
        found = {str(t): (str(sealed), int(exp)) for t, sealed, exp in rows}
        out = Resolved([])
        seen: set[str] = set()
        for entry in to:
            if not entry.startswith(PREFIX):
                out.to.append(entry)
                n = normalize_cn_mobile(entry)
                if n is not None:
                    seen.add(n)
                continue
            hit = found.get(entry)
            if hit is None:
                out.rejected.append(_reject(entry, "TOKEN_UNKNOWN"))
                continue
            if hit[1] <= now:
                out.rejected.append(_reject(entry, "TOKEN_EXPIRED"))
                continue
            number = self.box.open(hit[0])
            if number in seen:
                out.rejected.append(_reject(entry, "NUMBER_DUPLICATE"))
                continue
            seen.add(number)
            out.to.append(number)
            out.tokens[number] = entry
        return out

    def tokens_of(self, tx: Tx, account_id: int, numbers: Sequence[str]) -> dict[str, str]:
        """{number: the account's latest token for it} for those ``numbers`` it holds a token for (expired
        ones included): lists the customer reads (its opt-outs) show the token, never the number."""
        by_hash = {self.number_hash(normalize_cn_mobile(n) or n): n for n in numbers}
        return {by_hash[h]: t for h, t in store.latest_for_hashes(tx, account_id, list(by_hash)).items()}

    def present_source(self, tx: Tx, account_id: int, number: str) -> str:
        """What the customer sees as the sender of an MO: its token for the number, if it has one."""
        n = normalize_cn_mobile(number) or number
        return store.latest_for_number(tx, account_id, self.number_hash(n)) or number

    async def reveal(self, actor: Actor, token: str) -> dict[str, Any]:
        """The number behind a token, for staff whose role may read numbers (audited)."""
        actor.require("numbers.read")
        if actor.is_customer:
            raise QxError("FORBIDDEN")

        def job(tx: Tx) -> dict[str, Any]:
            r = store.row(tx, token)
            if r is None:
                raise QxError("NOT_FOUND")
            return {"account_id": int(r[1]), "number": self.box.open(str(r[2])), "expires_at": int(r[3]),
                    "created_at": int(r[4])}  # fmt: skip

        return await self.change(
            actor, "tokens.resolve", f"token:{token[:8]}…", job, lambda out: {"account_id": out["account_id"]}
        )
