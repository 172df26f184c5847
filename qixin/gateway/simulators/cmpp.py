"""China Mobile ISMG simulator speaking CMPP 2.0 and 3.0 (one port, the version the SP asks for).

Behaviour (what every simulator shares — never_answer, throttling, outcomes, the receipt heap, the
per-account outbox — is stated in ``simulators/base.py``):

* Accepts CONNECT from the configured accounts (SP id -> shared secret), checking AuthenticatorSource
  and answering AuthenticatorISMG. With ``accounts=None`` any SP id is accepted, with the shared
  secret ``default_secret`` (a CMPP login cannot be accepted without knowing the secret: the client
  checks AuthenticatorISMG, which is keyed by it).
* Answers each SUBMIT with a Msg_Id in the CMPP 64-bit layout (month, day, hour, minute, second of
  the local clock, ``gateway_id``, 16-bit sequence; unique as long as fewer than 65,536 submits arrive
  within one second), or with Result 8 (flow control) beyond ``throttle_tps`` (token bucket, one
  second of burst), or with ``submit_error_result`` at ``submit_error_rate``. With ``never_answer``
  the SUBMIT is swallowed (fault mode: the connection, CONNECT and ACTIVE_TEST still work);
  switch it at run time through ``sim.config.never_answer``.
* A SUBMIT with Registered_Delivery = 1 gets a status report per destination after a uniform random
  delay: a DELIVER with Registered_Delivery = 1 whose Msg_Content is the report body (Msg_Id of the
  SUBMIT_RESP, Stat, Submit_time, Done_time, Dest_terminal_Id, SMSC_sequence) in the layout of the
  version of the session it is pushed on. The Stat is drawn from ``outcomes`` (Stat -> weight); besides
  DELIVRD / UNDELIV / EXPIRED / REJECTD, gateways report failures as ``MK:xxxx`` / ``MI:xxxx`` /
  ``DB:xxxx`` … codes (7 characters), and any such string may be listed.
* Reports and MO are queued per SP id. A report whose SP has no connection waits until that SP
  connects again; one answered with a non-zero Result or lost with its connection is queued again.
* ``on_submit`` (optional attribute) sees every accepted SUBMIT with its Msg_Id (tests decode parts
  with it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qixin.gateway.simulators.base import SimulatorBase, SimulatorConfigBase, SimulatorStatsBase, serve_forever
from qixin.protocols.cmpp.codec import (
    RESULT_FLOW_CONTROL,
    RESULT_OK,
    RESULT_OTHER_ERROR,
    VERSION_20,
    VERSION_30,
    Deliver,
    Report,
    Submit,
    SubmitResp,
    encode_report,
    pack_msg_id,
)
from qixin.protocols.cmpp.server import CmppServer
from qixin.protocols.cmpp.text import encode_text
from qixin.protocols.errors import PduError
from qixin.protocols.session import Session

__all__ = ["CmppSimulator", "SimulatorConfig", "SimulatorStats", "run_simulator"]

log = logging.getLogger(__name__)

REDELIVER_DELAY = 0.2  # seconds before a DELIVER the SP answered with an error goes out again


def _default_outcomes() -> dict[str, float]:
    return {
        "DELIVRD": 0.95,
        "UNDELIV": 0.01,
        "EXPIRED": 0.01,
        "REJECTD": 0.005,
        "MK:0005": 0.01,  # handset-side failure (powered off / out of coverage …)
        "MI:0013": 0.01,  # network-side failure
        "DB:0008": 0.005,  # gateway database: number unknown / suspended
    }


@dataclass
class SimulatorConfig(SimulatorConfigBase):
    # accounts: SP id -> shared secret; None: any SP id with default_secret
    outcomes: dict[str, float] = field(default_factory=_default_outcomes)
    default_secret: str = "secret"
    submit_error_result: int = RESULT_OTHER_ERROR  # the answer at submit_error_rate
    heartbeat_interval: float = 30.0
    gateway_id: int = 0x1A2B3  # 22 bits of the Msg_Id
    versions: tuple[int, ...] = (VERSION_30, VERSION_20)


@dataclass
class SimulatorStats(SimulatorStatsBase):
    submit_resps: Counter[int] = field(default_factory=Counter)  # by Result
    binds: int = 0
    bind_failures: int = 0
    redeliveries: int = 0  # DELIVER queued again after an error answer or a lost connection


@dataclass(slots=True)
class _Out:
    deliver: Deliver
    report: Report | None  # encoded into deliver.msg_content for the version of the session


class CmppSimulator(SimulatorBase[SimulatorConfig, SimulatorStats]):
    THROTTLE_STATUS = RESULT_FLOW_CONTROL
    ACCOUNT_KEY = "sp_id"
    UNDELIVERABLE = (PduError,)

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        config: SimulatorConfig | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(config or SimulatorConfig(), SimulatorStats(), seed)
        self.on_submit: Callable[[Submit, int], None] | None = None
        self._id_sec = -1
        self._id_base = 0
        self._id_seq = 0
        self._smsc_seq = 0
        self._mo_ref = 0
        self.server = CmppServer(
            host,
            port,
            self._secret,
            self._on_submit,
            versions=self.config.versions,
            window=self.config.window,
            heartbeat_interval=self.config.heartbeat_interval,
            on_bind=self._on_bind,
            on_unbind=self._on_unbind,
            on_bind_failure=self._on_bind_failure,
            limits=self.config.limits,
        )

    async def send_mo(
        self, src_terminal: str, dest_id: str, text: str, *, sp_id: str | None = None, service_id: str = ""
    ) -> None:
        """Queue a mobile-originated message from ``src_terminal`` to the SP number ``dest_id`` for
        ``sp_id`` (default: any connected SP). A long text goes in several DELIVERs with a UDH."""
        if sp_id is None:
            sp_id = self._default_account("no connected SP to deliver the MO message to")
        self._mo_ref = (self._mo_ref + 1) & 0xFF
        fmt, contents, udhi = encode_text(text, self._mo_ref)
        self._queue_mo(
            sp_id,
            [
                _Out(
                    Deliver(
                        msg_id=self._next_msg_id(),
                        dest_id=dest_id,
                        service_id=service_id,
                        tp_udhi=1 if udhi else 0,
                        msg_fmt=fmt,
                        src_terminal_id=src_terminal,
                        registered_delivery=0,
                        msg_content=content,
                    ),
                    None,
                )
                for content in contents
            ],
        )

    # -- connects ------------------------------------------------------------------------------
    def _secret(self, sp_id: str) -> str | None:
        accounts = self.config.accounts
        if self.config.refuse_logins:
            return None  # refused as an unknown SP (on_bind_failure counts it)
        if accounts is None:
            return self.config.default_secret
        return accounts.get(sp_id)

    def _on_bind_failure(self, sp_id: str, status: int) -> None:
        self.stats.bind_failures += 1

    def _on_bind(self, session: Session) -> None:
        self.stats.binds += 1
        if session.is_closed:
            return
        self._attach(session)

    # -- submit --------------------------------------------------------------------------------
    def _next_msg_id(self) -> int:
        sec = int(time.time())
        if sec != self._id_sec:
            t = time.localtime(sec)
            self._id_sec = sec
            self._id_base = pack_msg_id(
                t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, min(t.tm_sec, 59), self.config.gateway_id, 0
            )
        self._id_seq = (self._id_seq + 1) & 0xFFFF
        return self._id_base | self._id_seq

    def _error_status(self) -> int:
        return self.config.submit_error_result

    def _refuse(self, pdu: Submit, status: int) -> SubmitResp:
        self.stats.submit_resps[status] += 1
        return SubmitResp(0, status, pdu.sequence)

    def _accept(self, session: Session, pdu: Submit) -> SubmitResp:
        cfg = self.config
        msg_id = self._next_msg_id()
        self.stats.submit_resps[RESULT_OK] += 1
        self._to_handset(pdu.dest_terminal_ids, pdu.msg_fmt, pdu.msg_content, bool(pdu.tp_udhi))
        if self.on_submit is not None:
            self.on_submit(pdu, msg_id)
        if cfg.receipts and pdu.registered_delivery == 1 and self._cum:
            sp_id = session.info.get("sp_id", "")
            for dest in pdu.dest_terminal_ids:
                stat = self._draw_stat(dest)
                self._schedule(self._due(), sp_id, self._report(msg_id, stat, dest, pdu), stat)
        return SubmitResp(msg_id, RESULT_OK, pdu.sequence)

    def _report(self, msg_id: int, stat: str, dest: str, submit: Submit) -> _Out:
        date = self._now_date()
        self._smsc_seq = (self._smsc_seq + 1) & 0xFFFFFFFF
        report = Report(msg_id, stat, date, date, dest, self._smsc_seq)
        deliver = Deliver(
            msg_id=self._next_msg_id(),
            dest_id=submit.src_id,
            service_id=submit.service_id,
            msg_fmt=0,
            src_terminal_id=dest,
            registered_delivery=1,
        )
        return _Out(deliver, report)

    # -- pushing DELIVER -----------------------------------------------------------------------
    def _request(self, session: Session, item: _Out) -> asyncio.Future[Any] | None:
        if not session.window.free:
            return None
        if item.report is not None:
            item.deliver.msg_content = encode_report(item.report, session.info.get("version", VERSION_30))
        return session.try_request(item.deliver)

    def _undeliverable(self, account: str, item: _Out, exc: Exception) -> None:
        # e.g. a number too long for a 2.0 session: cannot ever go out
        log.error("CMPP simulator: dropping undeliverable DELIVER for %s: %s", account, exc)
        self._settle(item)

    def _acked(self, resp: Any) -> bool:
        return resp.result == RESULT_OK

    def _is_receipt(self, item: _Out) -> bool:
        return item.report is not None

    def _copy_receipt(self, item: _Out) -> _Out:
        return _Out(dataclasses.replace(item.deliver), item.report)

    def _unknown_receipt(self, item: _Out) -> _Out:
        # the lowest bit of the 22-bit gateway id flipped: a Msg_Id of another gateway, never issued here
        assert item.report is not None
        report = dataclasses.replace(item.report, msg_id=item.report.msg_id ^ (1 << 16))
        return _Out(dataclasses.replace(item.deliver, msg_id=self._next_msg_id()), report)

    def _lost(self, account: str, item: _Out) -> None:
        """Connection gone or no answer: first in line when the SP is back."""
        self.stats.redeliveries += 1
        super()._lost(account, item)

    def _refused(self, account: str, item: _Out) -> bool:
        """The SP answered an error: try again a little later, not in a hot loop."""
        self.stats.redeliveries += 1
        assert self._loop is not None
        self._schedule(self._loop.time() + REDELIVER_DELAY, account, item)
        return True


async def run_simulator(host: str = "127.0.0.1", port: int = 7890, config: SimulatorConfig | None = None) -> None:
    """Run a simulator until cancelled (for the CLI)."""
    await serve_forever(CmppSimulator(host, port, config), host, "CMPP", log)
