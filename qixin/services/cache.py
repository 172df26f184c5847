"""A small time-to-live cache for read-mostly lookups (keys, signatures, templates, staff tokens)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class TtlCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._items: dict[Hashable, tuple[float, Any]] = {}

    def clear(self) -> None:
        self._items.clear()

    async def get_or_load(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        hit = self._items.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            value: T = hit[1]
            return value
        loaded = await load()
        self._items[key] = (time.monotonic() + self.ttl, loaded)
        return loaded
