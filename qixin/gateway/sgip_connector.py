"""A channel connector over one SGIP 1.2 client (China Unicom): messages in, outcomes and receipts out.

Rules:
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
import contextlib
import functools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from qixin.domain.text import DC_GSM7, DC_LATIN1, DC_UCS2, UCS2_PART, UCS2_SINGLE, decode_payload, encode_parts
from qixin.domain.text import gsm7_decode as _gsm7_decode
from qixin.protocols.sgip import codec as c
from qixin.protocols.sgip.adapter import carrier_id
from qixin.protocols.sgip.client import THROTTLE_RESULTS, SgipClient
from qixin.services.dispatch import Outgoing, Sink
from qixin.services.receipts import Failed, Receipt, Submitted
from qixin.store.db import now_ms

__all__ = ["SgipConnector", "report_stat", "sgip_parts"]

log = logging.getLogger(__name__)

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


@lru_cache(maxsize=4096)
def _single(text: str) -> tuple[int, tuple[bytes, ...], bool]:
    coding, payloads, udhi = sgip_parts(text, 0)
    return coding, tuple(payloads), udhi


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


@dataclass(slots=True)
class _InFlight:
    item: Outgoing
    pdus: list[c.Submit]
    ids: list[str | None]
    tries: list[int] = field(default_factory=list)
    remaining: int = 0
    done: bool = False


class SgipConnector:
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
        self.name = name
        self.sp_number = sp_number
        self.corp_id = corp_id
        self.service_type = service_type
        self.retries = retries
        self.carriers = carriers
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
        self._queue: deque[tuple[_InFlight, int]] = deque()
        self._wake = asyncio.Event()
        self._sink: Sink | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._ref = 0
        self.stats = {"parts_sent": 0, "retries": 0, "receipts": 0, "mo": 0, "userrpt": 0, "reports_ignored": 0}

    @property
    def listen_port(self) -> int:
        """Where the SMG must connect back to (known after ``start``)."""
        return self.client.listen_port

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

    def _pdus(self, item: Outgoing) -> list[c.Submit]:
        coding, payloads, udhi = _single(item.content)
        if len(payloads) > 1:
            self._ref = (self._ref + 1) & 0xFF
            coding, plist, udhi = sgip_parts(item.content, self._ref)
            payloads = tuple(plist)
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
            pdu = state.pdus[i]
            try:
                fut = await self.client.submit(pdu)
            except Exception as exc:  # session not bound / closed while waiting
                self._retry(state, i, f"send: {exc!r}", loop)
                continue
            self.stats["parts_sent"] += 1
            fut.add_done_callback(functools.partial(self._on_resp, state, i, carrier_id(pdu), loop=loop))

    def _retry(self, state: _InFlight, i: int, why: str, loop: asyncio.AbstractEventLoop) -> None:
        state.tries[i] += 1
        if state.tries[i] > self.retries:
            if not state.done:
                state.done = True
                assert self._sink is not None
                log.warning(
                    "%s: message %s abandoned after %d tries (%s)",
                    self.name,
                    state.item.message_id,
                    state.tries[i],
                    why,
                )
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
        self,
        state: _InFlight,
        i: int,
        cid: str,
        fut: asyncio.Future[c.SubmitResp],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        if state.done:
            return
        assert self._sink is not None
        exc = fut.exception() if not fut.cancelled() else asyncio.CancelledError()
        if exc is not None:
            self._retry(state, i, repr(exc), loop)
            return
        result = fut.result().result
        if result == c.RESULT_OK:
            if state.ids[i] is None:
                state.ids[i] = cid
                state.remaining -= 1
            if state.remaining == 0:
                state.done = True
                self._sink.submitted(
                    Submitted(state.item.message_id, self.name, [x or "" for x in state.ids], now_ms())
                )
        elif result in THROTTLE_RESULTS:
            self._retry(state, i, f"Result {result}", loop)
        else:
            state.done = True
            self._sink.failed(Failed(state.item.message_id, "SUBMIT_REJECTED", f"SGIP Result {result}", now_ms()))

    # -- incoming --------------------------------------------------------------------------------
    def _on_deliver(self, pdu: c.Deliver | c.Report | c.Userrpt) -> asyncio.Future[None] | None:
        """Reports go to the sink, whose future says when they are stored (then we acknowledge)."""
        if isinstance(pdu, c.Report):
            stat = report_stat(pdu.state, pdu.error_code)
            if stat is None or pdu.report_type != c.REPORT_TYPE_SUBMIT:
                self.stats["reports_ignored"] += 1
                return None
            self.stats["receipts"] += 1
            if self._sink is not None:
                cid = c.format_sequence(pdu.submit_sequence)
                return self._sink.receipt(Receipt(self.name, cid, stat, f"{pdu.error_code:03d}", now_ms()))
            return None
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
