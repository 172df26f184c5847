"""Uplink (MO, 上行): replies from subscribers, routed to accounts by extension code.

Rules:
- An MO arrives on a channel addressed to service code + extension (+ anything the customer appended);
  ``account_of_destination`` finds the account (the longest service code that prefixes it, then the
  longest registered extension). Unmatched MO are kept with no account, for staff to see.
- MO are stored in batches by one flush job, and the SMSC is answered only after that commit (like
  receipts), so a crash cannot lose an acknowledged reply.
- Each matched MO produces one webhook event ``{"type": "mo", …}`` for the account's callback URL, and
  every registered listener (for example compliance's opt-out on "TD") runs in the same transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from qixin.services.channels import account_of_destination
from qixin.store import uplink as store
from qixin.store import webhooks as outbox
from qixin.store.db import Database, Tx, now_ms
from qixin.tasks import cancel

log = logging.getLogger(__name__)

# (tx, account_id, source number, text) — runs inside the MO transaction
MoListener = Callable[[Tx, int, str, str], None]


@dataclass(slots=True)
class Mo:
    channel: str
    source: str
    destination: str
    text: str
    at: int


class UplinkService:
    def __init__(
        self,
        db: Database,
        service_codes: Callable[[], list[str]],
        flush_interval: float = 0.05,
        listeners: list[MoListener] | None = None,
        present_source: Callable[[Tx, int, str], str] | None = None,
    ) -> None:
        self.db = db
        self.service_codes = service_codes
        self.flush_interval = flush_interval
        self.listeners: list[MoListener] = list(listeners or [])
        # what the customer sees as the sender (privacy numbers: the account's token for it)
        self.present_source = present_source
        self._pending: list[tuple[Mo, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.stats = {"received": 0, "matched": 0, "unmatched": 0}

    def receive(self, channel: str, source: str, destination: str, text: str) -> asyncio.Future[None]:
        """Queue one MO; the future resolves once it is stored (then the SMSC may be answered)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((Mo(channel, source, destination, text, now_ms()), fut))
        self._wake.set()
        return fut

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="uplink")

    async def stop(self) -> None:
        await cancel(self._task)
        await self.flush()

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            await self._wake.wait()
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
            except Exception:
                log.exception("MO flush failed")

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        codes = self.service_codes()
        items = [m for m, _ in batch]
        try:
            matched = await self.db.write(lambda tx: self._store(tx, items, codes))
        except Exception as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
                    fut.exception()
            raise
        self.stats["received"] += len(items)
        self.stats["matched"] += matched
        self.stats["unmatched"] += len(items) - matched
        for _, fut in batch:
            if not fut.done():
                fut.set_result(None)

    def _store(self, tx: Tx, items: list[Mo], codes: list[str]) -> int:
        matched = 0
        now = now_ms()
        for mo in items:
            account_id = account_of_destination(tx, mo.destination, codes)
            mo_id = store.insert_mo(tx, account_id, mo.channel, mo.source, mo.destination, mo.text, mo.at)
            if account_id is None:
                continue
            matched += 1
            key = store.callback_key(tx, account_id)
            if key is not None:
                source = self.present_source(tx, account_id, mo.source) if self.present_source else mo.source
                payload = {
                    "type": "mo", "id": str(mo_id), "from": source, "to": mo.destination,
                    "content": mo.text, "received_at": mo.at,
                }  # fmt: skip
                outbox.insert_events(tx, [(account_id, key[0], key[1], orjson.dumps(payload).decode(), now, now)])
            for listener in self.listeners:
                listener(tx, account_id, mo.source, mo.text)
        return matched
