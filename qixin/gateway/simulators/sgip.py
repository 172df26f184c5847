"""China Unicom SMG simulator speaking SGIP 1.2: the Unicom channel of the embedded demo, tests and benches.

Behaviour (what every simulator shares — never_answer, throttling, outcomes, the receipt heap — is
stated in ``simulators/base.py``; the outbox here is per SP, pushed over the one connect-back session):

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
  ``drop_connections`` aborts both directions (SPs must reconnect; we reconnect to their listeners
  when reports are due).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from qixin.gateway.simulators.base import SimulatorBase, SimulatorConfigBase, SimulatorStatsBase, serve_forever
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
class SgipSimulatorConfig(SimulatorConfigBase):
    # accounts: login name -> password; None accepts any. window: outstanding Deliver/Report per
    # connect-back session. throttle_tps: Result 11 beyond it; submit_error_rate: Result 32.
    outcomes: dict[str, float] = field(default_factory=lambda: {"DELIVRD": 0.97, "UNDELIV": 0.03})
    sp_listeners: dict[str, tuple[str, int]] = field(default_factory=dict)  # login name -> SP listener
    smg_login_name: str = "smg"  # what we bind to SP listeners with (Login Type 2)
    smg_password: str = ""
    request_timeout: float = 10.0
    idle_timeout: float | None = 30.0  # unbind idle sessions (both directions)
    reconnect_min: float = 0.2  # connect-back retry backoff
    reconnect_max: float = 5.0
    node_id: int = 1_010_000_001  # the SMG's node number
    record_submits: bool = False  # keep every accepted Submit in ``submitted`` (tests)


@dataclass
class SgipSimulatorStats(SimulatorStatsBase):
    submit_users: int = 0  # UserNumbers in accepted Submits
    submit_results: Counter[int] = field(default_factory=Counter)  # by Result
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


class SgipSimulator(SimulatorBase[SgipSimulatorConfig, SgipSimulatorStats]):
    THROTTLE_STATUS = c.RESULT_NODE_BUSY
    ACCOUNT_KEY = "login_name"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        config: SgipSimulatorConfig | None = None,
        seed: int | None = None,
    ) -> None:
        cfg = config or SgipSimulatorConfig()
        for stat in cfg.outcomes:
            if stat not in REPORT_ERRORS:
                raise ValueError(f"unknown outcome {stat!r}; known: {sorted(REPORT_ERRORS)}")
        super().__init__(cfg, SgipSimulatorStats(), seed)
        self.submitted: list[c.Submit] = []
        self._sps: dict[str, _Sp] = {}
        for login, (h, p) in cfg.sp_listeners.items():
            self._sps[login] = _Sp(login, h, p)
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
            limits=cfg.limits,
        )

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> int:
        """Start listening; returns the port."""
        self._stopping = False
        return await super().start()

    async def stop(self) -> None:
        self._stopping = True
        for sp in self._sps.values():
            if sp.retry is not None:
                sp.retry.cancel()
                sp.retry = None
        await super().stop()

    def register_sp(
        self, login_name: str, host: str, port: int, password: str | None = None, *, login: str | None = None
    ) -> None:
        """Where to connect back for ``login_name``'s MO and reports, and the credentials (Login Type 2)
        to bind there with (default ``smg_login_name`` / ``smg_password`` of the config)."""
        sp = self._sp(login_name)
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
        self._queue_mo(login_name, (pdu,))

    # -- binds ---------------------------------------------------------------------------------
    def _authenticate(self, login_name: str, password: str) -> bool | int:
        accounts = self.config.accounts
        if self.config.refuse_logins:
            self.stats.bind_failures += 1
            return False
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
    def _error_status(self) -> int:
        return c.RESULT_SYSTEM_FAILURE

    def _refuse(self, pdu: c.Submit, status: int) -> c.SubmitResp:
        self.stats.submit_results[status] += 1
        return c.SubmitResp(status, "", *c.sequence_of(pdu))

    def _accept(self, session: Session, pdu: c.Submit) -> c.SubmitResp:
        st = self.stats
        cfg = self.config
        seq = c.sequence_of(pdu)
        st.submit_results[c.RESULT_OK] += 1
        st.submit_users += len(pdu.user_numbers)
        self._to_handset(pdu.user_numbers, pdu.message_coding, pdu.message_content, bool(pdu.tp_udhi))
        if cfg.record_submits:
            self.submitted.append(pdu)
        flag = pdu.report_flag
        if cfg.receipts and flag != 2 and self._cum:
            login = session.info.get("login_name", "")
            for user in pdu.user_numbers:
                stat = self._draw_stat()
                if flag == 0 and stat == "DELIVRD":
                    continue
                state, errors = REPORT_ERRORS[stat]
                err = self._pick(errors)
                report = c.Report(seq, c.REPORT_TYPE_SUBMIT, user, state, err)
                self._schedule(self._due(), login, report, stat)
        return c.SubmitResp(c.RESULT_OK, "", *seq)

    # -- connecting back and pushing -----------------------------------------------------------
    def _outbox_for(self, login: str) -> deque[Any]:
        return self._sp(login).outbox

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
            fut.add_done_callback(functools.partial(self._delivered, login, pdu))

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

    def _acked(self, resp: Any) -> bool:
        return resp.result == c.RESULT_OK

    def _is_receipt(self, item: Any) -> bool:
        return isinstance(item, c.Report)

    def _unknown_receipt(self, item: c.Report) -> c.Report:
        # a Submit sequence with timestamp 0 (MMDDhhmmss): no SP ever sends one
        seq = item.submit_sequence
        return dataclasses.replace(item, submit_sequence=c.SgipSeq(seq.node_id, 0, seq.counter))


async def run_simulator(host: str = "127.0.0.1", port: int = 8801, config: SgipSimulatorConfig | None = None) -> None:
    """Run a simulator until cancelled (for the CLI)."""
    await serve_forever(SgipSimulator(host, port, config), host, "SGIP", log)
