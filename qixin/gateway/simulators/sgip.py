"""China Unicom SMG simulator speaking SGIP 1.2: the Unicom channel of the embedded demo, tests and benches.

Behaviour:

* Accepts Binds (Login Type 1) from the configured accounts (``None`` = any login name / password).
* Answers each Submit with Result 0, or Result 11 (node busy: throttling) beyond ``throttle_tps``
  (token bucket, one second of burst), or Result 32 (system failure) at ``submit_error_rate``; with
  ``never_answer`` it swallows Submits without answering (fault mode).
* The carrier message id of an SGIP Submit is its own 12-byte sequence. For each UserNumber of an
  accepted Submit (up to 100) it sends one Report naming that sequence (SubmitSequenceNumber), after a
  uniform random delay, as the Submit's ReportFlag asks (0: failures only, 1 and 3: always, 2: none).
  The outcome is drawn from ``outcomes`` (stat -> weight): DELIVRD is State 0 / ErrorCode 0, every
  other stat State 2 with an ErrorCode typical of it (``REPORT_ERRORS``).
* Reports and MO (Deliver) go back over connections the simulator opens to the SP's own listener
  (Bind Login Type 2), found per login name in ``sp_listeners`` or registered with ``register_sp``.
  While an SP is unreachable or refuses the bind, its reports are kept and the connection retried with
  backoff (``reconnect_min`` … ``reconnect_max``); a report answered with an error or lost with its
  connection is queued again. Idle connect-back sessions are unbound after ``idle_timeout``.
* Reports are scheduled on one heap driven by one timer and pushed through each connect-back
  session's window without a task per message.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import heapq
import itertools
import logging
import random
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from qixin.protocols.session import Session
from qixin.protocols.sgip import codec as c
from qixin.protocols.sgip.server import SgipServer

__all__ = ["REPORT_ERRORS", "SgipSimulator", "SgipSimulatorConfig", "SgipSimulatorStats", "run_simulator"]

log = logging.getLogger(__name__)

# stat -> (Report State, typical ErrorCodes; the first is the most common)
REPORT_ERRORS: dict[str, tuple[int, tuple[int, ...]]] = {
    "DELIVRD": (c.STATE_DELIVERED, (c.RESULT_OK,)),
    "UNDELIV": (
        c.STATE_FAILED,
        (
            c.RESULT_USER_CANNOT_COMMUNICATE,
            c.RESULT_HANDSET_MEMORY_FULL,
            c.RESULT_HANDSET_NO_SMS,
            c.RESULT_HANDSET_RECEIVE_ERROR,
        ),
    ),
    "REJECTD": (c.STATE_FAILED, (c.RESULT_UNKNOWN_USER, c.RESULT_ILLEGAL_NUMBER)),
    "EXPIRED": (c.STATE_FAILED, (c.RESULT_DEST_UNREACHABLE,)),
    "UNKNOWN": (c.STATE_FAILED, (c.RESULT_SYSTEM_FAILURE,)),
}


@dataclass
class SgipSimulatorConfig:
    receipt_delay: tuple[float, float] = (0.05, 0.2)  # seconds, uniform
    outcomes: dict[str, float] = field(default_factory=lambda: {"DELIVRD": 0.97, "UNDELIV": 0.03})
    accounts: dict[str, str] | None = None  # login name -> password; None accepts any
    sp_listeners: dict[str, tuple[str, int]] = field(default_factory=dict)  # login name -> SP listener
    smg_login_name: str = "smg"  # what we bind to SP listeners with (Login Type 2)
    smg_password: str = ""
    throttle_tps: int | None = None  # answer Result 11 beyond this rate
    submit_error_rate: float = 0.0  # share of Submits answered Result 32
    never_answer: bool = False  # fault mode: swallow Submits
    receipts: bool = True
    window: int = 256  # outstanding Deliver/Report per connect-back session
    request_timeout: float = 10.0
    idle_timeout: float | None = 30.0  # unbind idle sessions (both directions)
    reconnect_min: float = 0.2  # connect-back retry backoff
    reconnect_max: float = 5.0
    node_id: int = 1_010_000_001  # the SMG's node number
    record_submits: bool = False  # keep every accepted Submit in ``submitted`` (tests)


@dataclass
class SgipSimulatorStats:
    submits: int = 0  # Submit PDUs received
    submit_users: int = 0  # UserNumbers in accepted Submits
    submit_results: Counter[int] = field(default_factory=Counter)  # by Result
    unanswered: int = 0  # Submits swallowed in never_answer mode
    receipts_scheduled: int = 0
    receipts_sent: int = 0  # Reports acknowledged with Result 0
    receipts_pending: int = 0  # scheduled or queued, not yet acknowledged
    receipts_by_stat: Counter[str] = field(default_factory=Counter)
    mo_sent: int = 0
    mo_pending: int = 0
    binds: int = 0
    bind_failures: int = 0
    connect_backs: int = 0  # successful Login Type 2 binds to SP listeners
    connect_back_failures: int = 0


@dataclass
class _Sp:
    login_name: str
    host: str | None = None
    port: int | None = None
    password: str | None = None
    login: str | None = None
    session: Session | None = None
    connecting: bool = False
    delay: float = 0.0
    retry: asyncio.TimerHandle | None = None
    outbox: deque[Any] = field(default_factory=deque)


class SgipSimulator:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        config: SgipSimulatorConfig | None = None,
        seed: int | None = None,
    ) -> None:
        self.config = cfg = config or SgipSimulatorConfig()
        self.stats = SgipSimulatorStats()
        self.submitted: list[c.Submit] = []
        self._rng = random.Random(seed)
        stats_, weights = zip(*cfg.outcomes.items(), strict=True) if cfg.outcomes else ((), ())
        for stat in stats_:
            if stat not in REPORT_ERRORS:
                raise ValueError(f"unknown outcome {stat!r}; known: {sorted(REPORT_ERRORS)}")
        self._stats_list: tuple[str, ...] = tuple(stats_)
        self._cum = list(itertools.accumulate(weights))
        self._heap: list[tuple[float, int, str, c.Report]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._sps: dict[str, _Sp] = {}
        for login, (h, p) in cfg.sp_listeners.items():
            self._sps[login] = _Sp(login, h, p)
        self._tokens = float(cfg.throttle_tps or 0)
        self._token_ts = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self.server = SgipServer(
            host,
            port,
            self._authenticate,
            self._on_submit,
            node_id=cfg.node_id,
            window=cfg.window,
            request_timeout=cfg.request_timeout,
            idle_timeout=cfg.idle_timeout,
            on_bind=self._on_bind,
        )

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> int:
        """Start listening; returns the port."""
        self._loop = asyncio.get_running_loop()
        self._token_ts = self._loop.time()
        self._stopping = False
        return await self.server.start()

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self) -> None:
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for sp in self._sps.values():
            if sp.retry is not None:
                sp.retry.cancel()
                sp.retry = None
        await self.server.stop()

    def drop_connections(self) -> None:
        """Fault injection: abort every connection, both directions (SPs must reconnect; we reconnect
        to their listeners when reports are due)."""
        self.server.abort_all()

    def register_sp(
        self, login_name: str, host: str, port: int, password: str | None = None, *, login: str | None = None
    ) -> None:
        """Where to connect back for ``login_name``'s MO and reports, and the credentials (Login Type 2)
        to bind there with (default ``smg_login_name`` / ``smg_password`` of the config)."""
        sp = self._sps.get(login_name)
        if sp is None:
            sp = self._sps[login_name] = _Sp(login_name)
        if (sp.host, sp.port) != (host, port) and sp.session is not None:
            sp.session.abort()
        sp.host, sp.port, sp.password, sp.login = host, port, password, login
        sp.delay = 0.0
        self._pump(login_name)

    async def send_mo(
        self, user_number: str, sp_number: str, text: str, *, login_name: str | None = None, coding: int | None = None
    ) -> None:
        """Queue a mobile-originated message (Deliver) from ``user_number`` to ``sp_number`` for
        ``login_name`` (default: the only registered SP, else the first one)."""
        if login_name is None:
            if not self._sps:
                raise RuntimeError("no SP registered to deliver the MO message to")
            login_name = next(iter(self._sps))
        if coding is None:
            coding = c.CODING_ASCII if text.isascii() else c.CODING_UCS2
        if coding == c.CODING_UCS2:
            body = text.encode("utf-16-be")
        elif coding == c.CODING_GBK:
            body = text.encode("gbk")
        else:
            body = text.encode("ascii")
        pdu = c.Deliver(
            user_number=c.add_country_code(user_number),
            sp_number=sp_number,
            message_coding=coding,
            message_content=body,
        )
        self.stats.mo_pending += 1
        self._sp(login_name).outbox.append(pdu)
        self._pump(login_name)

    # -- binds ---------------------------------------------------------------------------------
    def _authenticate(self, login_name: str, password: str) -> bool | int:
        accounts = self.config.accounts
        if accounts is None:
            return True
        if accounts.get(login_name) != password:
            self.stats.bind_failures += 1
            return False
        return True

    def _on_bind(self, session: Session) -> None:
        self.stats.binds += 1
        login = session.info.get("login_name", "")
        if login in self._sps:
            self._pump(login)  # an SP that is back is worth a new try at once

    def _sp(self, login_name: str) -> _Sp:
        sp = self._sps.get(login_name)
        if sp is None:
            sp = self._sps[login_name] = _Sp(login_name)
        return sp

    # -- submit --------------------------------------------------------------------------------
    def _on_submit(self, session: Session, pdu: c.Submit) -> c.SubmitResp | None:
        st = self.stats
        st.submits += 1
        cfg = self.config
        seq = c.sequence_of(pdu)
        if cfg.never_answer:
            st.unanswered += 1
            return None
        loop = self._loop or asyncio.get_running_loop()
        if cfg.throttle_tps:
            now = loop.time()
            rate = float(cfg.throttle_tps)
            self._tokens = min(rate, self._tokens + (now - self._token_ts) * rate)
            self._token_ts = now
            if self._tokens < 1.0:
                st.submit_results[c.RESULT_NODE_BUSY] += 1
                return c.SubmitResp(c.RESULT_NODE_BUSY, "", *seq)
            self._tokens -= 1.0
        if cfg.submit_error_rate and self._rng.random() < cfg.submit_error_rate:
            st.submit_results[c.RESULT_SYSTEM_FAILURE] += 1
            return c.SubmitResp(c.RESULT_SYSTEM_FAILURE, "", *seq)
        st.submit_results[c.RESULT_OK] += 1
        st.submit_users += len(pdu.user_numbers)
        if cfg.record_submits:
            self.submitted.append(pdu)
        flag = pdu.report_flag
        if cfg.receipts and flag != 2 and self._cum:
            rng = self._rng
            login = session.info.get("login_name", "")
            lo, hi = cfg.receipt_delay
            for user in pdu.user_numbers:
                stat = self._stats_list[bisect.bisect_right(self._cum, rng.random() * self._cum[-1])]
                if flag == 0 and stat == "DELIVRD":
                    continue
                state, errors = REPORT_ERRORS[stat]
                err = errors[0] if len(errors) == 1 else rng.choice(errors)
                report = c.Report(seq, c.REPORT_TYPE_SUBMIT, user, state, err)
                self.stats.receipts_by_stat[stat] += 1
                self._schedule(loop.time() + lo + (hi - lo) * rng.random(), login, report)
        return c.SubmitResp(c.RESULT_OK, "", *seq)

    def _schedule(self, due: float, login: str, report: c.Report) -> None:
        self.stats.receipts_scheduled += 1
        self.stats.receipts_pending += 1
        heapq.heappush(self._heap, (due, next(self._seq), login, report))
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
        while heap and heap[0][0] <= now:
            _, _, login, report = heapq.heappop(heap)
            self._sp(login).outbox.append(report)
            touched.add(login)
        for login in touched:
            self._pump(login)
        if heap:
            self._timer_at = heap[0][0]
            self._timer = self._loop.call_at(self._timer_at, self._fire)

    # -- connecting back and pushing -----------------------------------------------------------
    def _pump(self, login: str) -> None:
        sp = self._sps.get(login)
        if sp is None or not sp.outbox or self._stopping:
            return
        s = sp.session
        if s is None or not s.bound:
            if s is None:
                self._connect(sp)
            return
        q = sp.outbox
        while q:
            pdu = q[0]
            fut = s.try_request(pdu)
            if fut is None:
                return  # window full: resumed from _delivered
            q.popleft()
            fut.add_done_callback(functools.partial(self._delivered, sp, pdu))

    def _connect(self, sp: _Sp) -> None:
        if sp.connecting or sp.retry is not None or sp.host is None or sp.port is None or self._stopping:
            return
        sp.connecting = True
        assert self._loop is not None
        self._loop.create_task(self._connect_back(sp), name=f"sgip-connect-back {sp.login_name}")

    async def _connect_back(self, sp: _Sp) -> None:
        cfg = self.config
        assert sp.host is not None and sp.port is not None
        try:
            session = await self.server.connect(
                sp.host,
                sp.port,
                sp.login or cfg.smg_login_name,
                cfg.smg_password if sp.password is None else sp.password,
                on_close=functools.partial(self._link_closed, sp),
            )
        except asyncio.CancelledError:
            sp.connecting = False
            raise
        except Exception as exc:
            sp.connecting = False
            self.stats.connect_back_failures += 1
            sp.delay = min(max(sp.delay * 2, cfg.reconnect_min), cfg.reconnect_max)
            log.info(
                "SGIP SMG: SP %s at %s:%s unreachable (%r); retry in %.1fs",
                sp.login_name,
                sp.host,
                sp.port,
                exc,
                sp.delay,
            )
            if not self._stopping:
                assert self._loop is not None
                sp.retry = self._loop.call_later(sp.delay, self._retry, sp)
            return
        sp.connecting = False
        sp.delay = 0.0
        self.stats.connect_backs += 1
        if self._stopping:
            await session.close(1.0)
            return
        sp.session = session
        self._pump(sp.login_name)

    def _retry(self, sp: _Sp) -> None:
        sp.retry = None
        self._pump(sp.login_name)

    def _link_closed(self, sp: _Sp, session: Session) -> None:
        if sp.session is session:
            sp.session = None
            if sp.outbox and not self._stopping:
                assert self._loop is not None
                # lost with work to do: come back after the backoff (immediately after an idle unbind)
                sp.delay = min(max(sp.delay * 2, self.config.reconnect_min), self.config.reconnect_max)
                sp.retry = self._loop.call_later(sp.delay, self._retry, sp)

    def _delivered(self, sp: _Sp, pdu: Any, fut: asyncio.Future[Any]) -> None:
        ok = not fut.cancelled() and fut.exception() is None and fut.result().result == c.RESULT_OK
        if ok:
            if isinstance(pdu, c.Report):
                self.stats.receipts_sent += 1
                self.stats.receipts_pending -= 1
            else:
                self.stats.mo_sent += 1
                self.stats.mo_pending -= 1
        else:
            sp.outbox.appendleft(pdu)  # send again later
        self._pump(sp.login_name)


async def run_simulator(host: str = "127.0.0.1", port: int = 8801, config: SgipSimulatorConfig | None = None) -> None:
    """Run a simulator until cancelled (for the CLI)."""
    sim = SgipSimulator(host, port, config)
    bound = await sim.start()
    log.info("SGIP simulator listening on %s:%d", host, bound)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
