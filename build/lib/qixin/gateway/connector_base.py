"""What every channel connector does the same way: one protocol client session, messages in, outcomes and
receipts out. Each protocol's connector (smpp, cmpp, sgip, smgp) states only how an ``Outgoing`` becomes
its submit PDUs, how a submit answer is classified, and how a deliver becomes a receipt or MO.

Rules:
- Business-free: it turns an ``Outgoing`` message into submit PDUs, one per part, and reports to the sink:
  ``submitted`` when every part was accepted (carrier ids in part order), ``failed`` when the carrier
  refused a part for good, ``abandoned`` when it gave up without knowing (the queue lease brings such a
  message back), and ``receipt`` for every final status report.
- Parts are pipelined through the client from one queue; throttling answers (the protocol's
  retryable statuses), unanswered submits and lost sessions retry the part after a pause
  (0.2 s doubling, at most 5 s), first in line, up to ``retries`` times; the client itself slows down
  on throttling.
- Receipts go to the sink, whose future says when they are stored: the deliver is acknowledged only
  when it resolves.
- One encode per distinct single-part text (an LRU), since batches repeat one content; a long text
  gets a new 8-bit concatenation reference.
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

from qixin.services.dispatch import Outgoing, Sink
from qixin.services.receipts import Failed, Receipt, Submitted
from qixin.store.db import now_ms

__all__ = ["OK", "REFUSED", "RETRY", "Encoder", "ProtocolConnector", "single_part_cache"]

log = logging.getLogger(__name__)

# what a submit answer means (``ProtocolConnector._classify``)
OK = 0  # accepted: the value is the part's carrier id
RETRY = 1  # throttled or not understood: the value says why; the part goes again after a pause
REFUSED = 2  # refused for good: the value is the failure detail

# (text, concatenation reference) -> (data coding / message format, payloads, udhi)
Encoder = Callable[[str, int], tuple[int, list[bytes], bool]]
SingleEncoder = Callable[[str], tuple[int, tuple[bytes, ...], bool]]


def single_part_cache(encode: Encoder) -> SingleEncoder:
    """``encode`` with reference 0 behind an LRU: batches repeat one content."""

    @lru_cache(maxsize=4096)
    def single(text: str) -> tuple[int, tuple[bytes, ...], bool]:
        dc, payloads, udhi = encode(text, 0)
        return dc, tuple(payloads), udhi

    return single


@dataclass(slots=True)
class _InFlight:
    item: Outgoing
    pdus: list[Any]
    ids: list[str | None]
    tries: list[int] = field(default_factory=list)
    remaining: int = 0
    done: bool = False


class ProtocolConnector:
    """The shared machinery; a protocol sets ``client`` (with ``on_deliver=self._on_deliver``) and
    implements ``_pdus``, ``_classify`` and ``_on_deliver``."""

    STATS: tuple[str, ...] = ("parts_sent", "retries", "receipts", "mo")  # the keys of ``stats``, in order

    client: Any

    def __init__(self, name: str, retries: int, carriers: frozenset[str] | None) -> None:
        self.name = name
        self.retries = retries
        self.carriers = carriers
        self._queue: deque[tuple[_InFlight, int]] = deque()
        self._wake = asyncio.Event()
        self._sink: Sink | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._ref = 0
        self.stats = dict.fromkeys(self.STATS, 0)

    # -- hooks ---------------------------------------------------------------------------------
    def _pdus(self, item: Outgoing) -> list[Any]:
        """The submit PDUs of a message, one per part."""
        raise NotImplementedError

    def _classify(self, resp: Any, pdu: Any) -> tuple[int, str]:
        """What the answer ``resp`` to the submit ``pdu`` means: ``(OK, carrier id)``, ``(RETRY, why)`` or
        ``(REFUSED, detail)``."""
        raise NotImplementedError

    def _on_deliver(self, pdu: Any) -> asyncio.Future[Any] | None:
        """A deliver from the carrier: a receipt (hand it to ``_receipt``) or MO. A future returned
        delays the acknowledgement until it resolves."""
        raise NotImplementedError

    # -- lifecycle -----------------------------------------------------------------------------
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

    def _encode(self, text: str, single: SingleEncoder, parts: Encoder) -> tuple[int, tuple[bytes, ...], bool]:
        """``(coding, payloads, udhi)`` of ``text``: ``single`` (cached) when it fits one part, else ``parts``
        with the next concatenation reference."""
        dc, payloads, udhi = single(text)
        if len(payloads) > 1:
            self._ref = (self._ref + 1) & 0xFF
            dc, plist, udhi = parts(text, self._ref)
            payloads = tuple(plist)
        return dc, payloads, udhi

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
            except Exception as exc:  # session not bound / closed while waiting, encode error
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

    def _on_resp(self, state: _InFlight, i: int, fut: asyncio.Future[Any], loop: asyncio.AbstractEventLoop) -> None:
        if state.done:
            return
        assert self._sink is not None
        exc = fut.exception() if not fut.cancelled() else asyncio.CancelledError()
        if exc is not None:
            self._retry(state, i, repr(exc), loop)
            return
        verdict, value = self._classify(fut.result(), state.pdus[i])
        if verdict == OK:
            if state.ids[i] is None:
                state.ids[i] = value
                state.remaining -= 1
            if state.remaining == 0:
                state.done = True
                self._sink.submitted(
                    Submitted(state.item.message_id, self.name, [x or "" for x in state.ids], now_ms())
                )
        elif verdict == RETRY:
            self._retry(state, i, value, loop)
        else:
            state.done = True
            self._sink.failed(Failed(state.item.message_id, "SUBMIT_REJECTED", value, now_ms()))

    # -- incoming --------------------------------------------------------------------------------
    def _receipt(self, carrier_id: str | None, stat: str, err: str) -> asyncio.Future[Any] | None:
        """Count a final status report and hand it to the sink (whose future says when it is stored)."""
        self.stats["receipts"] += 1
        if self._sink is not None and carrier_id:
            return self._sink.receipt(Receipt(self.name, carrier_id, stat, err, now_ms()))
        return None
