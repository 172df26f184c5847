"""A channel connector over one SMGP 3.0 client session (China Telecom): messages in, outcomes and
receipts out. Mirrors ``SmppConnector``.

Rules (the ones every connector shares — sink reporting, retries, the LRU — are in ``connector_base``):
- Business-free: it turns an ``Outgoing`` message into SMGP Submits (one per part, DestTermID = the
  11-digit number, SrcTermID = service code + extension, NeedReport 1) and reports to the sink:
  ``submitted`` when every part was accepted (carrier ids = each part's MsgID as 20 BCD digits,
  ``msg_id_hex``, the same string the status report's ``id:`` gives), ``failed`` when the gateway
  refused a part for good, ``abandoned`` when it gave up without knowing (the queue lease brings such
  a message back), and ``receipt`` for every status report (stat and err of the report text).
- Text: MsgFormat 0 (ASCII) when the whole text is ASCII and in the GSM 03.38 alphabet, with the same
  part boundaries as ``domain.text`` bills; otherwise MsgFormat 8 (UCS-2). A long message goes as
  parts carrying the concatenation UDH from ``encode_parts`` with TP_udhi = 1; every part carries
  PkTotal / PkNumber. MO in MsgFormat 0, 8 and 15 (GB) is decoded.
- Flow control (status 1, system busy), lost sessions and unanswered submits retry the part after a
  pause, up to ``retries`` times; the client itself slows down on flow control.
- Status reports are acknowledged only when the sink's future resolves (the client does that);
  MO goes to ``on_mo`` (acknowledged the same way when it returns a future), or is acknowledged and
  counted when there is none.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from qixin.domain.text import DC_GBK, DC_LATIN1, DC_UCS2, Concat, decode_payload, encode_parts, gsm7_decode
from qixin.gateway.connector_base import OK, REFUSED, RETRY, ProtocolConnector, single_part_cache
from qixin.protocols.errors import PduError
from qixin.protocols.smgp.client import THROTTLE_STATUSES, SmgpClient
from qixin.protocols.smgp.codec import (
    MSG_FORMAT_ASCII,
    MSG_FORMAT_GB,
    MSG_FORMAT_UCS2,
    MSG_TYPE_MT,
    STATUS_OK,
    TAG_LINK_ID,
    TAG_PK_NUMBER,
    TAG_PK_TOTAL,
    TAG_TP_UDHI,
    Deliver,
    Submit,
    SubmitResp,
    Tlv,
    decode_report,
    get_tlv_int,
    get_tlv_str,
    msg_id_hex,
    status_name,
    tlv_u8,
)
from qixin.services.dispatch import Outgoing
from qixin.store.db import now_ms

__all__ = ["MoMessage", "SmgpConnector", "smgp_parts"]

log = logging.getLogger(__name__)

_UCS2_SINGLE = 140  # bytes
_UCS2_PART = 134  # 67 units after a 6-byte UDH
_MO_CODING = {MSG_FORMAT_ASCII: DC_LATIN1, MSG_FORMAT_UCS2: DC_UCS2, MSG_FORMAT_GB: DC_GBK}


@dataclass(slots=True)
class MoMessage:
    """A mobile-originated message as received on a channel (reassembly of long MO is the caller's)."""

    channel: str
    source: str  # the phone number (SrcTermID)
    destination: str  # service code + extension (DestTermID): routes the reply to an account
    text: str
    concat: Concat | None
    link_id: str | None
    at: int


def _udh(ref: int, total: int, seq: int) -> bytes:
    if ref < 256:
        return bytes((5, 0x00, 3, ref, total, seq))
    return bytes((6, 0x08, 4, ref >> 8, ref & 0xFF, total, seq))


def _ucs2_parts(text: str, ref: int) -> tuple[int, list[bytes], bool]:
    body = text.encode("utf-16-be")
    if len(body) <= _UCS2_SINGLE:
        return MSG_FORMAT_UCS2, [body], False
    step = _UCS2_PART - (2 if ref >= 256 else 0)
    chunks: list[bytes] = []
    pos = 0
    while pos < len(body):
        end = pos + step
        if end < len(body) and 0xD8 <= body[end - 2] <= 0xDB:  # never split a surrogate pair
            end -= 2
        chunks.append(body[pos:end])
        pos = end
    total = len(chunks)
    return MSG_FORMAT_UCS2, [_udh(ref, total, i) + c for i, c in enumerate(chunks, 1)], True


def smgp_parts(text: str, ref: int) -> tuple[int, list[bytes], bool]:
    """``(MsgFormat, payloads, udhi)`` for ``text``: ASCII (0) when every character is ASCII and in
    the GSM alphabet (parts cut exactly where ``domain.text`` bills them), else UCS-2 (8)."""
    dc, payloads, udhi = encode_parts(text, ref)
    if dc == DC_UCS2:
        return MSG_FORMAT_UCS2, payloads, udhi
    if not text.isascii():  # GSM-7 letters such as é or £ have no ASCII byte: send UCS-2
        return _ucs2_parts(text, ref)
    out = []
    for p in payloads:
        head = p[: p[0] + 1] if udhi else b""
        out.append(head + gsm7_decode(p[len(head) :]).encode("ascii"))
    return MSG_FORMAT_ASCII, out, udhi


_single_part = single_part_cache(smgp_parts)


@lru_cache(maxsize=1024)
def _part_tlvs(udhi: bool, total: int, number: int) -> tuple[Tlv, ...]:
    tlvs = [tlv_u8(TAG_PK_TOTAL, total), tlv_u8(TAG_PK_NUMBER, number)]
    if udhi:
        tlvs.insert(0, tlv_u8(TAG_TP_UDHI, 1))
    return tuple(tlvs)


def _dest(number: str) -> str:
    n = number[1:] if number.startswith("+") else number
    if len(n) == 13 and n.startswith("86"):
        return n[2:]
    return n


class SmgpConnector(ProtocolConnector):
    STATS = ("parts_sent", "retries", "receipts", "bad_receipts", "mo")

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        client_id: str,
        secret: str,
        *,
        service_id: str = "",
        src_term_id: str = "10690000",
        fee_type: str = "00",
        fee_code: str = "000000",
        window: int = 16,
        retries: int = 5,
        request_timeout: float = 10.0,
        carriers: frozenset[str] | None = None,
        on_mo: Callable[[MoMessage], asyncio.Future[None] | None] | None = None,
    ) -> None:
        super().__init__(name, retries, carriers)
        self.service_id = service_id
        self.src_term_id = src_term_id
        self.fee_type = fee_type
        self.fee_code = fee_code
        self.on_mo = on_mo
        self.client = SmgpClient(
            host, port, client_id, secret, window=window, request_timeout=request_timeout, on_deliver=self._on_deliver
        )

    # -- outgoing --------------------------------------------------------------------------------
    def _pdus(self, item: Outgoing) -> list[Submit]:
        fmt, payloads, udhi = self._encode(item.content, _single_part, smgp_parts)
        dest = (_dest(item.number),)
        total = len(payloads)
        return [
            Submit(
                msg_type=MSG_TYPE_MT,
                need_report=1,
                service_id=self.service_id,
                fee_type=self.fee_type,
                fee_code=self.fee_code,
                msg_format=fmt,
                src_term_id=self.src_term_id,
                dest_term_ids=dest,
                msg_content=p,
                tlvs=_part_tlvs(udhi, total, i),
            )
            for i, p in enumerate(payloads, 1)
        ]

    def _classify(self, resp: SubmitResp, pdu: Submit) -> tuple[int, str]:
        if not isinstance(resp, SubmitResp):  # a confused gateway: treat like no answer
            return RETRY, f"answered with {type(resp).__name__}"
        if resp.status == STATUS_OK:
            return OK, msg_id_hex(resp.msg_id)
        if resp.status in THROTTLE_STATUSES:
            return RETRY, f"status {status_name(resp.status)}"
        return REFUSED, status_name(resp.status)

    # -- incoming --------------------------------------------------------------------------------
    def _on_deliver(self, pdu: Deliver) -> asyncio.Future[Any] | None:
        """Reports go to the sink, whose future says when they are stored (then the client acknowledges)."""
        if pdu.is_report == 1:
            try:
                report = decode_report(pdu.msg_content)
            except PduError as exc:
                self.stats["bad_receipts"] += 1
                log.warning("%s: unreadable status report %r: %s", self.name, pdu.msg_content[:120], exc)
                return None  # acknowledged: a redelivery would not parse either
            return self._receipt(msg_id_hex(report.msg_id), (report.stat or "UNKNOWN").upper(), report.err)
        self.stats["mo"] += 1
        if self.on_mo is None:
            return None
        udhi = bool(get_tlv_int(pdu.tlvs, TAG_TP_UDHI, 0))
        try:
            text, concat = decode_payload(_MO_CODING.get(pdu.msg_format, DC_LATIN1), pdu.msg_content, udhi)
        except ValueError:
            text, concat = pdu.msg_content.decode("latin-1"), None
        link_id = get_tlv_str(pdu.tlvs, TAG_LINK_ID)
        return self.on_mo(MoMessage(self.name, pdu.src_term_id, pdu.dest_term_id, text, concat, link_id, now_ms()))
