"""SMSC simulator speaking SMPP 3.4: the default channel of the embedded demo, the tests and the benches.

Behaviour:

* Accepts binds from the configured accounts (``None`` = any system_id/password).
* Answers each submit_sm with a unique message id (instance prefix + hex counter), or with
  ESME_RTHROTTLED beyond ``throttle_tps`` (token bucket, one second of burst), or with
  ESME_RSUBMITFAIL at ``submit_error_rate``.
* Sends a delivery receipt (deliver_sm, esm_class 0x04, receipt text, TLVs receipted_message_id,
  message_state and, for failures, network_error_code) after a uniform random delay, when the submit
  asked for one (registered_delivery bits 0-1: 1 = always, 2 = failures only) and ``receipts`` is on.
  The outcome is drawn from ``outcomes`` (stat → weight) with a typical error code per stat.
* Receipts are queued per system_id. A receipt whose system_id has no bound receiving session waits
  until that system_id binds again, as real SMSCs do; a receipt answered with an error or lost with
  its connection is queued again.
* Receipts are scheduled on one heap driven by one timer, and pushed through each session's window
  without a task per message.
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
from qixin.protocols.smpp.codec import (
    ESM_CLASS_RECEIPT,
    ESME_RINVSYSID,
    ESME_ROK,
    ESME_RSUBMITFAIL,
    ESME_RTHROTTLED,
    STAT_TO_STATE,
    DeliverSm,
    SubmitSm,
    SubmitSmResp,
    format_receipt,
)
from qixin.protocols.smpp.server import SmppServer

__all__ = ["RECEIPT_ERRORS", "SimulatorConfig", "SimulatorStats", "SmppSimulator", "run_simulator"]

log = logging.getLogger(__name__)

# typical 'err' values per final stat (the first is the most common)
RECEIPT_ERRORS: dict[str, tuple[str, ...]] = {
    "DELIVRD": ("000",),
    "UNDELIV": ("001", "002", "013", "069"),
    "EXPIRED": ("003",),
    "REJECTD": ("004", "005"),
    "DELETED": ("006",),
    "UNKNOWN": ("999",),
}


@dataclass
class SimulatorConfig:
    receipt_delay: tuple[float, float] = (0.05, 0.2)  # seconds, uniform
    outcomes: dict[str, float] = field(default_factory=lambda: {"DELIVRD": 0.97, "UNDELIV": 0.02, "EXPIRED": 0.01})
    accounts: dict[str, str] | None = None  # system_id -> password; None accepts any
    throttle_tps: int | None = None  # answer ESME_RTHROTTLED beyond this rate
    submit_error_rate: float = 0.0  # share of submits answered ESME_RSUBMITFAIL
    receipts: bool = True
    window: int = 256  # outstanding deliver_sm per session
    enquire_link_interval: float = 30.0
    system_id: str = "qixin-smsc"


@dataclass
class SimulatorStats:
    submits: int = 0  # submit_sm received
    submit_resps: Counter[int] = field(default_factory=Counter)  # by command_status
    receipts_scheduled: int = 0
    receipts_sent: int = 0  # acknowledged with ESME_ROK
    receipts_pending: int = 0  # scheduled or queued, not yet acknowledged
    receipts_by_stat: Counter[str] = field(default_factory=Counter)
    mo_sent: int = 0
    mo_pending: int = 0
    binds: int = 0
    bind_failures: int = 0


class SmppSimulator:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        config: SimulatorConfig | None = None,
        seed: int | None = None,
    ) -> None:
        self.config = config or SimulatorConfig()
        self.stats = SimulatorStats()
        self._rng = random.Random(seed)
        self._prefix = f"{self._rng.getrandbits(24):06x}"
        self._counter = itertools.count(1)
        stats_, weights = zip(*self.config.outcomes.items(), strict=True) if self.config.outcomes else ((), ())
        self._stats_list: tuple[str, ...] = tuple(stats_)
        self._cum = list(itertools.accumulate(weights))
        self._heap: list[tuple[float, int, str, DeliverSm]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._outbox: dict[str, deque[DeliverSm]] = {}
        self._by_system: dict[str, list[Session]] = {}
        self._rr = 0
        self._tokens = float(self.config.throttle_tps or 0)
        self._token_ts = 0.0
        self._date = (0, "")
        self._loop: asyncio.AbstractEventLoop | None = None
        self.server = SmppServer(
            host,
            port,
            self._authenticate,
            self._on_submit,
            system_id=self.config.system_id,
            window=self.config.window,
            enquire_link_interval=self.config.enquire_link_interval,
            on_bind=self._on_bind,
            on_unbind=self._on_unbind,
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

    async def send_mo(self, source: str, destination: str, text: str, *, system_id: str | None = None) -> None:
        """Queue a mobile-originated message for ``system_id`` (default: any bound receiving account)."""
        if system_id is None:
            for sid, sessions in self._by_system.items():
                if sessions:
                    system_id = sid
                    break
            else:
                raise RuntimeError("no bound session to deliver the MO message to")
        try:
            body, dcs = text.encode("ascii"), 0
        except UnicodeEncodeError:
            body, dcs = text.encode("utf-16-be"), 8
        pdu = DeliverSm(source_addr=source, destination_addr=destination, data_coding=dcs)
        if len(body) > 254:
            pdu.message_payload = body
        else:
            pdu.short_message = body
        self.stats.mo_pending += 1
        self._outbox.setdefault(system_id, deque()).append(pdu)
        self._pump(system_id)

    # -- binds ---------------------------------------------------------------------------------
    def _authenticate(self, system_id: str, password: str) -> bool | int:
        accounts = self.config.accounts
        if accounts is None:
            return True
        expected = accounts.get(system_id)
        if expected is None:
            self.stats.bind_failures += 1
            return ESME_RINVSYSID
        if expected != password:
            self.stats.bind_failures += 1
            return False
        return True

    def _on_bind(self, session: Session) -> None:
        self.stats.binds += 1
        if session.info.get("bind") == "transmitter" or session.is_closed:
            return
        system_id = session.info["system_id"]
        self._by_system.setdefault(system_id, []).append(session)
        self._pump(system_id)

    def _on_unbind(self, session: Session) -> None:
        sessions = self._by_system.get(session.info.get("system_id", ""))
        if sessions and session in sessions:
            sessions.remove(session)

    # -- submit --------------------------------------------------------------------------------
    def _on_submit(self, session: Session, pdu: SubmitSm) -> SubmitSmResp:
        st = self.stats
        st.submits += 1
        cfg = self.config
        loop = self._loop or asyncio.get_running_loop()
        if cfg.throttle_tps:
            now = loop.time()
            rate = float(cfg.throttle_tps)
            self._tokens = min(rate, self._tokens + (now - self._token_ts) * rate)
            self._token_ts = now
            if self._tokens < 1.0:
                st.submit_resps[ESME_RTHROTTLED] += 1
                return SubmitSmResp(sequence=pdu.sequence, command_status=ESME_RTHROTTLED)
            self._tokens -= 1.0
        if cfg.submit_error_rate and self._rng.random() < cfg.submit_error_rate:
            st.submit_resps[ESME_RSUBMITFAIL] += 1
            return SubmitSmResp(sequence=pdu.sequence, command_status=ESME_RSUBMITFAIL)
        message_id = f"{self._prefix}{next(self._counter):010x}"
        st.submit_resps[ESME_ROK] += 1
        rd = pdu.registered_delivery & 0x03
        if cfg.receipts and rd and self._cum:
            rng = self._rng
            stat = self._stats_list[bisect.bisect_right(self._cum, rng.random() * self._cum[-1])]
            if rd == 1 or stat != "DELIVRD":
                errs = RECEIPT_ERRORS.get(stat, ("000",))
                err = errs[0] if len(errs) == 1 else rng.choice(errs)
                lo, hi = cfg.receipt_delay
                self._schedule_receipt(
                    loop.time() + lo + (hi - lo) * rng.random(),
                    session.info.get("system_id", ""),
                    message_id,
                    stat,
                    err,
                    pdu,
                )
        return SubmitSmResp(sequence=pdu.sequence, message_id=message_id)

    def _now_date(self) -> str:
        sec = int(time.time())
        if self._date[0] // 60 != sec // 60:
            self._date = (sec, time.strftime("%y%m%d%H%M", time.localtime(sec)))
        return self._date[1]

    def _schedule_receipt(
        self, due: float, system_id: str, message_id: str, stat: str, err: str, submit: SubmitSm
    ) -> None:
        text = submit.short_message[:20].decode("latin-1") if submit.data_coding in (0, 1, 3) else ""
        date = self._now_date()
        receipt = DeliverSm(
            source_addr_ton=submit.dest_addr_ton,
            source_addr_npi=submit.dest_addr_npi,
            source_addr=submit.destination_addr,
            dest_addr_ton=submit.source_addr_ton,
            dest_addr_npi=submit.source_addr_npi,
            destination_addr=submit.source_addr,
            esm_class=ESM_CLASS_RECEIPT,
            short_message=format_receipt(message_id, stat, err, date, date, text).encode("latin-1"),
            receipted_message_id=message_id,
            message_state=STAT_TO_STATE.get(stat, 7),
            network_error_code=None if stat == "DELIVRD" else (3, int(err)),
        )
        self.stats.receipts_scheduled += 1
        self.stats.receipts_pending += 1
        self.stats.receipts_by_stat[stat] += 1
        heapq.heappush(self._heap, (due, next(self._seq), system_id, receipt))
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
            _, _, system_id, receipt = heapq.heappop(heap)
            q = outbox.get(system_id)
            if q is None:
                q = outbox[system_id] = deque()
            q.append(receipt)
            touched.add(system_id)
        for system_id in touched:
            self._pump(system_id)
        if heap:
            self._timer_at = heap[0][0]
            self._timer = self._loop.call_at(self._timer_at, self._fire)

    # -- pushing deliver_sm --------------------------------------------------------------------
    def _pump(self, system_id: str) -> None:
        q = self._outbox.get(system_id)
        if not q:
            return
        sessions = self._by_system.get(system_id)
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
                    fut.add_done_callback(functools.partial(self._delivered, system_id, pdu))
                    q.popleft()
                    break
            else:
                return  # every window is full: resumed from _delivered

    def _delivered(self, system_id: str, pdu: DeliverSm, fut: asyncio.Future[Any]) -> None:
        ok = not fut.cancelled() and fut.exception() is None and fut.result().command_status == ESME_ROK
        if ok:
            if pdu.esm_class & ESM_CLASS_RECEIPT:
                self.stats.receipts_sent += 1
                self.stats.receipts_pending -= 1
            else:
                self.stats.mo_sent += 1
                self.stats.mo_pending -= 1
        else:
            self._outbox.setdefault(system_id, deque()).appendleft(pdu)  # redeliver later
        self._pump(system_id)


async def run_simulator(host: str = "127.0.0.1", port: int = 2775, config: SimulatorConfig | None = None) -> None:
    """Run a simulator until cancelled (for the CLI)."""
    sim = SmppSimulator(host, port, config)
    bound = await sim.start()
    log.info("SMPP simulator listening on %s:%d", host, bound)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
