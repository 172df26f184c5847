"""Per-account flow control (c001 2(1), (9)): a TPS cap and a daily cap per account, set by staff.

Rules (docs/api.md, "Flow control"):
- Both caps count billed parts (计费条数): a 3-part long message to 2 numbers takes 6. 0 = no cap.
- The check runs inside the accept use case (services/accept.py), after the request is prepared (so
  the parts are known and refused numbers do not count) and before the accept transaction; every entry
  point that sends through accept — HTTP /v1, the Aliyun-compatible API, the customer SMPP/CMPP ports,
  file jobs — is capped the same way. ACCOUNT_THROTTLED (HTTP 429, with ``retry_after_ms``) when the
  TPS cap is hit, DAILY_CAP_EXCEEDED (429) when the day's cap would be passed; a refused request takes
  nothing.
- TPS is a GCRA (virtual scheduling) bucket: ``tps`` parts per second with a burst of one second's
  worth. A single request larger than one second's worth is admitted only when the account is idle;
  the next is admitted once that debt is paid down to one second's burst — the average never exceeds
  the cap.
- The daily cap counts parts per Asia/Shanghai calendar day (UTC+8, no DST since 1991).
- Reserve, then keep or give back: when the accept transaction does not commit (INSUFFICIENT_BALANCE,
  a replayed idempotency key, …) the parts are given back (``Ticket.release``).
- Counters live in process memory (embedded mode) or in Redis (``QIXIN_REDIS_URL``), where one Lua
  script checks and takes both caps atomically, shared by every API and port process.
- The time of a take is the taking process's clock (UTC ms): processes sharing Redis should be NTP-synced;
  a skew of a few milliseconds shifts the TPS window and the midnight boundary by as much.
- The hot path reads no database: the caps are cached per account for ``ttl`` seconds (a change by
  staff invalidates this process's cache at once, other processes within the TTL); an account with
  no caps costs a dictionary lookup.
- Any scope may be capped the same way (``FlowGate.take``): the customer ports pass their direct
  connection's caps as an extra scope (``AcceptService.accept(..., flow=[...])``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qixin.errors import QxError
from qixin.services.actor import Actor, UseCase
from qixin.services.cache import TtlCache
from qixin.store import accounts as accounts_store
from qixin.store import flow as store
from qixin.store.db import Database, Tx, now_ms

SHANGHAI_OFFSET_MS = 8 * 3_600_000
DAY_MS = 86_400_000
MAX_TPS = 1_000_000
MAX_DAILY = 10**12


def shanghai_day(at_ms: int) -> int:
    """The Asia/Shanghai calendar day of a UTC instant, as days since 1970-01-01 (Shanghai)."""
    return (at_ms + SHANGHAI_OFFSET_MS) // DAY_MS


@dataclass(frozen=True, slots=True)
class Caps:
    tps: int = 0  # billed parts per second; 0 = no cap
    daily: int = 0  # billed parts per Asia/Shanghai day; 0 = no cap

    @property
    def any(self) -> bool:
        return self.tps > 0 or self.daily > 0


NO_CAPS = Caps()


def _gcra(stored: float, now: float, n: int, tps: int) -> tuple[float | None, float]:
    """(new theoretical arrival time, 0) when ``n`` parts may go now, else (None, wait in ms)."""
    step = 1000.0 / tps
    tat = max(stored, now)
    new = tat + n * step
    if stored > now and new - now > 1000.0:
        return None, (stored - now) if n * step > 1000.0 else (new - now - 1000.0)
    return new, 0.0


def _refusal(code: int, wait_ms: float) -> QxError:
    if code == 2:
        return QxError("DAILY_CAP_EXCEEDED")
    return QxError("ACCOUNT_THROTTLED", retry_after_ms=max(1, math.ceil(wait_ms)))


class MemoryCounters:
    """The counters of one process (embedded mode)."""

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}
        self._days: dict[str, tuple[int, int]] = {}  # scope -> (Shanghai day, parts used)

    async def take(self, scope: str, n: int, caps: Caps, now: int) -> tuple[int, float]:
        day = shanghai_day(now)
        if caps.daily > 0:
            d, used = self._days.get(scope, (day, 0))
            if d != day:
                used = 0
            if used + n > caps.daily:
                return 2, 0.0
        new: float | None = None
        if caps.tps > 0:
            new, wait = _gcra(self._tat.get(scope, 0.0), float(now), n, caps.tps)
            if new is None:
                return 1, wait
            self._tat[scope] = new
        if caps.daily > 0:
            d, used = self._days.get(scope, (day, 0))
            self._days[scope] = (day, (used if d == day else 0) + n)
        return 0, 0.0

    async def give_back(self, scope: str, n: int, caps: Caps, now: int) -> None:
        if caps.daily > 0 and scope in self._days:
            d, used = self._days[scope]
            if d == shanghai_day(now):
                self._days[scope] = (d, max(0, used - n))
        if caps.tps > 0 and scope in self._tat:
            self._tat[scope] -= n * 1000.0 / caps.tps


# KEYS[1] = the scope's TAT (ms, text), KEYS[2] = its parts used today; ARGV = n, tps, daily, now (ms).
# Answers {0, 0} when taken, {1, wait ms} when throttled, {2, 0} when the daily cap would be passed.
_TAKE_LUA = """
local n = tonumber(ARGV[1]); local tps = tonumber(ARGV[2]); local daily = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if daily > 0 then
  local used = tonumber(redis.call('get', KEYS[2]) or '0')
  if used + n > daily then return {2, 0} end
end
local new = 0
if tps > 0 then
  local step = 1000.0 / tps
  local stored = tonumber(redis.call('get', KEYS[1]) or '0')
  local tat = math.max(stored, now)
  new = tat + n * step
  if stored > now and new - now > 1000.0 then
    local wait = new - now - 1000.0
    if n * step > 1000.0 then wait = stored - now end
    return {1, math.ceil(wait)}
  end
end
if daily > 0 then
  redis.call('incrby', KEYS[2], n)
  redis.call('expire', KEYS[2], 180000)
end
if tps > 0 then
  redis.call('set', KEYS[1], string.format('%.3f', new), 'PX', math.ceil(new - now) + 2000)
end
return {0, 0}
"""
# Give back what a take took (ARGV = n, tps, daily, now), never re-creating an expired counter.
_GIVE_BACK_LUA = """
local n = tonumber(ARGV[1]); local tps = tonumber(ARGV[2]); local daily = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if daily > 0 and redis.call('exists', KEYS[2]) == 1 then redis.call('decrby', KEYS[2], n) end
if tps > 0 then
  local stored = tonumber(redis.call('get', KEYS[1]) or 'nil')
  if stored then
    local back = stored - n * 1000.0 / tps
    if back <= now then redis.call('del', KEYS[1])
    else redis.call('set', KEYS[1], string.format('%.3f', back), 'PX', math.ceil(back - now) + 2000) end
  end
end
return 0
"""


class RedisCounters:
    """The counters shared by every process through Redis (distributed mode): one script call per take."""

    def __init__(self, url: str, prefix: str = "qixin-flow") -> None:
        import redis.asyncio as aioredis

        self._r = aioredis.from_url(url)
        self.prefix = prefix
        self._take = self._r.register_script(_TAKE_LUA)
        self._give = self._r.register_script(_GIVE_BACK_LUA)

    def _keys(self, scope: str, now: int) -> list[str]:
        return [f"{self.prefix}:tat:{scope}", f"{self.prefix}:day:{scope}:{shanghai_day(now)}"]

    async def take(self, scope: str, n: int, caps: Caps, now: int) -> tuple[int, float]:
        code, wait = await self._take(keys=self._keys(scope, now), args=[n, caps.tps, caps.daily, now])
        return int(code), float(wait)

    async def give_back(self, scope: str, n: int, caps: Caps, now: int) -> None:
        await self._give(keys=self._keys(scope, now), args=[n, caps.tps, caps.daily, now])

    async def close(self) -> None:
        await self._r.aclose()


Counters = MemoryCounters | RedisCounters


@dataclass(slots=True)
class Ticket:
    """What one accept took from the counters; ``release`` gives it back (once)."""

    gate: FlowGate
    taken: list[tuple[str, int, Caps, int]] = field(default_factory=list)  # (scope, parts, caps, at)

    async def release(self) -> None:
        taken, self.taken = self.taken, []
        for scope, n, caps, at in taken:
            await self.gate.counters.give_back(scope, n, caps, at)


class FlowGate:
    """Takes parts from capped scopes (``account:ID``, ``conn:ID``, …) or refuses with the cap's code."""

    def __init__(self, redis_url: str = "", prefix: str = "qixin-flow", clock: Callable[[], int] = now_ms) -> None:
        self.counters: Counters = RedisCounters(redis_url, prefix) if redis_url else MemoryCounters()
        self.clock = clock

    @property
    def shared(self) -> bool:
        return isinstance(self.counters, RedisCounters)

    async def take(self, scopes: Sequence[tuple[str, Caps]], n: int) -> Ticket:
        """Take ``n`` parts from every scope, or none of them: raises ACCOUNT_THROTTLED /
        DAILY_CAP_EXCEEDED naming the first scope that refused."""
        ticket = Ticket(self)
        if n <= 0:
            return ticket
        now = self.clock()
        for scope, caps in scopes:
            if not caps.any:
                continue
            code, wait = await self.counters.take(scope, n, caps, now)
            if code:
                await ticket.release()
                raise _refusal(code, wait)
            ticket.taken.append((scope, n, caps, now))
        return ticket

    async def close(self) -> None:
        if isinstance(self.counters, RedisCounters):
            await self.counters.close()


def _caps_dict(account_id: int, caps: Caps) -> dict[str, Any]:
    return {"account_id": account_id, "tps": caps.tps, "daily_cap": caps.daily}


def _check_cap(name: str, value: int | None, top: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top):
        raise QxError("INVALID_REQUEST", f"{name} 须为 0–{top} 的整数（0 表示不限）")


class FlowControl(UseCase):
    """Staff set an account's caps; accept asks for a ticket before it writes."""

    def __init__(self, db: Database, gate: FlowGate, ttl: float = 3.0) -> None:
        self._cache = TtlCache(ttl)
        super().__init__(db, self._cache.clear)
        self.gate = gate

    def invalidate(self) -> None:
        self._cache.clear()

    async def caps(self, account_id: int) -> Caps:
        """The account's caps (cached; NO_CAPS when staff never set them)."""

        def load(tx: Tx) -> Caps:
            row = store.caps_row(tx, account_id)
            return Caps(*row) if row else NO_CAPS

        return await self._cache.get_or_load(account_id, lambda: self.db.read(load))

    async def reserve(self, account_id: int, parts: int, extra: Sequence[tuple[str, Caps]] = ()) -> Ticket:
        """Take ``parts`` from the account (and the ``extra`` scopes, e.g. a direct connection)."""
        caps = await self.caps(account_id)
        return await self.gate.take([(f"account:{account_id}", caps), *extra], parts)

    async def get(self, actor: Actor, account_id: int | None = None) -> dict[str, Any]:
        account_id = actor.account_for(account_id)
        row = await self.read(lambda tx: store.caps_row(tx, account_id))
        return _caps_dict(account_id, Caps(*row) if row else NO_CAPS)

    async def set(
        self, actor: Actor, account_id: int, tps: int | None = None, daily_cap: int | None = None
    ) -> dict[str, Any]:
        """Set the TPS cap and/or the daily cap (parts; 0 removes a cap). Staff (accounts.write) only."""
        actor.require("accounts.write")
        _check_cap("tps", tps, MAX_TPS)
        _check_cap("daily_cap", daily_cap, MAX_DAILY)

        def job(tx: Tx) -> dict[str, Any]:
            if not accounts_store.account_exists(tx, account_id):
                raise QxError("NOT_FOUND", "账户不存在")
            old = store.caps_row(tx, account_id) or (0, 0)
            caps = Caps(old[0] if tps is None else tps, old[1] if daily_cap is None else daily_cap)
            store.upsert_caps(tx, account_id, caps.tps, caps.daily)
            return _caps_dict(account_id, caps)

        return await self.change(actor, "account.flow", f"account:{account_id}", job)
