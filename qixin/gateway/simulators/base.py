"""What every carrier simulator does the same way, whatever protocol it speaks.

Each protocol's module (smpp, cmpp, sgip, smgp) states only what differs: its statuses, message ids,
receipt and MO PDUs, logins, and how it answers a receipt the peer refused.

Behaviour common to all of them:

* Submits: with ``never_answer`` a submit is swallowed (fault mode: the connection, the login and the
  keepalives still work; may be switched at run time through ``sim.config.never_answer``). Beyond
  ``throttle_tps`` (token bucket, one second of burst; may be switched at run time) it is answered with
  the protocol's throttling status, at ``submit_error_rate`` with its error status; otherwise accepted.
* Receipts: the outcome (stat) is drawn from ``outcomes`` (stat -> weight); the receipt goes out after a
  uniform random delay in ``receipt_delay``, when ``receipts`` is on and the submit asked for one.
* Receipts are scheduled on one heap driven by one timer; when due they join the outbox of their
  account (the login that submitted), as MO does.
* An account's outbox is pushed through the windows of its receiving sessions, round robin, without a
  task per message. What has no bound receiving session waits until that account binds again, as real
  carriers do; what is lost with its connection is queued again, in front. What the peer refuses is
  queued again in front and pushed at once, unless the protocol says otherwise (``_refused``).
* Fault switches (``config``, each may be flipped at run time): ``never_answer`` (above);
  ``refuse_logins``: every login / bind is refused as bad credentials (counted as a bind failure);
  ``duplicate_receipts``: every receipt goes out a second time, a few milliseconds after the first
  (counted in ``receipts_duplicated``); ``unknown_receipts``: beside every receipt, one with the same
  stat for a carrier message id this simulator never issued (counted in ``receipts_unknown``). The
  extra receipts are pending until acknowledged like any other; ``receipts_by_stat`` counts only the
  real ones. ``receipts_first`` (seconds): each accepted submit's receipt is due at once and its answer
  is held that long, so the receipt reaches the peer before the submit answer naming its id (counted in
  ``answers_held``). ``drop_connections()`` aborts every connection (a reset in the middle of the
  window); ``pause_reading(s)`` stops reading every connection for ``s`` seconds (a slow-reading
  gateway: TCP back-pressure, nothing answered meanwhile; counted in ``read_pauses``);
  ``await restart(downtime)`` drops every connection and closes the port for ``downtime`` seconds
  (counted in ``restarts``; what the gateway owed survives).
* Stats: ``submits``, ``unanswered``, ``receipts_scheduled`` / ``_sent`` (acknowledged as OK) /
  ``_pending`` (scheduled or queued, not yet acknowledged) / ``_by_stat``, ``receipts_duplicated``,
  ``receipts_unknown``, ``mo_sent``, ``mo_pending``, ``answers_held``, ``read_pauses``, ``restarts``.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import functools
import heapq
import itertools
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from qixin.protocols.limits import ListenerLimits
from qixin.protocols.session import Session

__all__ = ["RECEIPT_ERRORS", "SimulatorBase", "SimulatorConfigBase", "SimulatorStatsBase", "serve_forever"]

T = TypeVar("T")

# typical 'err' values per final stat of an SMPP-style receipt text (SMPP, SMGP) (the first is the most common)
RECEIPT_ERRORS: dict[str, tuple[str, ...]] = {
    "DELIVRD": ("000",),
    "UNDELIV": ("001", "002", "013", "069"),
    "EXPIRED": ("003",),
    "REJECTD": ("004", "005"),
    "DELETED": ("006",),
    "UNKNOWN": ("999",),
}


@dataclass
class SimulatorConfigBase:
    receipt_delay: tuple[float, float] = (0.05, 0.2)  # seconds, uniform
    outcomes: dict[str, float] = field(default_factory=lambda: {"DELIVRD": 0.97, "UNDELIV": 0.02, "EXPIRED": 0.01})
    accounts: dict[str, str] | None = None  # login -> password / shared secret; None: see the protocol
    throttle_tps: int | None = None  # answer the protocol's throttling status beyond this rate
    submit_error_rate: float = 0.0  # share of submits answered with the protocol's error status
    never_answer: bool = False  # fault mode: swallow every submit
    refuse_logins: bool = False  # fault mode: refuse every login / bind (bad credentials)
    duplicate_receipts: bool = False  # fault mode: send every receipt twice
    unknown_receipts: bool = False  # fault mode: beside every receipt, one for an id never issued
    receipts_first: float = 0.0  # fault mode: hold each submit answer this long (s), its receipt due at once
    receipts: bool = True
    window: int = 256  # outstanding receipts / MO per session
    # 携号转网: numbers (11 digits) ported to another carrier -> that carrier; their receipts report
    # stat "PT:<CARRIER>" (7 characters, fits every protocol's stat field except SGIP's State/ErrorCode)
    ported: dict[str, str] = field(default_factory=dict)
    # what the listening port tolerates (login timeout, frame deadline, connection caps, largest frame)
    limits: ListenerLimits = field(default_factory=ListenerLimits)


@dataclass
class SimulatorStatsBase:
    submits: int = 0  # submits received
    unanswered: int = 0  # submits swallowed in never_answer mode
    receipts_scheduled: int = 0
    receipts_sent: int = 0  # acknowledged as OK
    receipts_pending: int = 0  # scheduled or queued, not yet acknowledged
    receipts_by_stat: Counter[str] = field(default_factory=Counter)
    receipts_duplicated: int = 0  # extra copies sent in duplicate_receipts mode
    receipts_unknown: int = 0  # receipts for ids never issued, in unknown_receipts mode
    mo_sent: int = 0
    mo_pending: int = 0
    answers_held: int = 0  # submit answers held back in receipts_first mode
    read_pauses: int = 0  # pause_reading calls (the gateway stopped reading its connections)
    restarts: int = 0  # restart calls (every connection dropped, the port closed a while)


C = TypeVar("C", bound=SimulatorConfigBase)
S = TypeVar("S", bound=SimulatorStatsBase)


class SimulatorBase(Generic[C, S]):
    """The shared machinery; a protocol sets ``server`` and fills in the hooks below."""

    THROTTLE_STATUS: int  # the submit answer beyond throttle_tps
    ACCOUNT_KEY: str  # the Session.info key naming the account a session belongs to
    UNDELIVERABLE: tuple[type[Exception], ...] = ()  # raised by _request: the item can never go out
    CHECKS_SUBMITS = False  # whether _malformed is called (kept off the hot path when not)

    server: Any

    def __init__(self, config: C, stats: S, seed: int | None) -> None:
        self.config = config
        self.stats = stats
        self._rng = random.Random(seed)
        self.set_outcomes(config.outcomes)
        self._heap: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._outbox: dict[str, deque[Any]] = {}
        self._sessions: dict[str, list[Session]] = {}  # account -> bound receiving sessions
        self._rr = 0
        self._tokens = float(config.throttle_tps or 0)
        self._token_ts = 0.0
        self._date = (-1, "")
        self._loop: asyncio.AbstractEventLoop | None = None
        # what the simulated handsets received: (destination, text), newest last (tests read login codes)
        self.handset: deque[tuple[str, str]] = deque(maxlen=1000)
        self.on_handset: Callable[[str, str], None] | None = None  # also told of each (e.g. qixin run prints)

    def _to_handset(self, destinations: Iterable[str], coding: int, payload: bytes, udhi: bool) -> None:
        """Remember the text a submit carries (one part; UDH stripped) for each destination."""
        if udhi and payload:
            payload = payload[1 + payload[0] :]
        codec = "utf-16-be" if coding == 8 else "gbk" if coding == 15 else "latin-1"
        text = payload.decode(codec, errors="replace")
        for dest in destinations:
            self.handset.append((dest, text))
            if self.on_handset is not None:
                self.on_handset(dest, text)

    def received(self, number: str) -> list[str]:
        """The texts the simulated handset ``number`` (any prefix form) received, oldest first."""
        tail = number[-11:]
        return [t for d, t in list(self.handset) if d[-11:] == tail]

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> int:
        """Start listening; returns the port."""
        self._loop = asyncio.get_running_loop()
        self._token_ts = self._loop.time()
        port: int = await self.server.start()
        return port

    def set_outcomes(self, outcomes: dict[str, float]) -> None:
        """Draw receipt stats from ``outcomes`` (stat -> weight) from now on (a test turns a gateway bad)."""
        self.config.outcomes = dict(outcomes)
        stats_, weights = zip(*outcomes.items(), strict=True) if outcomes else ((), ())
        self._stats_list: tuple[str, ...] = tuple(stats_)
        self._cum = list(itertools.accumulate(weights))

    @property
    def port(self) -> int:
        port: int = self.server.port
        return port

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self.server.stop()

    def queued(self, account: str) -> int:
        """Receipts and MO due for ``account`` and waiting in its outbox (no bound session to take them)."""
        return len(self._outbox_for(account))

    def drop_connections(self) -> None:
        """Fault injection: abort every connection (clients must reconnect)."""
        self.server.abort_all()

    def pause_reading(self, seconds: float) -> None:
        """Fault injection: a slow-reading gateway. Stop reading every connection for ``seconds``: what
        the peer writes waits in the socket buffers (TCP back-pressure once they fill), nothing is
        answered; then everything buffered is read and answered."""
        self.stats.read_pauses += 1
        paused = [s for s in self.server.sessions if s.transport is not None and not s.is_closed]
        for s in paused:
            s.transport.pause_reading()

        def resume() -> None:
            for s in paused:
                if s.transport is not None and not s.is_closed:
                    s.transport.resume_reading()

        (self._loop or asyncio.get_running_loop()).call_later(seconds, resume)

    async def restart(self, downtime: float = 0.5) -> None:
        """Fault injection: the gateway restarts. Every connection is dropped and the port refuses
        connections for ``downtime`` seconds, then listens again on the same port; what the gateway owed
        (receipts scheduled or queued) survives, as a carrier's stored reports do."""
        self.stats.restarts += 1
        port = self.server.port
        self.server.abort_all()
        await self.server.stop(timeout=0.2)
        await asyncio.sleep(downtime)
        self.server.port = port
        await self.server.start()

    # -- hooks ---------------------------------------------------------------------------------
    def _refuse(self, pdu: Any, status: int) -> Any:
        """Count and build the submit answer with a non-OK ``status``."""
        raise NotImplementedError

    def _accept(self, session: Session, pdu: Any) -> Any:
        """Accept a submit: give it an id, count it, schedule its receipts; returns the answer."""
        raise NotImplementedError

    def _error_status(self) -> int:
        """The answer to a submit drawn at ``submit_error_rate``."""
        raise NotImplementedError

    def _malformed(self, pdu: Any) -> int | None:
        """A status refusing a submit that cannot be accepted (checked after throttling, when
        ``CHECKS_SUBMITS``), or None."""
        return None

    def _acked(self, resp: Any) -> bool:
        """Whether the peer's answer to a receipt or MO acknowledges it."""
        raise NotImplementedError

    def _is_receipt(self, item: Any) -> bool:
        """Whether an outbox item is a receipt (else MO)."""
        raise NotImplementedError

    def _copy_receipt(self, item: Any) -> Any:
        """A second, independent copy of a receipt (``duplicate_receipts``)."""
        return dataclasses.replace(item)

    def _unknown_receipt(self, item: Any) -> Any:
        """A copy of a receipt naming a carrier message id this simulator never issued
        (``unknown_receipts``)."""
        raise NotImplementedError

    def _request(self, session: Session, item: Any) -> asyncio.Future[Any] | None:
        """Send an outbox item on ``session`` if its window has room (else None)."""
        return session.try_request(item)

    def _undeliverable(self, account: str, item: Any, exc: Exception) -> None:
        """``_request`` raised one of ``UNDELIVERABLE``: the item was taken out of the outbox."""

    def _lost(self, account: str, item: Any) -> None:
        """An item lost with its connection (or unanswered): first in line when the account is back."""
        self._outbox_for(account).appendleft(item)

    def _refused(self, account: str, item: Any) -> bool:
        """The peer answered an item with an error; returns whether to push the outbox again at once."""
        self._outbox_for(account).appendleft(item)
        return True

    # -- submit --------------------------------------------------------------------------------
    def _on_submit(self, session: Session, pdu: Any) -> Any:
        st = self.stats
        st.submits += 1
        cfg = self.config
        if cfg.never_answer:
            st.unanswered += 1
            return None
        if cfg.throttle_tps and self._throttled():
            return self._refuse(pdu, self.THROTTLE_STATUS)
        status = self._malformed(pdu) if self.CHECKS_SUBMITS else None
        if status is None and cfg.submit_error_rate and self._rng.random() < cfg.submit_error_rate:
            status = self._error_status()
        if status is not None:
            return self._refuse(pdu, status)
        if cfg.receipts_first:  # the receipt (due at once, see _due) goes out before this answer
            st.answers_held += 1
            return self._held(self._accept(session, pdu), cfg.receipts_first)
        return self._accept(session, pdu)

    async def _held(self, resp: Any, seconds: float) -> Any:
        await asyncio.sleep(seconds)
        return resp

    def _throttled(self) -> bool:
        """Take a token from the bucket (``throttle_tps`` per second, one second of burst); False if empty."""
        now = (self._loop or asyncio.get_running_loop()).time()
        rate = float(self.config.throttle_tps or 0)
        self._tokens = min(rate, self._tokens + (now - self._token_ts) * rate)
        self._token_ts = now
        if self._tokens < 1.0:
            return True
        self._tokens -= 1.0
        return False

    def _draw_stat(self, dest: str = "") -> str:
        """A receipt outcome drawn from ``outcomes`` (callers check ``_cum`` is not empty), or the
        portability stat when ``dest`` was ported to another carrier."""
        ported = self.config.ported
        if ported and dest:
            carrier = ported.get(dest[-11:])
            if carrier:
                return f"PT:{carrier.upper()}"[:7]
        return self._stats_list[bisect.bisect_right(self._cum, self._rng.random() * self._cum[-1])]

    def _pick(self, choices: tuple[T, ...]) -> T:
        """One of ``choices`` (the only one without drawing)."""
        return choices[0] if len(choices) == 1 else self._rng.choice(choices)

    def _due(self) -> float:
        """When a receipt drawn now goes out (loop time)."""
        lo, hi = (0.0, 0.0) if self.config.receipts_first else self.config.receipt_delay
        return (self._loop or asyncio.get_running_loop()).time() + lo + (hi - lo) * self._rng.random()

    def _now_date(self) -> str:
        """The local time as YYMMDDhhmm (receipt dates), computed once a minute."""
        sec = int(time.time())
        if self._date[0] // 60 != sec // 60:
            self._date = (sec, time.strftime("%y%m%d%H%M", time.localtime(sec)))
        return self._date[1]

    # -- scheduling ----------------------------------------------------------------------------
    def _schedule(self, due: float, account: str, item: Any, stat: str | None = None, *, extra: bool = False) -> None:
        """Put ``item`` into ``account``'s outbox at loop time ``due``; with ``stat`` it is a new receipt
        (counted as scheduled and pending; the fault switches add their copies), with ``extra`` such a
        copy (counted as pending)."""
        if stat is not None:
            st = self.stats
            st.receipts_scheduled += 1
            st.receipts_pending += 1
            st.receipts_by_stat[stat] += 1
            cfg = self.config
            if cfg.duplicate_receipts:
                st.receipts_duplicated += 1
                self._schedule(due + 0.005, account, self._copy_receipt(item), None, extra=True)
            if cfg.unknown_receipts:
                st.receipts_unknown += 1
                self._schedule(due, account, self._unknown_receipt(item), None, extra=True)
        elif extra:
            self.stats.receipts_pending += 1
        heapq.heappush(self._heap, (due, next(self._seq), account, item))
        timer = self._timer
        if timer is None or due < self._timer_at - 0.005:
            if timer is not None:
                timer.cancel()
            assert self._loop is not None
            self._timer_at = due
            self._timer = self._loop.call_at(due, self._fire)

    def _fire(self) -> None:
        self._timer = None
        assert self._loop is not None
        now = self._loop.time() + 0.001
        heap = self._heap
        touched: set[str] = set()
        outbox = self._outbox
        while heap and heap[0][0] <= now:
            _, _, account, item = heapq.heappop(heap)
            q = outbox.get(account)
            if q is None:
                q = self._outbox_for(account)
            q.append(item)
            touched.add(account)
        for account in touched:
            self._pump(account)
        if heap:
            self._timer_at = heap[0][0]
            self._timer = self._loop.call_at(self._timer_at, self._fire)

    # -- accounts and their outboxes -----------------------------------------------------------
    def _outbox_for(self, account: str) -> deque[Any]:
        q = self._outbox.get(account)
        if q is None:
            q = self._outbox[account] = deque()
        return q

    def _attach(self, session: Session) -> None:
        """A receiving session is bound: it takes its share of the account's outbox."""
        account = session.info[self.ACCOUNT_KEY]
        self._sessions.setdefault(account, []).append(session)
        self._pump(account)

    def _on_unbind(self, session: Session) -> None:
        sessions = self._sessions.get(session.info.get(self.ACCOUNT_KEY, ""))
        if sessions and session in sessions:
            sessions.remove(session)

    def _default_account(self, error: str) -> str:
        """The first account with a bound receiving session (RuntimeError(``error``) if none)."""
        for account, sessions in self._sessions.items():
            if sessions:
                return account
        raise RuntimeError(error)

    def _queue_mo(self, account: str, items: Iterable[Any]) -> None:
        q = self._outbox_for(account)
        for item in items:
            q.append(item)
            self.stats.mo_pending += 1
        self._pump(account)

    # -- pushing -------------------------------------------------------------------------------
    def _pump(self, account: str) -> None:
        q = self._outbox.get(account)
        if not q:
            return
        sessions = self._sessions.get(account)
        if not sessions:
            return
        n = len(sessions)
        request = self._request
        while q:
            item = q[0]
            for i in range(n):
                s = sessions[(self._rr + i) % n]
                try:
                    fut = request(s, item)
                except self.UNDELIVERABLE as exc:
                    q.popleft()
                    self._undeliverable(account, item, exc)
                    break
                if fut is not None:
                    self._rr = (self._rr + i + 1) % n
                    fut.add_done_callback(functools.partial(self._delivered, account, item))
                    q.popleft()
                    break
            else:
                return  # every window is full: resumed from _delivered

    def _delivered(self, account: str, item: Any, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            self._lost(account, item)
        elif self._acked(fut.result()):
            self._settle(item)
        elif not self._refused(account, item):
            return
        self._pump(account)

    def _settle(self, item: Any) -> None:
        """Count an outbox item as gone out."""
        st = self.stats
        if self._is_receipt(item):
            st.receipts_sent += 1
            st.receipts_pending -= 1
        else:
            st.mo_sent += 1
            st.mo_pending -= 1


async def serve_forever(sim: SimulatorBase[Any, Any], host: str, label: str, log: logging.Logger) -> None:
    """Run a simulator until cancelled (for the CLI)."""
    bound = await sim.start()
    log.info("%s simulator listening on %s:%d", label, host, bound)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
