"""Nonce stores for replay protection: a nonce is accepted once per key within the time window.

The database for the embedded mode (``api_nonces``: durable, so a request replayed after a restart
within its window is still refused); Redis (``SET NX EX``) when several API processes run. The memory
store is for tests and tools that need no durability.
"""

from __future__ import annotations

import time
from typing import Protocol

from qixin.errors import QxError
from qixin.store import nonces as sql
from qixin.store.db import Database, Tx, now_ms


class NonceStore(Protocol):
    async def first_use(self, app_key: str, nonce: str, ttl: int) -> bool: ...


class MemoryNonceStore:
    def __init__(self, max_entries: int = 2_000_000) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._max = max_entries
        self._next_purge = 0.0

    async def first_use(self, app_key: str, nonce: str, ttl: int) -> bool:
        now = time.monotonic()
        if now >= self._next_purge or len(self._seen) >= self._max:
            self._seen = {k: v for k, v in self._seen.items() if v > now}
            self._next_purge = now + 10
        k = (app_key, nonce)
        exp = self._seen.get(k)
        if exp is not None and exp > now:
            return False
        self._seen[k] = now + ttl
        return True


class RedisNonceStore:
    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self._r = aioredis.from_url(url)

    async def first_use(self, app_key: str, nonce: str, ttl: int) -> bool:
        return bool(await self._r.set(f"qx:nonce:{app_key}:{nonce}", b"1", nx=True, ex=ttl))


class DatabaseNonceStore:
    """Nonces in the platform database. Each check is one conditional insert through the writer (group
    commit batches concurrent requests); every ``purge_every`` seconds the same job also deletes one
    bounded batch of expired rows (more batches follow on the next requests while a backlog remains)."""

    def __init__(self, db: Database, purge_every: float = 5.0, purge_batch: int = sql.PURGE_BATCH) -> None:
        self.db = db
        self.purge_every = purge_every
        self.purge_batch = purge_batch
        self._next_purge = 0.0

    async def first_use(self, app_key: str, nonce: str, ttl: int) -> bool:
        now = now_ms()
        purge = time.monotonic() >= self._next_purge
        if purge:
            self._next_purge = time.monotonic() + self.purge_every

        def job(tx: Tx) -> bool:
            fresh = sql.claim(tx, app_key, nonce, now, now + ttl * 1000)
            if purge and sql.purge(tx, now, self.purge_batch) >= self.purge_batch:
                self._next_purge = 0.0  # a backlog: purge again on the next request
            return fresh

        return await self.db.write(job)


class NonceClaim:
    """A request's nonce claimed INSIDE the transaction of the change the request makes (the send's
    accept job): one write and one commit per request instead of two. Used as the accept use case's
    ``guard``; ``settle`` must be called when that change did not commit, so that a refused request's
    nonce is still spent (a request refused for a reason that can pass — balance, frequency limit —
    must not succeed when replayed later)."""

    __slots__ = ("app_key", "nonce", "spent", "store", "ttl")

    def __init__(self, store: DatabaseNonceStore, app_key: str, nonce: str, ttl: int) -> None:
        self.store, self.app_key, self.nonce, self.ttl = store, app_key, nonce, ttl
        self.spent = False

    def committed(self) -> None:
        self.spent = True

    def __call__(self, tx: Tx) -> None:
        now = now_ms()
        if not sql.claim(tx, self.app_key, self.nonce, now, now + self.ttl * 1000):
            raise QxError("NONCE_REPLAYED")

    async def settle(self, error: BaseException) -> None:
        """After the change failed with ``error``: spend the nonce on its own; a nonce some other request
        already spent turns the answer into NONCE_REPLAYED."""
        if self.spent or (isinstance(error, QxError) and error.code == "NONCE_REPLAYED"):
            return
        if not await self.store.first_use(self.app_key, self.nonce, self.ttl):
            raise QxError("NONCE_REPLAYED") from error
