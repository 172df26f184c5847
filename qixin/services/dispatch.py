"""Dispatch: claim due queue rows, hand them to channels, store outcomes in batches.

Rules:
- Claiming pushes a row's ``due_at`` forward by the lease; the row is deleted only when the outcome
  (submitted or failed) is stored. A crash between claim and store leaves the row to come back when the
  lease runs out: at-least-once toward the carrier (invariant I1), and a message reaches a carrier twice
  only if it was in flight at the crash (I2).
- In flight = claimed and handed to a connector, outcome not yet durably stored. It never exceeds
  ``inflight_cap``: this bounds the duplicates a crash can cause.
- A live dispatcher renews the leases of what it holds (every third of the lease) — messages in flight
  and outcomes not yet stored — so a message waiting in a stalled window, or whose outcome waits for a
  database that is down, is never claimed a second time while this dispatcher lives; a claim that
  returns a message this dispatcher already holds ignores it.
- Verification before notification before marketing (``priority`` 0, 1, 2), then by due time.
- Outcomes and receipts are stored by one flush job every ``flush_interval`` (or sooner when many are
  waiting): submit results first, then failures, then receipts — so a receipt finds the submit it
  belongs to when both arrive within one flush. A receipt whose submit is not stored yet (another part
  still in flight, or the submit held by another dispatcher) is parked in ``receipt_inbox`` in the same
  transaction and applied again every ``park_retry`` seconds by whichever dispatcher runs.
- A submitted message whose final receipt is overdue by ``receipt_timeout`` (72 h by default) is expired
  by a sweep every ``sweep_interval`` (services/receipts.expire_unreceipted), in bounded batches.
- PostgreSQL: several dispatchers may run; ``FOR UPDATE SKIP LOCKED`` keeps them off each other's rows.
  SQLite: one claimer (the writer thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from qixin.services.receipts import (
    Failed,
    Receipt,
    Submitted,
    apply_receipts,
    expire_step,
    park_receipts,
    record_failures,
    record_submits,
    retry_parked,
)
from qixin.services.stats import Dims
from qixin.store import messages
from qixin.store.db import Database, Tx, now_ms

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Outgoing:
    message_id: int
    number: str
    carrier: str
    content: str
    type: str
    account_id: int
    extension: str = ""  # the account's 扩展码, appended to the channel's service code
    tried: tuple[str, ...] = ()  # channels this message was handed to (a tuple: no list per message)
    pin: str = ""  # only this channel may carry it (an interception test, services/flashtests.py)
    # the statistics bucket's fixed dimensions (stats.current_with), read at the claim: the submit's rollup
    # move then reads only the message's state
    dims: Dims | None = None


class Sink(Protocol):
    def submitted(self, item: Submitted) -> None: ...
    def failed(self, item: Failed) -> None: ...
    def abandoned(self, message_id: int) -> None: ...
    def receipt(self, item: Receipt) -> asyncio.Future[None] | None: ...


class Connector(Protocol):
    name: str

    def carries(self, carrier: str, msg_type: str) -> bool: ...
    def submit(self, item: Outgoing) -> None: ...
    async def start(self, sink: Sink) -> None: ...
    async def stop(self) -> None: ...


def claim(tx: Tx, now: int, lease_ms: int, limit: int, max_attempts: int) -> tuple[list[Outgoing], list[int]]:
    """Lease up to ``limit`` due rows; returns (messages to send, message ids out of attempts)."""
    rows = messages.claim_due(tx, now, now + lease_ms, limit)
    if not rows:
        return [], []
    exhausted = [int(r[0]) for r in rows if r[1] > max_attempts]
    wanted = [int(r[0]) for r in rows if r[1] <= max_attempts]
    out = [
        Outgoing(
            int(mid), number, carrier, content, mtype, int(account_id), ext or "", pin=pin or "",
            dims=(int(created), int(account_id), sig, int(tpl), mtype, carrier, prov, int(parts), int(fee)),
        )
        for mid, number, carrier, content, mtype, account_id, ext, pin, created, sig, tpl, prov, parts, fee
        in messages.outgoing(tx, wanted)
    ]  # fmt: skip
    return out, exhausted


def renew(tx: Tx, ids: list[int], due: int) -> None:
    """Push the lease of held messages forward (rows already deleted are simply not there)."""
    messages.renew_leases(tx, ids, due)


class Router:
    """Picks a connector for a message.

    Order of the rules: (1) the channel carries the number's carrier and the message type; (2) channels
    dedicated to the message's account, when there are any, else the shared ones; (3) channels that are
    up and not failing, else up, else any (messages then wait for the link); (4) the lowest priority
    number; (5) weighted random among those. ``exclude`` names channels already tried (failover).
    A message pinned to a channel (``Outgoing.pin``) goes to that channel or nowhere (NO_ROUTE): no
    failover, whatever it carries — an interception test asks exactly that channel.
    """

    def __init__(self, connectors: list[Connector] | None = None) -> None:
        self.connectors: list[Connector] = list(connectors or [])
        self._rng = random.Random()

    def set(self, connectors: list[Connector]) -> None:
        self.connectors = list(connectors)

    def pick(self, item: Outgoing, exclude: Collection[str] = ()) -> Connector | None:
        if item.pin:
            return next((c for c in self.connectors if c.name == item.pin and c.name not in exclude), None)
        return self._choose(self._group(item.carrier, item.type, item.account_id, exclude))

    def pick_all(self, items: Sequence[Outgoing]) -> list[Connector | None]:
        """``pick`` for each of a claimed batch: the rules run once per (carrier, type, account) of the
        batch, the weighted draw once per message."""
        memo: dict[tuple[str, str, int], tuple[list[Connector], list[int] | None]] = {}
        out: list[Connector | None] = []
        for item in items:
            if item.pin:
                out.append(self.pick(item))
                continue
            key = (item.carrier, item.type, item.account_id)
            group = memo.get(key)
            if group is None:
                group = memo[key] = self._group(*key, ())
            out.append(self._choose(group))
        return out

    def _group(
        self, carrier: str, msg_type: str, account_id: int, exclude: Collection[str]
    ) -> tuple[list[Connector], list[int] | None]:
        """The channels a message may go to after rules (1)–(4), with their weights when more than one."""
        cands = [c for c in self.connectors if c.name not in exclude and c.carries(carrier, msg_type)]
        if not cands:
            return [], None
        dedicated = [c for c in cands if account_id in _meta(c, "accounts", frozenset())]
        cands = dedicated or [c for c in cands if not _meta(c, "accounts", frozenset())]
        if not cands:
            return [], None
        healthy = [c for c in cands if getattr(c, "up", True) and not getattr(c, "failing", False)]
        healthy = healthy or [c for c in cands if getattr(c, "up", True)] or cands
        best = min(_meta(c, "priority", 100) for c in healthy)
        group = [c for c in healthy if _meta(c, "priority", 100) == best]
        if len(group) == 1:
            return group, None
        return group, [max(1, _meta(c, "weight", 1)) for c in group]

    def _choose(self, group: tuple[list[Connector], list[int] | None]) -> Connector | None:
        channels, weights = group
        if not channels:
            return None
        if weights is None:
            return channels[0]
        return self._rng.choices(channels, weights=weights)[0]


def _meta(connector: Connector, name: str, default: Any) -> Any:
    channel = getattr(connector, "channel", None)
    return getattr(channel, name, default) if channel is not None else default


class Dispatcher:
    def __init__(
        self,
        db: Database,
        router: Router,
        *,
        lease_seconds: float = 30.0,
        claim_batch: int = 1000,
        inflight_cap: int = 4000,
        flush_interval: float = 0.02,
        max_attempts: int = 10,
        idle_poll: float = 0.05,
        max_channels: int = 3,
        receipt_timeout: float = 72 * 3600.0,
        sweep_interval: float | None = None,
        sweep_batch: int = 1000,
    ) -> None:
        self.db = db
        self.router = router
        self.lease_ms = int(lease_seconds * 1000)
        self.claim_batch = claim_batch
        self.inflight_cap = inflight_cap
        self.flush_interval = flush_interval
        self.max_attempts = max_attempts
        self.idle_poll = idle_poll
        self.max_channels = max_channels  # a refused message is tried on at most this many channels
        self.receipt_timeout_ms = int(receipt_timeout * 1000)  # submitted, no final receipt: expired after
        # how often to look for those (default: a quarter of the timeout, between 0.1 s and a minute)
        self.sweep_interval = sweep_interval if sweep_interval is not None else min(60.0, max(receipt_timeout / 4, 0.1))
        self.sweep_batch = sweep_batch  # messages expired per transaction
        self._items: dict[int, Outgoing] = {}  # in flight, by message id (for failover)
        self._unstored: set[int] = set()  # outcome known, not yet stored: still ours (lease renewed)
        self.inflight = 0
        self._submitted: list[Submitted] = []
        self._failed: list[Failed] = []
        self._receipts: list[Receipt] = []
        self._receipts_stored: asyncio.Future[None] | None = None  # resolves when queued receipts are stored
        self.parked_ttl_ms = 24 * 3600 * 1000  # a parked receipt older than this is an orphan
        self.park_retry = 0.5  # seconds between re-applications of parked receipts
        self._next_park_retry = 0.0
        self._capacity = asyncio.Event()
        self._wake = asyncio.Event()
        self._flush_now = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self.stats = {
            "claimed": 0, "submitted": 0, "failed": 0, "receipts": 0, "final": 0, "abandoned": 0, "orphans": 0,
            "rerouted": 0, "parked": 0, "receipt_timeouts": 0,
        }  # fmt: skip

    # -- the sink connectors report to ------------------------------------------------------------
    def submitted(self, item: Submitted) -> None:
        out = self._items.pop(item.message_id, None)
        if out is not None and item.dims is None:
            item.dims = out.dims
        self._unstored.add(item.message_id)
        self._submitted.append(item)
        self._maybe_flush()

    def failed(self, item: Failed) -> None:
        out = self._items.pop(item.message_id, None)
        if out is not None and item.code == "SUBMIT_REJECTED" and len(out.tried) < self.max_channels:
            other = self.router.pick(out, exclude=out.tried)
            if other is not None:  # failover: the same message on another channel
                self.stats["rerouted"] += 1
                self._hand(other, out)
                return
        self._unstored.add(item.message_id)
        self._failed.append(item)
        self._maybe_flush()

    def _hand(self, connector: Connector, item: Outgoing) -> None:
        item.tried = (*item.tried, connector.name)
        self._items[item.message_id] = item
        connector.submit(item)

    def abandoned(self, message_id: int) -> None:
        """A connector gave the message up without an outcome: its lease will bring it back."""
        self._items.pop(message_id, None)
        self.inflight -= 1
        self.stats["abandoned"] += 1
        self._capacity.set()

    def receipt(self, item: Receipt) -> asyncio.Future[None]:
        """Queue a receipt; the future resolves when the flush that stores it has committed."""
        self._receipts.append(item)
        self._maybe_flush()
        if self._receipts_stored is None or self._receipts_stored.done():
            self._receipts_stored = asyncio.get_running_loop().create_future()
        return self._receipts_stored

    def _maybe_flush(self) -> None:
        # receipts are acknowledged only once stored, and a session has at most its window of them
        # outstanding: store them as soon as a useful batch waits, not only on the timer
        if len(self._receipts) >= 128 or len(self._submitted) + len(self._receipts) + len(self._failed) >= 2000:
            self._flush_now.set()

    def wake(self) -> None:
        """New work was accepted: look at the queue now instead of at the next poll."""
        self._wake.set()

    # -- loops -------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._running = True
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="dispatch-claim"),
            asyncio.create_task(self._flush_loop(), name="dispatch-flush"),
            asyncio.create_task(self._renew_loop(), name="dispatch-renew"),
            asyncio.create_task(self._sweep_loop(), name="dispatch-receipt-timeout"),
        ]

    async def stop(self) -> None:
        self._running = False
        # the flush loop is not cancelled: a flush cancelled while its job runs would put back outcomes
        # the job may still commit (then stored twice); it finishes its round and sees _running False
        flusher = [t for t in self._tasks if t.get_name() == "dispatch-flush"]
        for t in self._tasks:
            if t not in flusher:
                t.cancel()
        self._flush_now.set()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.flush()

    async def _claim_loop(self) -> None:
        while self._running:
            free = self.inflight_cap - self.inflight
            if free < min(self.claim_batch, self.inflight_cap) // 4 or free <= 0:
                self._capacity.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._capacity.wait(), 0.2)
                continue
            n = min(free, self.claim_batch)
            try:
                items, exhausted = await self.db.write(
                    functools.partial(
                        claim, now=now_ms(), lease_ms=self.lease_ms, limit=n, max_attempts=self.max_attempts
                    )
                )
            except Exception:
                log.exception("claim failed")
                await asyncio.sleep(1.0)
                continue
            now = now_ms()
            held, unstored = self._items, self._unstored
            if any(i.message_id in held or i.message_id in unstored for i in items):
                # already ours: its lease lapsed, not its life
                items = [i for i in items if i.message_id not in held and i.message_id not in unstored]
            for mid in exhausted:
                self.inflight += 1
                self.failed(Failed(mid, "NO_ROUTE", "", now))
            if not items:
                if not exhausted:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.idle_poll)
                continue
            self.stats["claimed"] += len(items)
            self.inflight += len(items)
            for item, conn in zip(items, self.router.pick_all(items), strict=True):
                if conn is None:
                    self.failed(Failed(item.message_id, "NO_ROUTE", "", now))
                else:
                    self._hand(conn, item)

    async def _renew_loop(self) -> None:
        """Keep the leases of held messages alive while their hand-off is."""
        interval = max(self.lease_ms / 3000, 0.1)
        while self._running:
            await asyncio.sleep(interval)
            held = [*self._items, *self._unstored]
            if not held:
                continue
            try:
                await self.db.write(functools.partial(renew, ids=held, due=now_ms() + self.lease_ms))
            except Exception:
                log.exception("lease renewal failed")

    async def _sweep_loop(self) -> None:
        while self._running:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.expire_unreceipted()
            except Exception:
                log.exception("receipt-timeout sweep failed; will retry")

    async def expire_unreceipted(self, max_batches: int = 100) -> int:
        """Expire messages whose receipt is overdue, in transactions of ``sweep_batch`` (bounded: at most
        ``max_batches`` per call, the rest waits for the next sweep)."""
        total = 0
        for _ in range(max_batches):
            n, more = await self.db.write(
                functools.partial(expire_step, timeout_ms=self.receipt_timeout_ms, limit=self.sweep_batch)
            )
            total += n
            if not more:  # the walk reached the cutoff (a first walk over a long history takes many steps)
                break
        self.stats["receipt_timeouts"] += total
        self.stats["final"] += total
        return total

    async def _flush_loop(self) -> None:
        while self._running:
            self._flush_now.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), self.flush_interval)
            try:
                await self.flush()
            except Exception:
                log.exception("flush failed; will retry")
                await asyncio.sleep(0.5)

    async def flush(self) -> None:
        subs, fails, recs = self._submitted, self._failed, self._receipts
        loop_now = asyncio.get_running_loop().time()
        retry = loop_now >= self._next_park_retry
        if not (subs or fails or recs or retry):
            return
        self._submitted, self._failed, self._receipts = [], [], []
        stored, self._receipts_stored = self._receipts_stored, None
        if retry:
            self._next_park_retry = loop_now + self.park_retry
        stale_before = now_ms() - self.parked_ttl_ms

        def job(tx: Tx) -> tuple[int, int, int]:
            record_submits(tx, subs)
            record_failures(tx, fails)
            finals, unmatched = apply_receipts(tx, recs)
            park_receipts(tx, unmatched)  # stored before the carrier hears "received"
            if retry:
                more, _, stale = retry_parked(tx, 1000, stale_before)
                return finals + more, len(unmatched), stale
            return finals, len(unmatched), 0

        try:
            finals, parked, stale = await self.db.write(job)
        except BaseException as exc:
            # outcomes go back in front, to be stored with the next flush; receipts are refused
            # (their deliver_sm is answered with a temporary error) and the carrier delivers them again
            self._submitted[:0], self._failed[:0] = subs, fails
            if stored is not None and not stored.done():
                stored.set_exception(exc if isinstance(exc, Exception) else RuntimeError("flush cancelled"))
                stored.exception()  # retrieved here: nobody else may look at it
            raise
        if stored is not None and not stored.done():
            stored.set_result(None)
        self.stats["parked"] += parked
        self.stats["orphans"] += stale
        done = len(subs) + len(fails)
        self._unstored.difference_update(x.message_id for x in subs)
        self._unstored.difference_update(x.message_id for x in fails)
        self.inflight -= done
        self.stats["submitted"] += len(subs)
        self.stats["failed"] += len(fails)
        self.stats["receipts"] += len(recs)
        self.stats["final"] += finals + len(fails)
        if done:
            self._capacity.set()
