"""A channel connector over one SMPP client session: messages in, outcomes and receipts out.

Rules:
- Business-free: it turns an ``Outgoing`` message into submit_sm PDUs (one per part, concatenation
  UDH from domain/text) and reports to the sink: ``submitted`` when every part was accepted,
  ``failed`` when the SMSC refused a part for good, ``abandoned`` when it gave up without knowing
  (the queue lease brings such a message back), and ``receipt`` for every delivery receipt.
- Throttling answers (ESME_RTHROTTLED, ESME_RMSGQFUL) and lost sessions retry the part after a pause,
  up to ``retries`` times; the client itself slows down on throttling.
- One encode per distinct single-part text (an LRU), since batches repeat one content.
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

from qixin.domain.text import decode_payload, encode_parts
from qixin.protocols.smpp.client import SmppClient
from qixin.protocols.smpp.codec import (
    ESM_CLASS_RECEIPT,
    ESM_CLASS_TYPE_MASK,
    ESM_CLASS_UDHI,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RTHROTTLED,
    DeliverSm,
    SubmitSm,
    SubmitSmResp,
    parse_receipt,
)
from qixin.services.dispatch import Outgoing, Sink
from qixin.services.receipts import Failed, Receipt, Submitted
from qixin.store.db import now_ms

log = logging.getLogger(__name__)

RETRYABLE = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})


@lru_cache(maxsize=4096)
def _single_part(text: str) -> tuple[int, tuple[bytes, ...], bool]:
    dc, payloads, udhi = encode_parts(text, 0)
    return dc, tuple(payloads), udhi


@dataclass(slots=True)
class _InFlight:
    item: Outgoing
    pdus: list[SubmitSm]
    ids: list[str | None]
    tries: list[int] = field(default_factory=list)
    remaining: int = 0
    done: bool = False


class SmppConnector:
    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        system_id: str,
        password: str,
        *,
        source_addr: str = "10690000",
        window: int = 256,
        retries: int = 5,
        carriers: frozenset[str] | None = None,
        on_mo: Callable[[str, str, str, str], asyncio.Future[None] | None] | None = None,
    ) -> None:
        self.name = name
        self.on_mo = on_mo
        self.source_addr = source_addr
        self.retries = retries
        self.carriers = carriers
        self.client = SmppClient(host, port, system_id, password, window=window, on_deliver=self._on_deliver)
        self._queue: deque[tuple[_InFlight, int]] = deque()
        self._wake = asyncio.Event()
        self._sink: Sink | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._ref = 0
        self.stats = {"parts_sent": 0, "retries": 0, "receipts": 0, "mo": 0}

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

    def _pdus(self, item: Outgoing) -> list[SubmitSm]:
        dc, payloads, udhi = _single_part(item.content)
        if len(payloads) > 1:
            self._ref = (self._ref + 1) & 0xFF
            dc, plist, udhi = encode_parts(item.content, self._ref)
            payloads = tuple(plist)
        esm = ESM_CLASS_UDHI if udhi else 0
        dest = "86" + item.number if len(item.number) == 11 else item.number
        return [
            SubmitSm(
                source_addr_ton=0,
                source_addr_npi=0,
                source_addr=self.source_addr + item.extension,
                dest_addr_ton=1,
                dest_addr_npi=1,
                destination_addr=dest,
                esm_class=esm,
                registered_delivery=1,
                data_coding=dc,
                short_message=p,
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
            try:
                fut = await self.client.submit(state.pdus[i])
            except Exception as exc:  # session not bound / closed while waiting
                self._retry(state, i, f"send: {exc!r}", loop)
                continue
            self.stats["parts_sent"] += 1
            fut.add_done_callback(functools.partial(self._on_resp, state, i, loop=loop))

    def _retry(self, state: _InFlight, i: int, why: str, loop: asyncio.AbstractEventLoop) -> None:
        state.tries[i] += 1
        if state.tries[i] > self.retries:
            if not state.done:
                state.done = True
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
        self, state: _InFlight, i: int, fut: asyncio.Future[SubmitSmResp], loop: asyncio.AbstractEventLoop
    ) -> None:
        if state.done:
            return
        assert self._sink is not None
        exc = fut.exception() if not fut.cancelled() else asyncio.CancelledError()
        if exc is not None:
            self._retry(state, i, repr(exc), loop)
            return
        resp = fut.result()
        if resp.command_status == ESME_ROK:
            if state.ids[i] is None:
                state.ids[i] = resp.message_id
                state.remaining -= 1
            if state.remaining == 0:
                state.done = True
                self._sink.submitted(
                    Submitted(state.item.message_id, self.name, [x or "" for x in state.ids], now_ms())
                )
        elif resp.command_status in RETRYABLE:
            self._retry(state, i, f"status 0x{resp.command_status:02X}", loop)
        else:
            state.done = True
            self._sink.failed(
                Failed(state.item.message_id, "SUBMIT_REJECTED", f"0x{resp.command_status:08X}", now_ms())
            )

    # -- incoming --------------------------------------------------------------------------------
    def _on_deliver(self, pdu: DeliverSm) -> asyncio.Future[None] | None:
        """Receipts go to the sink, whose future says when they are stored (then we acknowledge)."""
        if pdu.esm_class & ESM_CLASS_TYPE_MASK == ESM_CLASS_RECEIPT:
            fields = parse_receipt(pdu.text_bytes.decode("latin-1", "replace"))
            carrier_id = pdu.receipted_message_id or fields.get("id", "")
            stat = (fields.get("stat") or "UNKNOWN").upper()
            err = fields.get("err") or ""
            self.stats["receipts"] += 1
            if self._sink is not None and carrier_id:
                return self._sink.receipt(Receipt(self.name, carrier_id, stat, err, now_ms()))
            return None
        self.stats["mo"] += 1
        if self.on_mo is None:
            return None
        text, _ = decode_payload(pdu.data_coding, pdu.text_bytes, bool(pdu.esm_class & ESM_CLASS_UDHI))
        source = (
            pdu.source_addr[2:] if pdu.source_addr.startswith("86") and len(pdu.source_addr) == 13 else pdu.source_addr
        )
        return self.on_mo(self.name, source, pdu.destination_addr, text)
