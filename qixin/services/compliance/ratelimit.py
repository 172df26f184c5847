"""Per-recipient frequency limits on the ``limits`` library: fixed windows, memory or Redis storage.

Rules (RATE_LIMITS, docs/compliance.md):
- Limits are ``limits`` items (``"1/minute;5/hour;10/day"``) counted by ``FixedWindowRateLimiter``
  semantics: one counter per (item, identifiers) key that expires with its window. Keys are the
  library's own (``item.key_for``), so ``limiter.get_window_stats`` / ``limiter.test`` see the counts.
- Storage: ``MemoryStorage`` when embedded, ``RedisStorage`` (``QIXIN_REDIS_URL``) when processes share
  the counters.
- A batch is counted in bulk: every key of every number is incremented in one pass (memory) or one
  script call per 5,000 keys (Redis: the library's ``incr_expire`` logic, looped over the keys in Lua)
  — never a round trip per number. A number with any key over its limit is refused and its increments are given back.
- Peek (previews): :meth:`RateGate.peek` answers exactly what :meth:`RateGate.reserve` would refuse at
  that moment — same keys, same windows, repeats within the batch counted as reserve counts them — against
  the stored counts plus a tally the caller keeps across its batches (what the batches already peeked
  would have kept), and never writes a counter: nothing to give back.
- Reserve, then keep or give back: the accepted numbers' increments are handed back by
  :meth:`Reservation.release` when the accept transaction does not commit (INSUFFICIENT_BALANCE,
  an idempotent replay …), so only messages actually accepted count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import repeat
from typing import Any

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, RedisStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

_CHUNK = 5_000
# The library's incr_expire script (INCRBY, EXPIRE when the key is new) for many keys in one call:
# KEYS[i] expires after ARGV[i] seconds.
_INCREMENT_LUA = """
local out = {}
for i, key in ipairs(KEYS) do
  local current = redis.call('incrby', key, 1)
  if current == 1 then redis.call('expire', key, ARGV[i]) end
  out[i] = current
end
return out
"""
# Give back one increment without re-creating an expired key (DECR on a missing key would leave -1 forever).
_RELEASE_LUA = """
for i, key in ipairs(KEYS) do
  if redis.call('exists', key) == 1 then redis.call('decrby', key, 1) end
end
return 0
"""


@lru_cache(maxsize=256)
def parse_limit(spec: str) -> tuple[RateLimitItem, ...]:
    """``"1/minute;5/hour"`` → limits items (cached; ``ValueError`` when malformed)."""
    return tuple(parse_many(spec)) if spec.strip() else ()


# One group of checks: a limits item, the identifiers of its counter before the number, and the numbers
# (each number is the last identifier of its own counter).
Group = tuple[RateLimitItem, tuple[str, ...], Sequence[str]]


@dataclass(slots=True)
class Reservation:
    gate: RateGate | None
    keys: list[tuple[str, int]] = field(default_factory=list)  # (storage key, expiry seconds)

    def release(self) -> None:
        if self.gate is not None and self.keys:
            keys, self.keys = self.keys, []
            self.gate._decrement(keys)


@lru_cache(maxsize=4096)
def _key_parts(item: RateLimitItem, ids: tuple[str, ...]) -> tuple[str, str, int]:
    """The library's key for (*ids, number) as head + number + tail, and the window's expiry: built once
    per (limit, account, signature…), not per request."""
    head, tail = item.key_for(*ids, "\x00").split("\x00")
    return head, tail, item.get_expiry()


class RateGate:
    """The frequency-limit counters of the platform (one per process, shared storage when Redis)."""

    def __init__(self, redis_url: str = "", prefix: str = "qixin-limits") -> None:
        self.storage: MemoryStorage | RedisStorage
        if redis_url:
            storage = storage_from_string(redis_url, key_prefix=prefix)
            assert isinstance(storage, RedisStorage)
            self.storage = storage
            conn: Any = storage.get_connection()
            self._release_script: Any = conn.register_script(_RELEASE_LUA)
            self._increment_script: Any = conn.register_script(_INCREMENT_LUA)
        else:
            self.storage = MemoryStorage()
        self.limiter = FixedWindowRateLimiter(self.storage)
        self._lock = threading.Lock()
        self._sweep_at = time.time() + 60

    @property
    def distributed(self) -> bool:
        return isinstance(self.storage, RedisStorage)

    def reserve(self, groups: Sequence[Group]) -> tuple[dict[str, str], Reservation]:
        """Count every number of every group; numbers over any limit → {number: the limit}; the rest stay
        reserved until the returned reservation is released (or forever, once the batch is committed)."""
        keys: list[tuple[str, int]] = []
        for item, ids, numbers in groups:
            head, tail, expiry = _key_parts(item, tuple(ids))
            keys.extend([(head + n + tail, expiry) for n in numbers])
        if not keys:
            return {}, Reservation(None)
        counts = self._increment(keys)
        refused: dict[str, str] = {}
        pos = 0
        for item, _, numbers in groups:
            amount = item.amount
            segment = counts[pos : pos + len(numbers)]
            for n in [n for n, c in zip(numbers, segment, strict=True) if c > amount]:
                refused.setdefault(n, str(item))
            pos += len(numbers)
        if not refused:
            return {}, Reservation(self, keys)
        kept: list[tuple[str, int]] = []
        given_back: list[tuple[str, int]] = []
        pos = 0
        for _, _, numbers in groups:
            for n, key in zip(numbers, keys[pos : pos + len(numbers)], strict=True):
                (given_back if n in refused else kept).append(key)
            pos += len(numbers)
        self._decrement(given_back)
        return refused, Reservation(self, kept)

    def peek(self, groups: Sequence[Group], tally: dict[str, int]) -> dict[str, str]:
        """What :meth:`reserve` would refuse now ({number: the limit}), counters untouched. ``tally`` holds
        what earlier batches of the same preview would have kept (key -> count); the numbers this batch
        would keep are added to it."""
        refused: dict[str, str] = {}
        plans: list[tuple[list[str], list[int], int]] = []
        for item, ids, numbers in groups:
            head, tail, _ = _key_parts(item, tuple(ids))
            keys = [head + n + tail for n in numbers]
            plans.append((keys, self._current(keys), item.amount))
        get, live = tally.get, self._live
        for (item, _, numbers), (keys, counts, amount) in zip(groups, plans, strict=True):
            limit = str(item)
            if len(set(numbers)) == len(numbers):
                if tally.keys().isdisjoint(keys):  # the usual case (a file's numbers are deduplicated)
                    if max(counts, default=0) < amount:
                        over = []
                    else:
                        over = [
                            n
                            for n, k, c in zip(numbers, keys, counts, strict=True)
                            if c >= amount and live(k, c) >= amount
                        ]
                else:
                    over = [n for n, k, c in zip(numbers, keys, counts, strict=True)
                            if c + get(k, 0) >= amount and live(k, c) + get(k, 0) >= amount]  # fmt: skip
            else:  # a repeat sees the increments of its earlier occurrences (reserve counts them in order)
                seen: dict[str, int] = {}
                over = []
                for n, k, c in zip(numbers, keys, counts, strict=True):
                    earlier = seen.get(k, 0)
                    seen[k] = earlier + 1
                    if c + get(k, 0) + earlier >= amount and live(k, c) + get(k, 0) + earlier >= amount:
                        over.append(n)
            for n in over:
                refused.setdefault(n, limit)
        for (_, _, numbers), (keys, _, _) in zip(groups, plans, strict=True):
            if refused:
                keys = [k for n, k in zip(numbers, keys, strict=True) if n not in refused]
            if len(set(keys)) == len(keys) and tally.keys().isdisjoint(keys):
                tally.update(dict.fromkeys(keys, 1))
            else:
                for k in keys:
                    tally[k] = get(k, 0) + 1
        return refused

    def remaining(self, item: RateLimitItem, *identifiers: str) -> int:
        return int(self.limiter.get_window_stats(item, *identifiers).remaining)

    def clear(self) -> None:
        self.storage.reset()

    def _current(self, keys: list[str]) -> list[int]:
        """The stored count of each key, read only (0 when missing). In memory a count whose window has
        ended may still be stored: :meth:`_live` tells, asked only where the count would refuse."""
        if isinstance(self.storage, RedisStorage):
            storage = self.storage
            conn: Any = storage.get_connection()
            out: list[int] = []
            for start in range(0, len(keys), _CHUNK):
                values = conn.mget([storage.prefixed_key(k) for k in keys[start : start + _CHUNK]])
                out.extend(int(v) if v is not None else 0 for v in values)
            return out
        counter = self.storage.storage
        with self._lock:
            return list(map(counter.get, keys, repeat(0))) if counter else [0] * len(keys)

    def _live(self, key: str, count: int) -> int:
        """``count`` (from :meth:`_current`) if its window has not ended, else 0 (a new window starts)."""
        if isinstance(self.storage, RedisStorage):  # Redis expires the key itself
            return count
        return count if self.storage.expirations.get(key, 0) > time.time() else 0

    # -- bulk operations, same semantics as the storage's incr (set the expiry when the key is new) --
    def _increment(self, keys: list[tuple[str, int]]) -> list[int]:
        if isinstance(self.storage, RedisStorage):
            storage = self.storage
            out: list[int] = []
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                counts = self._increment_script(
                    keys=[storage.prefixed_key(k) for k, _ in chunk], args=[e for _, e in chunk]
                )
                out.extend(int(v) for v in counts)
            return out
        mem = self.storage
        counter, expirations = mem.storage, mem.expirations
        now = time.time()
        result: list[int] = []
        with self._lock:
            for key, expiry in keys:
                if expirations.get(key, 0) <= now:
                    counter.pop(key, None)
                    expirations.pop(key, None)
                value = counter[key] + 1
                counter[key] = value
                if value == 1:
                    expirations[key] = now + expiry
                result.append(value)
            if now > self._sweep_at:
                self._sweep(now)
        return result

    def _decrement(self, keys: list[tuple[str, int]]) -> None:
        if isinstance(self.storage, RedisStorage):
            storage = self.storage
            for start in range(0, len(keys), _CHUNK):
                chunk = [storage.prefixed_key(k) for k, _ in keys[start : start + _CHUNK]]
                self._release_script(keys=chunk, args=[])
            return
        mem = self.storage
        counter = mem.storage
        with self._lock:
            for key, _ in keys:
                if key in counter:
                    counter[key] = max(counter[key] - 1, 0)

    def _sweep(self, now: float) -> None:
        """Forget expired memory counters (the storage's own timer only runs after its own incr)."""
        mem = self.storage
        assert isinstance(mem, MemoryStorage)
        for key in [k for k, at in mem.expirations.items() if at <= now]:
            mem.storage.pop(key, None)
            mem.expirations.pop(key, None)
        self._sweep_at = now + 60
