"""SMSC simulator speaking SMPP 3.4: the default channel of the embedded demo, the tests and the benches.

Behaviour (what every simulator shares — never_answer, throttling, outcomes, the receipt heap, the
per-account outbox — is stated in ``simulators/base.py``):

* Accepts binds from the configured accounts (``None`` = any system_id/password).
* Answers each submit_sm with a unique message id (instance prefix + hex counter), or with
  ESME_RTHROTTLED beyond ``throttle_tps`` (token bucket, one second of burst), or with
  ESME_RSUBMITFAIL at ``submit_error_rate``; with ``never_answer`` it swallows submit_sm (fault mode).
* Sends a delivery receipt (deliver_sm, esm_class 0x04, receipt text, TLVs receipted_message_id,
  message_state and, for failures, network_error_code) after a uniform random delay, when the submit
  asked for one (registered_delivery bits 0-1: 1 = always, 2 = failures only) and ``receipts`` is on.
  The outcome is drawn from ``outcomes`` (stat → weight) with a typical error code per stat.
* Receipts are queued per system_id. A receipt whose system_id has no bound receiving session waits
  until that system_id binds again, as real SMSCs do; a receipt answered with an error or lost with
  its connection is queued again.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections import Counter
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


@dataclass
class SimulatorConfig(SimulatorConfigBase):
    # accounts: system_id -> password; None accepts any
    enquire_link_interval: float = 30.0
    system_id: str = "qixin-smsc"


@dataclass
class SimulatorStats(SimulatorStatsBase):
    submit_resps: Counter[int] = field(default_factory=Counter)  # by command_status
    binds: int = 0
    bind_failures: int = 0


class SmppSimulator(SimulatorBase[SimulatorConfig, SimulatorStats]):
    THROTTLE_STATUS = ESME_RTHROTTLED
    ACCOUNT_KEY = "system_id"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        config: SimulatorConfig | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(config or SimulatorConfig(), SimulatorStats(), seed)
        self._prefix = f"{self._rng.getrandbits(24):06x}"
        self._counter = itertools.count(1)
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
            limits=self.config.limits,
        )

    async def send_mo(self, source: str, destination: str, text: str, *, system_id: str | None = None) -> None:
        """Queue a mobile-originated message for ``system_id`` (default: any bound receiving account)."""
        if system_id is None:
            system_id = self._default_account("no bound session to deliver the MO message to")
        try:
            body, dcs = text.encode("ascii"), 0
        except UnicodeEncodeError:
            body, dcs = text.encode("utf-16-be"), 8
        pdu = DeliverSm(source_addr=source, destination_addr=destination, data_coding=dcs)
        if len(body) > 254:
            pdu.message_payload = body
        else:
            pdu.short_message = body
        self._queue_mo(system_id, (pdu,))

    # -- binds ---------------------------------------------------------------------------------
    def _authenticate(self, system_id: str, password: str) -> bool | int:
        accounts = self.config.accounts
        if self.config.refuse_logins:
            self.stats.bind_failures += 1
            return False
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
        self._attach(session)

    # -- submit --------------------------------------------------------------------------------
    def _error_status(self) -> int:
        return ESME_RSUBMITFAIL

    def _refuse(self, pdu: SubmitSm, status: int) -> SubmitSmResp:
        self.stats.submit_resps[status] += 1
        return SubmitSmResp(sequence=pdu.sequence, command_status=status)

    def _accept(self, session: Session, pdu: SubmitSm) -> SubmitSmResp:
        cfg = self.config
        message_id = f"{self._prefix}{next(self._counter):010x}"
        self.stats.submit_resps[ESME_ROK] += 1
        self._to_handset((pdu.destination_addr,), pdu.data_coding, pdu.short_message, bool(pdu.esm_class & 0x40))
        rd = pdu.registered_delivery & 0x03
        if cfg.receipts and rd and self._cum:
            stat = self._draw_stat(pdu.destination_addr)
            if rd == 1 or stat != "DELIVRD":
                err = self._pick(RECEIPT_ERRORS.get(stat, ("000",)))
                due = self._due()
                self._schedule(due, session.info.get("system_id", ""), self._receipt(message_id, stat, err, pdu), stat)
        return SubmitSmResp(sequence=pdu.sequence, message_id=message_id)

    def _receipt(self, message_id: str, stat: str, err: str, submit: SubmitSm) -> DeliverSm:
        text = submit.short_message[:20].decode("latin-1") if submit.data_coding in (0, 1, 3) else ""
        date = self._now_date()
        return DeliverSm(
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

    # -- pushing deliver_sm --------------------------------------------------------------------
    def _acked(self, resp: Any) -> bool:
        return resp.command_status == ESME_ROK

    def _is_receipt(self, item: DeliverSm) -> bool:
        return item.esm_class & ESM_CLASS_RECEIPT != 0

    def _unknown_receipt(self, item: DeliverSm) -> DeliverSm:
        # the counter never reaches 0xff00000000: an id with this prefix that was never issued
        old = item.receipted_message_id or ""
        new = f"{self._prefix}ff{next(self._counter) & 0xFFFFFFFF:08x}"
        return dataclasses.replace(
            item, receipted_message_id=new, short_message=item.short_message.replace(old.encode(), new.encode(), 1)
        )


async def run_simulator(host: str = "127.0.0.1", port: int = 2775, config: SimulatorConfig | None = None) -> None:
    """Run a simulator until cancelled (for the CLI)."""
    await serve_forever(SmppSimulator(host, port, config), host, "SMPP", log)
