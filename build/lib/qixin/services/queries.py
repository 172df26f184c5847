"""Read models for the customer API. Every query is scoped by account (invariant I4)."""

from __future__ import annotations

from typing import Any

from qixin.errors import QxError
from qixin.services.actor import Actor, UseCase
from qixin.store import reads
from qixin.store.db import Tx


def parse_id(value: str | int) -> int:
    """A message or batch id from a path: anything that is not a positive 64-bit integer is NOT_FOUND."""
    try:
        out = int(value)
    except (TypeError, ValueError) as e:
        raise QxError("NOT_FOUND") from e
    if not 0 < out < 2**63:
        raise QxError("NOT_FOUND")
    return out


def message(tx: Tx, account_id: int, message_id: str | int) -> dict[str, Any]:
    r = reads.message_row(tx, account_id, parse_id(message_id))
    if r is None:
        raise QxError("NOT_FOUND", "短信不存在")
    out = dict(zip(reads.MESSAGE_COLUMNS, r, strict=True))
    out["id"], out["batch_id"], out["refunded"] = str(out["id"]), str(out["batch_id"]), bool(out["refunded"])
    return out


def batch(tx: Tx, account_id: int, batch_id: str | int) -> dict[str, Any]:
    bid = parse_id(batch_id)
    r = reads.batch_row(tx, account_id, bid)
    if r is None:
        raise QxError("NOT_FOUND", "批次不存在")
    keys = ("id", "type", "signature", "total", "accepted", "rejected", "fee_li", "out_id", "created_at", "send_at")
    out = dict(zip(keys, r, strict=True))
    out["id"] = str(out["id"])
    out["status_counts"] = reads.batch_status_counts(tx, bid)
    return out


class Queries(UseCase):
    """What a customer (or staff for an account) reads about its messages and batches."""

    async def message(self, actor: Actor, message_id: str | int, account_id: int | None = None) -> dict[str, Any]:
        acct = actor.account_for(account_id)
        return await self.db.read_small(lambda tx: message(tx, acct, message_id))

    async def batch(self, actor: Actor, batch_id: str | int, account_id: int | None = None) -> dict[str, Any]:
        acct = actor.account_for(account_id)
        return await self.read(lambda tx: batch(tx, acct, batch_id))
