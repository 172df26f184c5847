"""A channel connector over one SMGP 3.0 client session (China Telecom): messages in, outcomes and
receipts out. Mirrors ``SmppConnector``.

Rules:
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
import contextlib
import functools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from qixin.domain.text import DC_GBK, DC_LATIN1, DC_UCS2, Concat, decode_payload, encode_parts, gsm7_decode
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
from qixin.services.dispatch import Outgoing, Sink
from qixin.services.receipts import Failed, Receipt, Submitted
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


@lru_cache(maxsize=4096)
def _single_part(text: str) -> tuple[int, tuple[bytes, ...], bool]:
    fmt, payloads, udhi = smgp_parts(text, 0)
    return fmt, tuple(payloads), udhi


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


@dataclass(slots=True)
class _InFlight:
    item: Outgoing
    pdus: list[Submit]
    ids: list[str | None]
    tries: list[int] = field(default_factory=list)
    remaining: int = 0
    done: bool = False


class SmgpConnector:
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
        self.name = name
        self.service_id = service_id
        self.src_term_id = src_term_id
        self.fee_type = fee_type
        self.fee_code = fee_code
        self.retries = retries
        self.carriers = carriers
        self.on_mo = on_mo
        self.client = SmgpClient(
            host, port, client_id, secret, window=window, request_timeout=request_timeout, on_deliver=self._on_deliver
        )
        self._queue: deque[tuple[_InFlight, int]] = deque()
        self._wake = asyncio.Event()
        self._sink: Sink | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._ref = 0
        self.stats = {"parts_sent": 0, "retries": 0, "receipts": 0, "bad_receipts": 0, "mo": 0}

    def carries(self, carrier: str, msg_type: str) -> bool:
        return self.carriers is None or carrier in self.carriers

    async def start(self, sink: Sink) -> None:
        self._sink = sink
        await self.client.start()
        self._pump_task = asyncio.create_task(self._pump(), name=f"connector-{self.name}")

    async def stop(self) -> None:
        if self._pump_task:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
        await self.client.stop()

    # -- outgoing --------------------------------------------------------------------------------
    def submit(self, item: Outgoing) -> None:
        pdus = self._pdus(item)
        state = _InFlight(item, pdus, [None] * len(pdus), [0] * len(pdus), len(pdus))
        for i in range(len(pdus)):
            self._queue.append((state, i))
        self._wake.set()

    def _pdus(self, item: Outgoing) -> list[Submit]:
        fmt, payloads, udhi = _single_part(item.content)
        if len(payloads) > 1:
            self._ref = (self._ref + 1) & 0xFF
            fmt, plist, udhi = smgp_parts(item.content, self._ref)
            payloads = tuple(plist)
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

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            state, i = self._queue.popleft()
            if state.done:
                continue
            try:
                fut = await self.client.submit(state.pdus[i])
            except Exception as exc:  # session not logged in / closed while waiting
                self._retry(state, i, f"send: {exc!r}", loop)
                continue
            self.stats["parts_sent"] += 1
            fut.add_done_callback(functools.partial(self._on_resp, state, i, loop=loop))

    def _retry(self, state: _InFlight, i: int, why: str, loop: asyncio.AbstractEventLoop) -> None:
        state.tries[i] += 1
        if state.tries[i] > self.retries:
            if not state.done:
                state.done = True
                log.warning(
                    "%s: message %d abandoned after %d tries: %s", self.name, state.item.message_id, state.tries[i], why
                )
                assert self._sink is not None
                self._sink.abandoned(state.item.message_id)
            return
        self.stats["retries"] += 1
        delay = min(0.2 * (2 ** (state.tries[i] - 1)), 5.0)
        loop.call_later(delay, self._requeue, state, i)

    def _requeue(self, state: _InFlight, i: int) -> None:
        if not state.done:
            self._queue.appendleft((state, i))
            self._wake.set()

    def _on_resp(
        self, state: _InFlight, i: int, fut: asyncio.Future[SubmitResp], loop: asyncio.AbstractEventLoop
    ) -> None:
        if state.done:
            return
        assert self._sink is not None
        exc = fut.exception() if not fut.cancelled() else asyncio.CancelledError()
        if exc is not None:
            self._retry(state, i, repr(exc), loop)
            return
        resp = fut.result()
        if not isinstance(resp, SubmitResp):  # a confused gateway: treat like no answer
            self._retry(state, i, f"answered with {type(resp).__name__}", loop)
            return
        if resp.status == STATUS_OK:
            if state.ids[i] is None:
                state.ids[i] = msg_id_hex(resp.msg_id)
                state.remaining -= 1
            if state.remaining == 0:
                state.done = True
                self._sink.submitted(
                    Submitted(state.item.message_id, self.name, [x or "" for x in state.ids], now_ms())
                )
        elif resp.status in THROTTLE_STATUSES:
            self._retry(state, i, f"status {status_name(resp.status)}", loop)
        else:
            state.done = True
            self._sink.failed(Failed(state.item.message_id, "SUBMIT_REJECTED", status_name(resp.status), now_ms()))

    # -- incoming --------------------------------------------------------------------------------
    def _on_deliver(self, pdu: Deliver) -> asyncio.Future[None] | None:
        """Reports go to the sink, whose future says when they are stored (then the client acknowledges)."""
        if pdu.is_report == 1:
            try:
                report = decode_report(pdu.msg_content)
            except PduError as exc:
                self.stats["bad_receipts"] += 1
                log.warning("%s: unreadable status report %r: %s", self.name, pdu.msg_content[:120], exc)
                return None  # acknowledged: a redelivery would not parse either
            self.stats["receipts"] += 1
            if self._sink is not None:
                stat = (report.stat or "UNKNOWN").upper()
                return self._sink.receipt(Receipt(self.name, msg_id_hex(report.msg_id), stat, report.err, now_ms()))
            return None
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
