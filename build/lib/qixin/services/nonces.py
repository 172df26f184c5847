"""Nonce stores for replay protection: a nonce is accepted once per key within the time window.

In memory for the embedded single process; Redis (``SET NX EX``) when several API processes run.
"""

from __future__ import annotations

import time
from typing import Protocol


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
