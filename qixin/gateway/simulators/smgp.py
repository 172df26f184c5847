"""China Telecom SMGW simulator speaking SMGP 3.0: the default telecom channel of the embedded demo,
the tests and the benches. Mirrors ``SmppSimulator``.

Behaviour (what every simulator shares — never_answer, throttling, outcomes, the receipt heap, the
per-account outbox — is stated in ``simulators/base.py``):

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
* ``record`` > 0 keeps the last ``record`` Submits received in ``submitted`` (for tests).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from qixin.gateway.simulators.base import (
    RECEIPT_ERRORS,
    SimulatorBase,
    SimulatorConfigBase,
    SimulatorStatsBase,
    serve_forever,
)
from qixin.protocols.session import Session
from qixin.protocols.smgp.codec import (
    MSG_FORMAT_ASCII,
    MSG_FORMAT_UCS2,
    STATUS_AUTH_FAILED,
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

REPORT_ERRORS = RECEIPT_ERRORS  # typical 'err' values per final stat
_MSG_SEQ_LIMIT = 1_000_000


@functools.lru_cache(maxsize=256)
def _report_tail(dlvrd: str, date: str, stat: str, err: str) -> bytes:
    """Everything ``encode_report`` writes between the 10-byte id and the text (the same for every
    report of one minute, stat and err)."""
    return encode_report(Report(b"\0" * 10, "001", dlvrd, date, date, stat, err, b""))[13:]


@dataclass
class SimulatorConfig(SimulatorConfigBase):
    # accounts: client_id -> shared secret; None accepts any client. throttle_tps: status 1 (system
    # busy) beyond it. never_answer: Submits get no answer (heartbeats still do).
    submit_error_status: int = STATUS_ROUTE_ERROR  # the answer at submit_error_rate
    heartbeat_interval: float = 30.0
    smgw_code: int = 100001  # 6 digits, first part of every MsgID
    record: int = 0  # keep the last N Submits in SmgpSimulator.submitted


@dataclass
class SimulatorStats(SimulatorStatsBase):
    submit_resps: Counter[int] = field(default_factory=Counter)  # by status
    logins: int = 0
    login_failures: int = 0


class SmgpSimulator(SimulatorBase[SimulatorConfig, SimulatorStats]):
    THROTTLE_STATUS = STATUS_SYSTEM_BUSY
    ACCOUNT_KEY = "client_id"
    CHECKS_SUBMITS = True

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        config: SimulatorConfig | None = None,
        seed: int | None = None,
    ) -> None:
        config = config or SimulatorConfig()
        if not 0 <= config.smgw_code <= 999999:
            raise ValueError("smgw_code must have at most 6 digits")
        super().__init__(config, SimulatorStats(), seed)
        self.submitted: deque[Submit] = deque(maxlen=max(self.config.record, 1))
        self._msg_seq = self._rng.randrange(_MSG_SEQ_LIMIT)
        self._minute = -1
        self._id_prefix = b""  # SMGW code + MMDDHHMM as 7 BCD bytes, per minute
        self._dates = ("", "")  # (YYMMDDhhmm, YYYYMMDDhhmmss) of the current second
        self._date_sec = -1
        self._accounts_auth = accounts_authenticator(self.config.accounts)
        self.server = SmgpServer(
            host,
            port,
            self._authenticate,
            self._on_submit,
            window=self.config.window,
            heartbeat_interval=self.config.heartbeat_interval,
            on_login=self._on_login,
            on_logout=self._on_unbind,
            limits=self.config.limits,
        )

    async def send_mo(self, src_term: str, dest_term: str, text: str, *, client_id: str | None = None) -> None:
        """Queue a mobile-originated message from ``src_term`` (the phone) to ``dest_term`` (service code
        + extension) for ``client_id`` (default: any client with a logged-in receiving session).
        ASCII text goes as MsgFormat 0, anything else as UCS-2 (8); at most 140 bytes."""
        if client_id is None:
            client_id = self._default_account("no logged-in receiving session to deliver the MO message to")
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
        self._queue_mo(client_id, (pdu,))

    # -- logins --------------------------------------------------------------------------------
    def _authenticate(self, login: Login) -> tuple[int, str | bytes | None]:
        if self.config.refuse_logins:
            self.stats.login_failures += 1
            return STATUS_AUTH_FAILED, None
        status, secret = self._accounts_auth(login)
        if status != STATUS_OK:
            self.stats.login_failures += 1
        return status, secret

    def _on_login(self, session: Session) -> None:
        self.stats.logins += 1
        if session.info.get("login_mode") == 0 or session.is_closed:  # send-only: no Deliver
            return
        self._attach(session)

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
        if self.config.record:
            self.submitted.append(pdu)
        resp: SubmitResp | None = SimulatorBase._on_submit(self, session, pdu)
        return resp

    def _malformed(self, pdu: Submit) -> int | None:
        return None if pdu.dest_term_ids else STATUS_BAD_STRUCTURE

    def _error_status(self) -> int:
        return self.config.submit_error_status

    def _refuse(self, pdu: Submit, status: int) -> SubmitResp:
        self.stats.submit_resps[status] += 1
        return SubmitResp(status=status, sequence=pdu.sequence)

    def _accept(self, session: Session, pdu: Submit) -> SubmitResp:
        cfg = self.config
        msg_id = self._next_msg_id()
        self.stats.submit_resps[STATUS_OK] += 1
        udhi = any(t.tag == 0x0002 and t.value[:1] == b"\x01" for t in pdu.tlvs)  # TP_udhi TLV
        self._to_handset(pdu.dest_term_ids, pdu.msg_format, pdu.msg_content, udhi)
        if cfg.receipts and pdu.need_report == 1 and self._cum:
            client_id = session.info.get("client_id", "")
            for dest in pdu.dest_term_ids:
                stat = self._draw_stat(dest)
                err = self._pick(REPORT_ERRORS.get(stat, ("000",)))
                due = self._due()
                self._schedule(due, client_id, self._report(msg_id, dest, stat, err, pdu), stat)
        return SubmitResp(msg_id=msg_id, status=STATUS_OK, sequence=pdu.sequence)

    def _report(self, msg_id: bytes, dest: str, stat: str, err: str, submit: Submit) -> Deliver:
        short, long = self._now_dates()
        txt = submit.msg_content[:20] if submit.msg_format == MSG_FORMAT_ASCII else b""
        content = b"id:" + msg_id + _report_tail("001" if stat == "DELIVRD" else "000", short, stat, err) + txt
        return Deliver(
            msg_id=self._next_msg_id(),
            is_report=1,
            msg_format=MSG_FORMAT_ASCII,
            recv_time=long,
            src_term_id=dest,
            dest_term_id=submit.src_term_id,
            msg_content=content,
        )

    # -- pushing Deliver -----------------------------------------------------------------------
    def _acked(self, resp: Any) -> bool:
        return resp.status == STATUS_OK

    def _is_receipt(self, item: Deliver) -> bool:
        return bool(item.is_report)

    def _unknown_receipt(self, item: Deliver) -> Deliver:
        # the MsgID of another SMGW (its first three BCD bytes): never issued here
        other = bytes.fromhex(f"{(self.config.smgw_code + 1) % 1_000_000:06d}")
        content = item.msg_content[:3] + other + item.msg_content[6:]
        return dataclasses.replace(item, msg_id=self._next_msg_id(), msg_content=content)

    def _refused(self, account: str, item: Deliver) -> bool:
        """Refused by the client (status != 0): give it a moment instead of spinning."""
        self._outbox_for(account).appendleft(item)
        if self._loop is None:
            return True
        self._loop.call_later(0.05, self._pump, account)
        return False


async def run_simulator(host: str = "127.0.0.1", port: int = 8890, config: SimulatorConfig | None = None) -> None:
    """Run a simulator until cancelled (for the CLI)."""
    await serve_forever(SmgpSimulator(host, port, config), host, "SMGP", log)
