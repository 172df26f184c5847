"""A channel connector over one CMPP 2.0 / 3.0 client session: messages in, outcomes and receipts out.

Rules (the same as ``SmppConnector``'s; the shared ones — sink reporting, retries, the LRU — are in
``connector_base``):

- Business-free: it turns an ``Outgoing`` message into SUBMIT PDUs, one per part (Pk_total /
  Pk_number, TP_udhi and the concatenation UDH from domain/text, Msg_Fmt 0 ASCII / 8 UCS-2 / 15 GBK
  as chosen by ``qixin.protocols.cmpp.text.encode_text``), Registered_Delivery 1, Msg_src = SP id,
  Src_Id = service code (``src_id``) + the message's extension (``Outgoing.extension`` when the
  message has one), Dest_terminal_Id = the number without its 86 country code. It reports to the
  sink: ``submitted`` when every part was accepted, ``failed`` when the ISMG refused a part for good,
  ``abandoned`` when it gave up without knowing (the queue lease brings such a message back), and
  ``receipt`` for every status report.
- Carrier message id: the 64-bit Msg_Id of the SUBMIT_RESP written as an unsigned decimal string
  (``carrier_id``), e.g. ``"13574283637563916289"``. The status report names its SUBMIT by the same
  Msg_Id (report body), rendered the same way, so receipts match.
- Status report -> ``Receipt(stat = report Stat, err = "")``; CMPP has no separate error field: the
  failure reason is the Stat itself (``MK:0005``, ``DB:0008`` …). The receipt is acknowledged
  (DELIVER_RESP) only when the sink's future resolves.
- MO (Registered_Delivery 0): counted, decoded by Msg_Fmt, long MO reassembled from its UDH parts,
  then handed to ``on_mo(dest_id, src_terminal_id, text)``; when that returns a future the DELIVER
  is acknowledged only once it resolves. (Parts of an unfinished long MO are acknowledged on
  arrival and kept in memory, at most ``MO_PARTS_MAX`` groups.)
- Flow control (Result 8), timeouts and lost sessions retry the part after a pause, up to
  ``retries`` times; the client itself slows down on flow control.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from qixin.gateway.connector_base import OK, REFUSED, RETRY, ProtocolConnector, single_part_cache
from qixin.protocols.cmpp.client import CmppClient
from qixin.protocols.cmpp.codec import (
    REPORT_SIZE_20,
    REPORT_SIZE_30,
    RESULT_FLOW_CONTROL,
    RESULT_OK,
    VERSION_20,
    VERSION_30,
    Deliver,
    ProtocolError,
    Submit,
    SubmitResp,
    decode_report,
)
from qixin.protocols.cmpp.text import decode_content, encode_text
from qixin.services.dispatch import Outgoing

__all__ = ["RETRYABLE", "CmppConnector", "carrier_id"]

log = logging.getLogger(__name__)

RETRYABLE = frozenset({RESULT_FLOW_CONTROL})
MO_PARTS_MAX = 1000

OnMo = Callable[[str, str, str], "asyncio.Future[Any] | None"]


def carrier_id(msg_id: int) -> str:
    """The platform's carrier message id for a CMPP Msg_Id: the unsigned 64-bit value in decimal."""
    return str(msg_id)


_single_part = single_part_cache(encode_text)


def _terminal_id(number: str) -> str:
    n = number[1:] if number.startswith("+") else number
    if n.startswith("86") and len(n) == 13:
        return n[2:]
    return n


class CmppConnector(ProtocolConnector):
    STATS = ("parts_sent", "retries", "receipts", "mo", "bad_reports")

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        sp_id: str,
        secret: str,
        *,
        version: int = VERSION_30,
        service_id: str = "",
        src_id: str = "1065800",
        window: int = 16,
        retries: int = 5,
        carriers: frozenset[str] | None = None,
        request_timeout: float = 10.0,
        on_mo: OnMo | None = None,
    ) -> None:
        if version not in (VERSION_20, VERSION_30):
            raise ValueError(f"CMPP version must be 0x20 or 0x30, not 0x{version:02X}")
        super().__init__(name, retries, carriers)
        self.sp_id = sp_id
        self.version = version
        self.service_id = service_id
        self.src_id = src_id
        self.on_mo = on_mo
        self.client = CmppClient(
            host,
            port,
            sp_id,
            secret,
            version=version,
            window=window,
            request_timeout=request_timeout,
            on_deliver=self._on_deliver,
        )
        self._mo_parts: OrderedDict[tuple[str, str, int, int], dict[int, str]] = OrderedDict()

    # -- outgoing --------------------------------------------------------------------------------
    def _pdus(self, item: Outgoing) -> list[Submit]:
        fmt, contents, udhi = self._encode(item.content, _single_part, encode_text)
        ext = getattr(item, "extension", "") or ""
        src_id = (self.src_id + ext)[:21]
        dest = (_terminal_id(item.number),)
        total = len(contents)
        return [
            Submit(
                pk_total=total,
                pk_number=k,
                registered_delivery=1,
                service_id=self.service_id,
                fee_user_type=2,  # the SP pays
                tp_udhi=1 if udhi else 0,
                msg_fmt=fmt,
                msg_src=self.sp_id,
                fee_type="01",  # free for the user
                fee_code="000000",
                src_id=src_id,
                dest_terminal_ids=dest,
                msg_content=c,
            )
            for k, c in enumerate(contents, 1)
        ]

    def _classify(self, resp: SubmitResp, pdu: Submit) -> tuple[int, str]:
        if resp.result == RESULT_OK:
            return OK, carrier_id(resp.msg_id)
        if resp.result in RETRYABLE:
            return RETRY, f"Result {resp.result}"
        return REFUSED, f"CMPP Result {resp.result}"

    # -- incoming --------------------------------------------------------------------------------
    def _on_deliver(self, pdu: Deliver) -> asyncio.Future[Any] | None:
        """Status reports go to the sink, whose future says when they are stored (then we acknowledge)."""
        if pdu.registered_delivery == 1:
            return self._on_report(pdu)
        return self._on_mo(pdu)

    def _on_report(self, pdu: Deliver) -> asyncio.Future[Any] | None:
        content = pdu.msg_content
        # decoded by length: a gateway may use the other version's report layout
        version = {REPORT_SIZE_20: VERSION_20, REPORT_SIZE_30: VERSION_30}.get(len(content), self.version)
        try:
            report = decode_report(content, version)
        except ProtocolError as exc:
            self.stats["bad_reports"] += 1
            log.warning("%s: undecodable status report acknowledged and dropped: %s", self.name, exc)
            return None
        return self._receipt(carrier_id(report.msg_id), (report.stat or "UNKNOWN").upper(), "")

    def _on_mo(self, pdu: Deliver) -> asyncio.Future[Any] | None:
        try:
            text, concat = decode_content(pdu.msg_fmt, pdu.msg_content, bool(pdu.tp_udhi))
        except ValueError as exc:
            log.warning("%s: undecodable MO from %s acknowledged and dropped: %s", self.name, pdu.src_terminal_id, exc)
            return None
        if concat is not None and concat.total > 1:
            key = (pdu.src_terminal_id, pdu.dest_id, concat.ref, concat.total)
            parts = self._mo_parts.get(key)
            if parts is None:
                parts = self._mo_parts[key] = {}
                while len(self._mo_parts) > MO_PARTS_MAX:
                    self._mo_parts.popitem(last=False)
            parts[concat.seq] = text
            if len(parts) < concat.total:
                return None
            del self._mo_parts[key]
            text = "".join(parts[k] for k in sorted(parts))
        self.stats["mo"] += 1
        if self.on_mo is None:
            return None
        return self.on_mo(pdu.dest_id, pdu.src_terminal_id, text)
