"""A channel connector over one SGIP 1.2 client (China Unicom): messages in, outcomes and receipts out.

Rules (the ones every connector shares — sink reporting, retries, the LRU — are in ``connector_base``):
- Business-free, like the SMPP connector: an ``Outgoing`` message becomes one Submit per part (one
  UserNumber, "86" + number; TP_udhi + concatenation UDH from domain/text for long texts; ReportFlag 1)
  and the sink hears ``submitted`` when every part was accepted, ``failed`` when the SMG refused a part
  for good, ``abandoned`` when it gave up without knowing (the queue lease brings it back), and
  ``receipt`` for every final Report.
- MessageCoding: 0 (ASCII) when the text is ASCII and fits the GSM 7-bit alphabet (the SMG sends it
  as 7-bit: 160 characters, 153 per part), else 8 (UCS-2: 70, 67 per part). GBK (15) arrives in MO
  only.
- The carrier message id is the Submit's 12-byte sequence, ``node-MMDDhhmmss-counter``
  (``qixin.protocols.sgip.codec.format_sequence``): ``Submitted.carrier_ids`` lists the accepted
  Submits' sequences in part order, and a Report's SubmitSequenceNumber formats to the same string.
- Report State 0 is DELIVRD; State 2 is UNDELIV, with the ErrorCode as ``err`` (3 digits); State 1
  (waiting) is not final and only acknowledged, as is a Report on a Deliver (ReportType 1). Receipts
  are acknowledged to the SMG only when the sink's future resolves.
- Deliver (MO) goes to ``on_mo(user_number, sp_number, text)`` (number without "86"); Userrpt is
  counted and acknowledged.
- Throttling (Result 11 / 33) and lost sessions retry the part after a pause, up to ``retries`` times.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from qixin.domain.text import DC_GSM7, DC_LATIN1, DC_UCS2, UCS2_PART, UCS2_SINGLE, decode_payload, encode_parts
from qixin.domain.text import gsm7_decode as _gsm7_decode
from qixin.gateway.connector_base import OK, REFUSED, RETRY, ProtocolConnector, single_part_cache
from qixin.protocols.sgip import codec as c
from qixin.protocols.sgip.adapter import carrier_id
from qixin.protocols.sgip.client import THROTTLE_RESULTS, SgipClient
from qixin.services.dispatch import Outgoing

__all__ = ["SgipConnector", "report_stat", "sgip_parts"]

CHARGE_SP = "0" * 21  # ChargeNumber of all zeros: the SP pays
MO_CODING = {c.CODING_ASCII: DC_LATIN1, c.CODING_UCS2: DC_UCS2, c.CODING_GBK: 15}

MoHandler = Callable[[str, str, str], Any]


def report_stat(state: int, error_code: int) -> str | None:
    """The receipt stat of a Report: DELIVRD, UNDELIV, or None for State 1 (waiting, not final)."""
    if state == c.STATE_DELIVERED:
        return "DELIVRD"
    if state == c.STATE_WAITING:
        return None
    return "UNDELIV"


def _udh(ref: int, total: int, seq: int) -> bytes:
    return bytes((5, 0x00, 3, ref & 0xFF, total, seq))


def _ucs2(text: str, ref: int) -> tuple[int, list[bytes], bool]:
    data = text.encode("utf-16-be")
    if len(data) <= UCS2_SINGLE * 2:
        return c.CODING_UCS2, [data], False
    chunks = []
    pos, step = 0, UCS2_PART * 2
    while pos < len(data):
        end = min(pos + step, len(data))
        if end < len(data) and 0xD8 <= data[end - 2] <= 0xDB:  # never split a surrogate pair
            end -= 2
        chunks.append(data[pos:end])
        pos = end
    total = len(chunks)
    return c.CODING_UCS2, [_udh(ref, total, i) + ch for i, ch in enumerate(chunks, 1)], True


def sgip_parts(text: str, ref: int) -> tuple[int, list[bytes], bool]:
    """``(MessageCoding, payloads, udhi)`` for ``text``; ``ref`` is the 8-bit concatenation reference."""
    if text.isascii():
        dc, payloads, udhi = encode_parts(text, ref & 0xFF)
        if dc == DC_GSM7:
            if not udhi:
                return c.CODING_ASCII, [text.encode("ascii")], False
            # same split as GSM 7-bit (the SMG sends it as such), but ASCII bytes on the wire
            out = []
            for p in payloads:
                head = p[0] + 1
                out.append(p[:head] + _gsm7_decode(p[head:]).encode("ascii"))
            return c.CODING_ASCII, out, True
        return c.CODING_UCS2, payloads, udhi
    return _ucs2(text, ref)


_single = single_part_cache(sgip_parts)


class SgipConnector(ProtocolConnector):
    STATS = ("parts_sent", "retries", "receipts", "mo", "userrpt", "reports_ignored")

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        login_name: str,
        password: str,
        *,
        node_id: int,
        sp_number: str,
        corp_id: str = "",
        service_type: str = "",
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        smg_login_name: str | None = None,
        smg_password: str | None = None,
        window: int = 16,
        retries: int = 5,
        idle_timeout: float | None = 60.0,
        carriers: frozenset[str] | None = None,
        on_mo: MoHandler | None = None,
    ) -> None:
        super().__init__(name, retries, carriers)
        self.sp_number = sp_number
        self.corp_id = corp_id
        self.service_type = service_type
        self.on_mo = on_mo
        self.client = SgipClient(
            host,
            port,
            login_name,
            password,
            node_id=node_id,
            listen_host=listen_host,
            listen_port=listen_port,
            smg_login_name=smg_login_name,
            smg_password=smg_password,
            window=window,
            idle_timeout=idle_timeout,
            on_deliver=self._on_deliver,
        )

    @property
    def listen_port(self) -> int:
        """Where the SMG must connect back to (known after ``start``)."""
        return self.client.listen_port

    # -- outgoing --------------------------------------------------------------------------------
    def _pdus(self, item: Outgoing) -> list[c.Submit]:
        coding, payloads, udhi = self._encode(item.content, _single, sgip_parts)
        user = c.add_country_code(item.number)
        return [
            c.Submit(
                sp_number=self.sp_number,
                charge_number=CHARGE_SP,
                user_numbers=(user,),
                corp_id=self.corp_id,
                service_type=self.service_type,
                fee_type=1,  # free of charge to the user
                fee_value="0",
                given_value="0",
                morelateto_mt_flag=2,  # MT not caused by an MO request
                report_flag=1,
                tp_udhi=1 if udhi else 0,
                message_coding=coding,
                message_content=p,
            )
            for p in payloads
        ]

    def _classify(self, resp: c.SubmitResp, pdu: c.Submit) -> tuple[int, str]:
        """The carrier id is the Submit's own sequence, given by the client when it was sent."""
        result = resp.result
        if result == c.RESULT_OK:
            return OK, carrier_id(pdu)
        if result in THROTTLE_RESULTS:
            return RETRY, f"Result {result}"
        return REFUSED, f"SGIP Result {result}"

    # -- incoming --------------------------------------------------------------------------------
    def _on_deliver(self, pdu: c.Deliver | c.Report | c.Userrpt) -> asyncio.Future[Any] | None:
        """Reports go to the sink, whose future says when they are stored (then we acknowledge)."""
        if isinstance(pdu, c.Report):
            stat = report_stat(pdu.state, pdu.error_code)
            if stat is None or pdu.report_type != c.REPORT_TYPE_SUBMIT:
                self.stats["reports_ignored"] += 1
                return None
            return self._receipt(c.format_sequence(pdu.submit_sequence), stat, f"{pdu.error_code:03d}")
        if isinstance(pdu, c.Deliver):
            self.stats["mo"] += 1
            if self.on_mo is not None:
                try:
                    text, _ = decode_payload(
                        MO_CODING.get(pdu.message_coding, DC_LATIN1), pdu.message_content, bool(pdu.tp_udhi)
                    )
                except ValueError:
                    text = pdu.message_content.decode("latin-1")
                result = self.on_mo(c.strip_country_code(pdu.user_number), pdu.sp_number, text)
                if isinstance(result, asyncio.Future):
                    return result
            return None
        self.stats["userrpt"] += 1
        return None
