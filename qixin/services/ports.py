"""The customer ports' use cases, free of any protocol: bind, submit, receipts and MO owed to customers.

Rules:
- A bind is judged here (``PortDesk.login``): unknown login or wrong secret (LOGIN_INVALID), a disabled
  login (CONNECTION_DISABLED), a source IP outside the login's ranges (IP_FORBIDDEN), a frozen account
  (ACCOUNT_FROZEN), more sessions than ``max_connections`` in this process (CONNECTIONS_EXCEEDED).
  Each protocol maps these codes to its own status (gateway/ports/, docs/protocols.md).
- A submit is accepted by the SAME use case as POST /v1/sms (``AcceptService.accept``), with the
  connection's key-like principal, its message type and its signature (else the 【…】 the text carries,
  else the account's only approved signature). Concurrent submits are concurrent accept calls whose
  transactions the database writer commits in groups (store/db.py), never one commit each.
- A connection's TPS cap (``tps`` > 0): beyond it a submit is refused CONNECTION_THROTTLED before it is
  accepted. A token bucket per connection in this process, or with Redis (``redis_url``) one counter per
  connection and second shared by every process (``SharedTps``).
- A connection's daily cap (``daily_cap`` > 0, messages per Beijing day) is counted in the accept
  transaction (``connection_daily``), so it holds across processes and restarts: the accept that would
  pass it is rolled back and refused DAILY_CAP_EXCEEDED (a group is then retried one at a time).
- A long message arrives as segments (UDH 8/16-bit references, SAR TLVs or CMPP Pk_total/Pk_number):
  the segments are held until all are there, then accepted as ONE message (billed per part, screened
  as a whole). Segments missing ``part_timeout`` seconds after the first arrived: nothing is sent, the
  segments that asked for a receipt get a failure receipt (REJECTD, err PARTS_INCOMPLETE).
- Every submit the customer was answered with an id owes exactly one receipt (when it asked for one):
  a ``port_events`` row written in the accept transaction, ``waiting`` until the message is final, then
  ``ready`` (in the transaction that makes the message final: services/receipts.py; the pump's periodic
  ``finalise`` is the safety net, and drops the failures-only receipts of delivered messages); rows are
  deleted once the customer acknowledged them, so a receipt with no receiving session bound waits for
  the next bind (any process). MO for an account with direct connections are
  written as ``ready`` rows by an uplink listener, in the MO transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from qixin.domain.numbers import normalize_cn_mobile
from qixin.errors import QxError
from qixin.services.accept import AcceptService, Prepared
from qixin.services.connections import Connection, ConnectionDirectory
from qixin.services.receipts import FINAL, receipt_stat
from qixin.store import connections as store
from qixin.store.db import Database, Tx, now_ms
from qixin.tasks import cancel

log = logging.getLogger("qixin.ports")
SHANGHAI = ZoneInfo("Asia/Shanghai")

FRESH = 0.5  # seconds a submit may use the login as looked up by an earlier one


@dataclass(slots=True)
class Segment:
    """One submit as the customer sent it (one part of a long message, or a whole short one)."""

    customer_id: str  # the id the customer is answered with (SMPP message_id, CMPP Msg_Id)
    source: str
    destinations: tuple[str, ...]
    text: str
    ref: int | None = None  # concatenation: reference (None: not segmented), total, number
    total: int = 1
    number: int = 1
    receipt: int = 0  # 0 none, 1 always, 2 failures only
    at: int = field(default_factory=now_ms)


@dataclass(slots=True)
class Event:
    """A receipt or MO owed to a customer (a ``port_events`` row)."""

    id: int
    account_id: int
    connection_id: int | None
    kind: str
    customer_id: str
    source: str
    destination: str
    content: str
    stat: str
    err: str
    submitted_at: int
    done_at: int


class SharedTps:
    """A TPS cap shared by every process (Redis): a counter per connection and second (INCR + EXPIRE in one
    round trip), so N processes together admit at most ``tps`` submits per second for one login."""

    def __init__(self, redis_url: str, prefix: str = "qixin-ports") -> None:
        import redis.asyncio as aioredis

        self.redis = aioredis.Redis.from_url(redis_url)
        self.prefix = prefix

    async def take(self, connection_id: int, tps: int) -> bool:
        key = f"{self.prefix}:tps:{connection_id}:{int(time.time())}"
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, 2)
        count, _ = await pipe.execute()
        return int(count) <= tps

    async def close(self) -> None:
        await self.redis.aclose()


class TokenBucket:
    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.tokens = float(rate)
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(float(self.rate), self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def finalise_waiting(tx: Tx, limit: int) -> int:
    """``PortDesk.finalise``'s transaction: at most ``limit`` waiting receipts of final messages, oldest first,
    become ready with the stat and err told to the customer; failures-only ones of a delivered message are
    deleted (nothing is owed). Returns how many changed."""
    rows = store.final_waiting(tx, sorted(FINAL), limit)
    if not rows:
        return 0
    drop = [int(r[0]) for r in rows if r[1] and r[2] == "delivered"]
    ready = []
    for r in rows:
        if r[1] and r[2] == "delivered":
            continue
        stat, err = receipt_stat(r[2], r[3], r[4], r[5])
        ready.append((stat, err, r[6], int(r[0])))
    store.delete_events(tx, drop)
    store.set_ready(tx, ready)
    return len(rows)


def split_signature(text: str) -> tuple[str | None, str]:
    """The 【signature】 a text carries at its start or end (None if none) and the text to accept (a
    signature at the end moves to the start, where accept puts it)."""
    if text.startswith("【"):
        end = text.find("】")
        if 1 < end <= 31:
            return text[1:end], text
    if text.endswith("】"):
        start = text.rfind("【")
        if start >= 0 and len(text) - start - 2 <= 30 and len(text) - start > 2:
            return text[start + 1 : -1], text[:start]
    return None, text


@dataclass(slots=True)
class _Group:
    conn: Connection
    items: list[tuple[Segment, Outcome]] = field(default_factory=list)
    numbers: set[str] = field(default_factory=set)


# what a grouped submit's outcome is given to: a future (``submit``), or a plain callback called with None
# (accepted) or the exception (``submit_soon``: no future, no loop round per submit)
Outcome = asyncio.Future[None] | Callable[[BaseException | None], None]


def _settle(target: Outcome, exc: BaseException | None) -> None:
    if not isinstance(target, asyncio.Future):
        try:
            target(exc)
        except Exception:
            log.exception("ports: answering a submit failed")
        return
    if target.done():
        return
    if exc is None:
        target.set_result(None)
    else:
        target.set_exception(exc)


class PortDesk:
    """What every customer port does, whatever its protocol (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        accept: AcceptService,
        directory: ConnectionDirectory,
        *,
        part_timeout: float = 60.0,
        sweep_interval: float = 1.0,
        group_wait: float = 0.002,
        group_max: int = 1000,
        inflight_max: int = 2,
        redis_url: str = "",
        redis_prefix: str = "qixin-ports",
    ) -> None:
        self.db = db
        self.accept_service = accept
        self.directory = directory
        self.part_timeout = part_timeout
        self.sweep_interval = sweep_interval
        self.sessions: dict[int, int] = {}  # connection id -> bound sessions in this process
        self._buckets: dict[int, TokenBucket] = {}
        self._redis_url = redis_url
        self._redis_prefix = redis_prefix
        self._shared: SharedTps | None = None  # with Redis: the TPS cap is counted across processes
        # (connection id, source, destinations, ref, total) -> (first arrival (monotonic), connection, segments)
        self._parts: dict[tuple[Any, ...], tuple[float, Connection, dict[int, Segment]]] = {}
        self._task: asyncio.Task[None] | None = None
        self.group_wait = group_wait
        self.group_max = group_max
        # single-part submits waiting to be accepted together: key -> the open group
        self._groups: dict[tuple[Any, ...], _Group] = {}
        self._group_tasks: set[asyncio.Task[None]] = set()
        self.stats = {"binds": 0, "bind_refusals": 0, "submits": 0, "accepted": 0, "refused": 0, "incomplete": 0}
        # connection id -> (until (monotonic), the directory's answer): looked up again at most every
        # FRESH seconds per login instead of once per submit (the directory itself caches 3 s)
        self._fresh: dict[int, tuple[float, Connection | None]] = {}
        # (connection id, generation) -> the one lookup of that login in flight, shared by every submit
        # that needs it; ``invalidate`` starts a new generation (a lookup begun before it is not reused)
        self._lookups: dict[tuple[int, int], asyncio.Task[Connection | None]] = {}
        self._generation = 0
        # accepts of a group key in flight (at most ``inflight_max``: a group closed beyond that waits
        # for one to finish, gathering what arrives meanwhile: bigger groups when the writer is busy)
        self.inflight_max = inflight_max
        self._inflight: dict[tuple[Any, ...], int] = {}
        self._due: dict[tuple[Any, ...], _Group] = {}

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._redis_url:
            self._shared = SharedTps(self._redis_url, self._redis_prefix)
        self._task = asyncio.create_task(self._sweeper(), name="ports-sweep")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        if self._shared is not None:
            await self._shared.close()
            self._shared = None

    # -- binds ---------------------------------------------------------------------------------
    async def login(
        self, protocol: str, login: str, ip: str | None, verify: Callable[[Connection], bool]
    ) -> Connection:
        """The connection a bind may use, counted as one more session; QxError when refused."""
        try:
            conn = await self.directory.find(protocol, login)
            if conn is None:
                raise QxError("LOGIN_INVALID", unknown=True)
            if not verify(conn):
                raise QxError("LOGIN_INVALID")
            if conn.status != "active":
                raise QxError("CONNECTION_DISABLED")
            if not conn.ip_allowed(ip):
                raise QxError("IP_FORBIDDEN")
            if conn.account_status != "active":
                raise QxError("ACCOUNT_FROZEN")
            if self.sessions.get(conn.id, 0) >= conn.max_connections:
                raise QxError("CONNECTIONS_EXCEEDED")
        except QxError as e:
            self.stats["bind_refusals"] += 1
            log.info("%s bind as %r from %s refused: %s", protocol, login, ip, e.code)
            raise
        self.sessions[conn.id] = self.sessions.get(conn.id, 0) + 1
        self.stats["binds"] += 1
        self._fresh[conn.id] = (time.monotonic() + FRESH, conn)  # just looked up: the first submits need not
        return conn

    def invalidate(self) -> None:
        """Forget what was looked up (after a staff change in this process)."""
        self._generation += 1
        self._fresh.clear()
        self.directory.invalidate()

    async def _current(self, conn: Connection) -> Connection | None:
        memo = self._fresh.get(conn.id)
        if memo is not None and memo[0] > time.monotonic():
            return memo[1]
        return await self._lookup(conn)

    def _lookup(self, conn: Connection) -> asyncio.Task[Connection | None]:
        """The login looked up again: one lookup per login in flight, whatever the number of submits
        waiting for it (a burst arriving as the memo expires is one directory read, not one each)."""
        key = (conn.id, self._generation)
        task = self._lookups.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._look_up(conn, key[1]))
            self._lookups[key] = task
            task.add_done_callback(lambda t: self._looked_up(key, t))
        return task

    async def _look_up(self, conn: Connection, generation: int) -> Connection | None:
        fresh = await self.directory.find(conn.protocol, conn.login)
        if generation == self._generation:
            self._fresh[conn.id] = (time.monotonic() + FRESH, fresh)
        return fresh

    def _looked_up(self, key: tuple[int, int], task: asyncio.Task[Connection | None]) -> None:
        self._lookups.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            log.warning("ports: looking up connection %d failed: %s", key[0], task.exception())

    def logout(self, conn: Connection) -> None:
        n = self.sessions.get(conn.id, 0) - 1
        if n > 0:
            self.sessions[conn.id] = n
        else:
            self.sessions.pop(conn.id, None)

    # -- submits -------------------------------------------------------------------------------
    def throttled(self, conn: Connection) -> bool:
        """Take one submit from the connection's TPS budget in this process; True when it is used up.
        With Redis the budget is shared by every process and taken in ``submit`` instead."""
        if conn.tps <= 0 or self._shared is not None:
            return False
        bucket = self._buckets.get(conn.id)
        if bucket is None or bucket.rate != conn.tps:
            bucket = self._buckets[conn.id] = TokenBucket(conn.tps)
        return not bucket.take()

    @staticmethod
    def _usable(conn: Connection, fresh: Connection | None, seg: Segment) -> Connection:
        """The connection as looked up again, if it may still send ``seg``; QxError otherwise."""
        if fresh is None or fresh.id != conn.id:
            raise QxError("LOGIN_INVALID")
        if fresh.status != "active":
            raise QxError("CONNECTION_DISABLED")
        if any(d.startswith("tk_") for d in seg.destinations):
            # receipts and MO of the ports carry the destination as sent: a token would come back as the
            # real number behind it, so tokens are for the HTTP API only (docs/numbers.md)
            raise QxError("NUMBER_INVALID", "客户端口不支持隐私号令牌，请通过 HTTP API 发送")
        return fresh

    def submit_nowait(self, conn: Connection, seg: Segment) -> asyncio.Future[None] | None:
        """``submit`` without a coroutine for the common case (see ``submit_soon``), as the future of its
        outcome (its group's accept); None when the case is not that one (use ``submit``)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        return fut if self.submit_soon(conn, seg, fut) else None

    def submit_soon(self, conn: Connection, seg: Segment, done: Outcome) -> bool:
        """``submit`` without a coroutine for the common case — a single-part submit to one number, the
        login looked up since the bind or the last ``invalidate``, no shared TPS counter to ask —: its
        outcome (its group's accept: None, or the QxError) is given to ``done``, maybe before this
        returns (a refusal known at once); False, and nothing done, when the case is not that one (use
        ``submit``).

        A lookup older than ``FRESH`` seconds is still used while the one lookup that renews it runs
        (started here): a login disabled or an account frozen stops sending within ``FRESH`` seconds
        plus one directory lookup, and a burst of submits never waits for it."""
        if (seg.total > 1 and seg.ref is not None) or len(seg.destinations) != 1 or self.group_max <= 1:
            return False
        memo = self._fresh.get(conn.id)
        if memo is None or (conn.tps > 0 and self._shared is not None):
            return False
        if memo[0] <= time.monotonic():
            self._lookup(conn)
        self.stats["submits"] += 1
        try:
            fresh = self._usable(conn, memo[1], seg)
        except QxError as e:
            _settle(done, e)
            return True
        self._put(fresh, seg, done)
        return True

    async def submit(self, conn: Connection, seg: Segment) -> None:
        """Accept one submit (or hold a segment until its message is complete). Raises QxError when the
        message is refused; the segments answered earlier then get their failure receipts.

        The connection is looked up again (the directory's cache, 3 s, asked at most every ``FRESH``
        seconds per login): a login disabled or an account frozen after the bind stops sending without
        waiting for the session to end."""
        self.stats["submits"] += 1
        conn = self._usable(conn, await self._current(conn), seg)
        if conn.tps > 0 and self._shared is not None and not await self._shared.take(conn.id, conn.tps):
            raise QxError("CONNECTION_THROTTLED")
        if seg.ref is None or seg.total <= 1:
            if len(seg.destinations) == 1 and self.group_max > 1:
                await self._grouped(conn, seg)
            else:
                await self._accept(conn, [seg])
            return
        if not 1 <= seg.number <= seg.total:
            raise QxError("INVALID_REQUEST", "分段序号超出总段数")
        key = (conn.id, seg.source, seg.destinations, seg.ref, seg.total)
        _, _, parts = self._parts.setdefault(key, (time.monotonic(), conn, {}))
        parts[seg.number] = seg
        if len(parts) < seg.total:
            return
        del self._parts[key]
        segments = [parts[i] for i in range(1, seg.total + 1)]
        try:
            await self._accept(conn, segments)
        except QxError as e:
            others = [s for s in segments if s is not seg]
            await self._fail(conn, others, e.code)
            raise

    async def _grouped(self, conn: Connection, seg: Segment) -> None:
        """Accept a single-part submit together with the others of the same login and text that arrive
        within ``group_wait`` seconds: one accept call (one batch, one transaction) per group."""
        await self._enqueue(conn, seg)

    def _enqueue(self, conn: Connection, seg: Segment) -> asyncio.Future[None]:
        """Put a single-part submit in its open group (opening one if needed); the future of its outcome."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._put(conn, seg, fut)
        return fut

    def _put(self, conn: Connection, seg: Segment, done: Outcome) -> None:
        key = (conn.id, seg.text, seg.receipt)
        group = self._groups.get(key)
        number = normalize_cn_mobile(seg.destinations[0]) or seg.destinations[0]
        seg.destinations = (number,)  # as accept names it in its rows and refusals
        if group is not None and (number in group.numbers or len(group.items) >= self.group_max):
            self._close_group(key, force=True)
            group = None
        if group is None:
            group = self._groups[key] = _Group(conn)
            asyncio.get_running_loop().call_later(self.group_wait, self._close_group, key, group)
        group.items.append((seg, done))
        group.numbers.add(number)

    def _close_group(self, key: tuple[Any, ...], only: _Group | None = None, force: bool = False) -> None:
        group = self._groups.get(key)
        if group is None or (only is not None and group is not only):
            return
        if not force and self._inflight.get(key, 0) >= self.inflight_max:
            self._due[key] = group  # stays open, gathering, until an accept of its key finishes
            return
        del self._groups[key]
        self._due.pop(key, None)
        self._inflight[key] = self._inflight.get(key, 0) + 1
        task = asyncio.get_running_loop().create_task(self._accept_group(group))
        self._group_tasks.add(task)
        task.add_done_callback(lambda t: self._group_done(key, t))

    def _group_done(self, key: tuple[Any, ...], task: asyncio.Task[None]) -> None:
        self._group_tasks.discard(task)
        n = self._inflight.get(key, 1) - 1
        if n > 0:
            self._inflight[key] = n
        else:
            self._inflight.pop(key, None)
        due = self._due.pop(key, None)
        if due is not None:
            self._close_group(key, due)

    async def _accept_group(self, group: _Group) -> None:
        items = group.items
        if len(items) == 1:
            seg, fut = items[0]
            try:
                await self._accept(group.conn, [seg])
            except BaseException as e:
                _settle(fut, e)
            else:
                _settle(fut, None)
            return
        segs = [s for s, _ in items]
        try:
            resp = await self._accept(group.conn, segs, group=True)
        except QxError as e:
            if e.code in ("INSUFFICIENT_BALANCE", "BALANCE_EXPIRED", "DAILY_CAP_EXCEEDED", "ACCOUNT_THROTTLED"):
                # paid for whole or refused whole is the batch rule: one at a time, as many as the money allows
                for seg, fut in items:
                    try:
                        await self._accept(group.conn, [seg])
                    except BaseException as one:
                        _settle(fut, one)
                    else:
                        _settle(fut, None)
                return
            if e.code == "NO_VALID_NUMBERS" and e.detail.get("rejected"):
                refused = {r["to"]: r["code"] for r in e.detail["rejected"]}
                for seg, fut in items:
                    _settle(fut, QxError(refused.get(seg.destinations[0], "NUMBER_INVALID")))
                return
            for _, fut in items:
                _settle(fut, QxError(e.code, e.message))
            return
        except BaseException as e:
            for _, fut in items:
                _settle(fut, e)
            return
        refused = {r["to"]: r["code"] for r in resp.get("rejected") or []}
        for seg, fut in items:
            code = refused.get(seg.destinations[0])
            _settle(fut, QxError(code) if code else None)

    async def _accept(self, conn: Connection, segments: list[Segment], group: bool = False) -> dict[str, Any]:
        """One accept call: ``segments`` are the parts of one message, or (``group``) single-part
        submits of one text to one number each."""
        text = segments[0].text if group else "".join(s.text for s in segments)
        carried, content = split_signature(text)
        signature = conn.signature or carried
        if not signature:
            approved = await self.accept_service.directory.approved_signatures(conn.account_id)
            signature = next(iter(approved)) if len(approved) == 1 else ""
        first = segments[0]
        to = [s.destinations[0] for s in segments] if group else list(first.destinations)
        body = {"to": to, "content": content, "signature": signature, "type": conn.msg_type}
        wanted = [s for s in segments if s.receipt]

        def on_persist(tx: Tx, p: Prepared) -> None:
            if conn.daily_cap > 0 and p.rows:
                day = int(datetime.now(SHANGHAI).strftime("%Y%m%d"))
                if store.count_today(tx, conn.id, day, len(p.rows)) > conn.daily_cap:
                    raise QxError("DAILY_CAP_EXCEEDED", "直连账号今日发送量已达上限")  # the job is rolled back
            if not wanted:
                return
            preview = p.content[:20]
            if group:  # one submit per number: the row of its number
                number_of = {s.destinations[0]: s for s in wanted}
                pairs = [(row, number_of[row[1]]) for row in p.rows if row[1] in number_of]
                if len(pairs) < len(p.rows):  # numbers normalised by accept (86…, +86…): match by position
                    kept = {r["to"] for r in p.rejected}
                    ordered = [s for s in segments if s.destinations[0] not in kept]
                    pairs = [(row, s) for row, s in zip(p.rows, ordered, strict=False) if s.receipt]
            else:
                pairs = [(row, s) for row in p.rows for s in wanted]
            store.insert_events(
                tx,
                [
                    (conn.account_id, conn.id, "receipt", "waiting", s.receipt == 2, row[0], s.customer_id,
                     s.source, row[1], preview, None, None, s.at, None, 0)
                    for row, s in pairs
                ],
            )  # fmt: skip

        try:
            resp = await self.accept_service.accept(conn.principal, body, text.encode(), on_persist=on_persist)
        except QxError as e:
            self.stats["refused"] += 1
            if e.code == "NO_VALID_NUMBERS" and e.detail.get("rejected"):
                raise QxError(e.detail["rejected"][0]["code"]) from e
            raise
        self.stats["accepted"] += 1
        refused = resp.get("rejected") or []
        if refused and not group and wanted:  # some destinations of a multi-destination submit were refused
            for r in refused:
                await self._fail(conn, wanted, r["code"], only=(r["to"],))
        return resp

    async def _fail(
        self, conn: Connection, segments: list[Segment], code: str, only: tuple[str, ...] | None = None
    ) -> None:
        """Failure receipts (REJECTD) for segments answered with an id whose message was not sent (to
        the destinations ``only``, when given)."""
        now = now_ms()
        events = [
            (conn.account_id, conn.id, "receipt", "ready", False, None, s.customer_id, s.source, d, s.text[:20],
             "REJECTD", code[:16], s.at, now, 0)
            for s in segments
            if s.receipt
            for d in (only if only is not None else s.destinations)
        ]  # fmt: skip
        if events:
            await self.db.write(lambda tx: store.insert_events(tx, events))

    async def sweep(self) -> int:
        """Give up on long messages whose segments did not all come in time; returns how many."""
        now = time.monotonic()
        late = [k for k, (first, _, _) in self._parts.items() if now - first >= self.part_timeout]
        for k in late:
            _, conn, parts = self._parts.pop(k)
            self.stats["incomplete"] += 1
            await self._fail(conn, list(parts.values()), "PARTS_INCOMPLETE")
        return len(late)

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("ports: sweep of incomplete long messages failed")

    # -- what the customers are owed ------------------------------------------------------------
    async def finalise(self, limit: int = 2000) -> int:
        """Receipts whose message became final are ready to deliver (failures-only ones that were
        delivered are dropped); returns how many changed. The pump's periodic scan: receipts are made
        ready when their message becomes final (services/receipts.py), except failures-only ones of a
        delivered message, dropped here."""

        final = sorted(FINAL)
        if not await self.db.read(lambda tx: store.final_waiting(tx, final, 1)):
            return 0  # looked at on a reader: the writer (and the accepts it commits) is not held up
        return await self.db.write(lambda tx: finalise_waiting(tx, limit))

    async def claim(
        self, connection_ids: list[int], account_ids: list[int], lease: float = 30.0, limit: int = 1000
    ) -> list[Event]:
        if not account_ids:
            return []
        rows = await self.db.write(
            lambda tx: store.claim_ready(tx, connection_ids, account_ids, now_ms(), int(lease * 1000), limit)
        )
        return [
            Event(int(r[0]), int(r[1]), None if r[2] is None else int(r[2]), r[3], r[4], r[5], r[6], r[7],
                  r[8] or "", r[9] or "", int(r[10]), int(r[11] or r[10]))
            for r in rows
        ]  # fmt: skip

    async def settle(self, delivered: list[int], failed: list[int]) -> None:
        """Delivered events are deleted; failed ones are due again at once."""
        if not delivered and not failed:
            return

        def job(tx: Tx) -> None:
            store.delete_events(tx, delivered)
            store.release(tx, failed)

        await self.db.write(job)

    def on_mo(self, tx: Tx, account_id: int, source: str, text: str) -> None:
        """Uplink listener: an MO for an account with direct connections is owed to its sessions."""
        if not store.accounts_with_connections(tx, account_id):
            return
        now = now_ms()
        store.insert_events(
            tx, [(account_id, None, "mo", "ready", False, None, "", source, "", text, None, None, now, now, 0)]
        )
