"""China Telecom SMGW simulator speaking SMGP 3.0: the default telecom channel of the embedded demo,
the tests and the benches. Mirrors ``SmppSimulator``.

Behaviour:

* Accepts logins from the configured accounts (``{client_id: secret}``, AuthenticatorClient checked;
  ``None`` = any client, answered with an unsigned AuthenticatorServer).
* Answers each Submit with a unique 10-byte BCD MsgID (SMGW code + MMDDHHMM + a 6-digit sequence
  that wraps at 1,000,000 — the protocol's own limit), or with status 1 (system busy, flow control)
  beyond ``throttle_tps`` (token bucket, one second of burst), or with ``submit_error_status`` at
  ``submit_error_rate``. With ``never_answer`` set (may be toggled at run time) Submits get no
  answer at all, while Active_Test still does.
* Sends a status report per destination when the Submit asked for one (NeedReport = 1) and
  ``receipts`` is on, after a uniform random delay: a Deliver with IsReport = 1 whose MsgContent is
  ``id:<10-byte MsgID> sub:001 dlvrd:001 Submit date:… done date:… Stat:… err:… Txt:…``. The outcome
  is drawn from ``outcomes`` (stat -> weight) with a typical error code per stat.
* Reports and MO wait per client_id. One whose client has no logged-in receiving session waits until
  that client logs in again; one answered with a non-zero status or lost with its connection is queued
  again, in front.
* Reports are scheduled on one heap driven by one timer, and pushed through each session's window
  without a task per message.
* ``record`` > 0 keeps the last ``record`` Submits received in ``submitted`` (for tests).
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import heapq
import itertools
import logging
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from qixin.protocols.session import Session
from qixin.protocols.smgp.codec import (
    MSG_FORMAT_ASCII,
    MSG_FORMAT_UCS2,
    STATUS_BAD_STRUCTURE,
    STATUS_OK,
    STATUS_ROUTE_ERROR,
    STATUS_SYSTEM_BUSY,
    Deliver,
    Login,
    Report,
    Submit,
    SubmitResp,
    encode_report,
)
from qixin.protocols.smgp.server import SmgpServer, accounts_authenticator

__all__ = ["REPORT_ERRORS", "SimulatorConfig", "SimulatorStats", "SmgpSimulator", "run_simulator"]

log = logging.getLogger(__name__)

# typical 'err' values per final stat (the first is the most common)
REPORT_ERRORS: dict[str, tuple[str, ...]] = {
    "DELIVRD": ("000",),
    "UNDELIV": ("001", "002", "013", "069"),
    "EXPIRED": ("003",),
    "REJECTD": ("004", "005"),
    "DELETED": ("006",),
    "UNKNOWN": ("999",),
}
_MSG_SEQ_LIMIT = 1_000_000


@functools.lru_cache(maxsize=256)
def _report_tail(dlvrd: str, date: str, stat: str, err: str) -> bytes:
    """Everything ``encode_report`` writes between the 10-byte id and the text (the same for every
    report of one minute, stat and err)."""
    return encode_report(Report(b"\0" * 10, "001", dlvrd, date, date, stat, err, b""))[13:]


@dataclass
class SimulatorConfig:
    receipt_delay: tuple[float, float] = (0.05, 0.2)  # seconds, uniform
    outcomes: dict[str, float] = field(default_factory=lambda: {"DELIVRD": 0.97, "UNDELIV": 0.02, "EXPIRED": 0.01})
    accounts: dict[str, str] | None = None  # client_id -> shared secret; None accepts any client
    throttle_tps: int | None = None  # answer status 1 (system busy) beyond this rate
    submit_error_rate: float = 0.0  # share of submits answered with submit_error_status
    submit_error_status: int = STATUS_ROUTE_ERROR
    never_answer: bool = False  # fault mode: Submits get no answer (heartbeats still do)
    receipts: bool = True
    window: int = 256  # outstanding Deliver per session
    heartbeat_interval: float = 30.0
    smgw_code: int = 100001  # 6 digits, first part of every MsgID
    record: int = 0  # keep the last N Submits in SmgpSimulator.submitted


@dataclass
class SimulatorStats:
    submits: int = 0  # Submit received
    submit_resps: Counter[int] = field(default_factory=Counter)  # by status
    unanswered: int = 0  # Submits ignored in never_answer mode
    receipts_scheduled: int = 0
    receipts_sent: int = 0  # acknowledged with status 0
    receipts_pending: int = 0  # scheduled or queued, not yet acknowledged
    receipts_by_stat: Counter[str] = field(default_factory=Counter)
    mo_sent: int = 0
    mo_pending: int = 0
    logins: int = 0
    login_failures: int = 0


class SmgpSimulator:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        config: SimulatorConfig | None = None,
        seed: int | None = None,
    ) -> None:
        self.config = config or SimulatorConfig()
        if not 0 <= self.config.smgw_code <= 999999:
            raise ValueError("smgw_code must have at most 6 digits")
        self.stats = SimulatorStats()
        self.submitted: deque[Submit] = deque(maxlen=max(self.config.record, 1))
        self._rng = random.Random(seed)
        self._msg_seq = self._rng.randrange(_MSG_SEQ_LIMIT)
        stats_, weights = zip(*self.config.outcomes.items(), strict=True) if self.config.outcomes else ((), ())
        self._stats_list: tuple[str, ...] = tuple(stats_)
        self._cum = list(itertools.accumulate(weights))
        self._heap: list[tuple[float, int, str, Deliver]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._outbox: dict[str, deque[Deliver]] = {}
        self._by_client: dict[str, list[Session]] = {}
        self._rr = 0
        self._tokens = float(self.config.throttle_tps or 0)
        self._token_ts = 0.0
        self._minute = -1
        self._id_prefix = b""  # SMGW code + MMDDHHMM as 7 BCD bytes, per minute
        self._dates = ("", "")  # (YYMMDDhhmm, YYYYMMDDhhmmss) of the current second
        self._date_sec = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._accounts_auth = accounts_authenticator(self.config.accounts)
        self.server = SmgpServer(
            host,
            port,
            self._authenticate,
            self._on_submit,
            window=self.config.window,
            heartbeat_interval=self.config.heartbeat_interval,
            on_login=self._on_login,
            on_logout=self._on_logout,
        )

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> int:
        """Start listening; returns the port."""
        self._loop = asyncio.get_running_loop()
        self._token_ts = self._loop.time()
        return await self.server.start()

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self.server.stop()

    def drop_connections(self) -> None:
        """Fault injection: abort every connection (clients must reconnect)."""
        self.server.abort_all()

    async def send_mo(self, src_term: str, dest_term: str, text: str, *, client_id: str | None = None) -> None:
        """Queue a mobile-originated message from ``src_term`` (the phone) to ``dest_term`` (service code
        + extension) for ``client_id`` (default: any client with a logged-in receiving session).
        ASCII text goes as MsgFormat 0, anything else as UCS-2 (8); at most 140 bytes."""
        if client_id is None:
            for cid, sessions in self._by_client.items():
                if sessions:
                    client_id = cid
                    break
            else:
                raise RuntimeError("no logged-in receiving session to deliver the MO message to")
        try:
            body, fmt = text.encode("ascii"), MSG_FORMAT_ASCII
        except UnicodeEncodeError:
            body, fmt = text.encode("utf-16-be"), MSG_FORMAT_UCS2
        if len(body) > 140:
            raise ValueError(f"MO text of {len(body)} bytes does not fit one message (140)")
        pdu = Deliver(
            msg_id=self._next_msg_id(),
            is_report=0,
            msg_format=fmt,
            recv_time=self._now_dates()[1],
            src_term_id=src_term,
            dest_term_id=dest_term,
            msg_content=body,
        )
        self.stats.mo_pending += 1
        self._outbox.setdefault(client_id, deque()).append(pdu)
        self._pump(client_id)

    # -- logins --------------------------------------------------------------------------------
    def _authenticate(self, login: Login) -> tuple[int, str | bytes | None]:
        status, secret = self._accounts_auth(login)
        if status != STATUS_OK:
            self.stats.login_failures += 1
        return status, secret

    def _on_login(self, session: Session) -> None:
        self.stats.logins += 1
        if session.info.get("login_mode") == 0 or session.is_closed:  # send-only: no Deliver
            return
        client_id = session.info["client_id"]
        self._by_client.setdefault(client_id, []).append(session)
        self._pump(client_id)

    def _on_logout(self, session: Session) -> None:
        sessions = self._by_client.get(session.info.get("client_id", ""))
        if sessions and session in sessions:
            sessions.remove(session)

    # -- ids and clocks ------------------------------------------------------------------------
    def _next_msg_id(self) -> bytes:
        now = time.time()
        minute = int(now // 60)
        if minute != self._minute:
            self._minute = minute
            t = time.localtime(now)
            self._id_prefix = bytes.fromhex(
                f"{self.config.smgw_code:06d}{t.tm_mon:02d}{t.tm_mday:02d}{t.tm_hour:02d}{t.tm_min:02d}"
            )
        seq = self._msg_seq = (self._msg_seq + 1) % _MSG_SEQ_LIMIT
        return self._id_prefix + bytes.fromhex(f"{seq:06d}")

    def _now_dates(self) -> tuple[str, str]:
        sec = int(time.time())
        if sec != self._date_sec:
            self._date_sec = sec
            t = time.localtime(sec)
            self._dates = (time.strftime("%y%m%d%H%M", t), time.strftime("%Y%m%d%H%M%S", t))
        return self._dates

    # -- submit --------------------------------------------------------------------------------
    def _on_submit(self, session: Session, pdu: Submit) -> SubmitResp | None:
        st = self.stats
        st.submits += 1
        cfg = self.config
        if cfg.record:
            self.submitted.append(pdu)
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
                st.submit_resps[STATUS_SYSTEM_BUSY] += 1
                return SubmitResp(status=STATUS_SYSTEM_BUSY, sequence=pdu.sequence)
            self._tokens -= 1.0
        if not pdu.dest_term_ids:
            st.submit_resps[STATUS_BAD_STRUCTURE] += 1
            return SubmitResp(status=STATUS_BAD_STRUCTURE, sequence=pdu.sequence)
        if cfg.submit_error_rate and self._rng.random() < cfg.submit_error_rate:
            st.submit_resps[cfg.submit_error_status] += 1
            return SubmitResp(status=cfg.submit_error_status, sequence=pdu.sequence)
        msg_id = self._next_msg_id()
        st.submit_resps[STATUS_OK] += 1
        if cfg.receipts and pdu.need_report == 1 and self._cum:
            rng = self._rng
            lo, hi = cfg.receipt_delay
            client_id = session.info.get("client_id", "")
            for dest in pdu.dest_term_ids:
                stat = self._stats_list[bisect.bisect_right(self._cum, rng.random() * self._cum[-1])]
                errs = REPORT_ERRORS.get(stat, ("000",))
                err = errs[0] if len(errs) == 1 else rng.choice(errs)
                self._schedule_report(
                    loop.time() + lo + (hi - lo) * rng.random(), client_id, msg_id, dest, stat, err, pdu
                )
        return SubmitResp(msg_id=msg_id, status=STATUS_OK, sequence=pdu.sequence)

    def _schedule_report(
        self, due: float, client_id: str, msg_id: bytes, dest: str, stat: str, err: str, submit: Submit
    ) -> None:
        short, long = self._now_dates()
        txt = submit.msg_content[:20] if submit.msg_format == MSG_FORMAT_ASCII else b""
        content = b"id:" + msg_id + _report_tail("001" if stat == "DELIVRD" else "000", short, stat, err) + txt
        pdu = Deliver(
            msg_id=self._next_msg_id(),
            is_report=1,
            msg_format=MSG_FORMAT_ASCII,
            recv_time=long,
            src_term_id=dest,
            dest_term_id=submit.src_term_id,
            msg_content=content,
        )
        st = self.stats
        st.receipts_scheduled += 1
        st.receipts_pending += 1
        st.receipts_by_stat[stat] += 1
        heapq.heappush(self._heap, (due, next(self._seq), client_id, pdu))
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
            _, _, client_id, report = heapq.heappop(heap)
            q = outbox.get(client_id)
            if q is None:
                q = outbox[client_id] = deque()
            q.append(report)
            touched.add(client_id)
        for client_id in touched:
            self._pump(client_id)
        if heap:
            self._timer_at = heap[0][0]
            self._timer = self._loop.call_at(self._timer_at, self._fire)

    # -- pushing Deliver -----------------------------------------------------------------------
    def _pump(self, client_id: str) -> None:
        q = self._outbox.get(client_id)
        if not q:
            return
        sessions = self._by_client.get(client_id)
        if not sessions:
            return
        n = len(sessions)
        while q:
            pdu = q[0]
            for i in range(n):
                s = sessions[(self._rr + i) % n]
                fut = s.try_request(pdu)
                if fut is not None:
                    self._rr = (self._rr + i + 1) % n
                    fut.add_done_callback(functools.partial(self._delivered, client_id, pdu))
                    q.popleft()
                    break
            else:
                return  # every window is full: resumed from _delivered

    def _delivered(self, client_id: str, pdu: Deliver, fut: asyncio.Future[Any]) -> None:
        ok = not fut.cancelled() and fut.exception() is None and fut.result().status == STATUS_OK
        if ok:
            if pdu.is_report:
                self.stats.receipts_sent += 1
                self.stats.receipts_pending -= 1
            else:
                self.stats.mo_sent += 1
                self.stats.mo_pending -= 1
        else:
            self._outbox.setdefault(client_id, deque()).appendleft(pdu)  # redeliver later
            if not fut.cancelled() and fut.exception() is None and self._loop is not None:
                # refused by the client (status != 0): give it a moment instead of spinning
                self._loop.call_later(0.05, self._pump, client_id)
                return
        self._pump(client_id)


async def run_simulator(host: str = "127.0.0.1", port: int = 8890, config: SimulatorConfig | None = None) -> None:
    """Run a simulator until cancelled (for the CLI)."""
    sim = SmgpSimulator(host, port, config)
    bound = await sim.start()
    log.info("SMGP simulator listening on %s:%d", host, bound)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
