"""One channel = N protocol connections behind one name, paced to the channel's TPS cap.

Rules:
- Protocol connectors are built by a factory registered per protocol (``FACTORIES``); they know
  nothing of channels, routing or rates.
- Messages are spread round-robin over the connections that are bound (any, when none is).
- TPS cap: a token bucket releases at most ``tps`` messages per second to the connections; 0 = no cap.
- Health: bound connections, recent submit outcomes (an exponentially weighted failure rate). A channel
  is "up" when at least one connection is available (its client's ``available``: bound, or for SGIP
  closed for idleness and reopened by the next message), "failing" when most recent submits failed.
  ``bound`` counts the connections bound right now, ``idle`` the available ones that are not.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qixin.services.channels import Channel
from qixin.services.dispatch import Connector, Outgoing, Sink
from qixin.services.receipts import Failed, Receipt, Submitted
from qixin.tasks import cancel

MoHandler = Callable[[str, str, str, str], "asyncio.Future[None] | None"]  # (channel, source, destination, text)


@dataclass(frozen=True, slots=True)
class Hooks:
    """What a connector may call back into, besides the sink."""

    on_mo: MoHandler | None = None


ConnectorFactory = Callable[[Channel, int, Hooks], Connector]  # (channel, connection index, hooks) -> connector
FACTORIES: dict[str, ConnectorFactory] = {}


def register(protocol: str) -> Callable[[ConnectorFactory], ConnectorFactory]:
    def deco(fn: ConnectorFactory) -> ConnectorFactory:
        FACTORIES[protocol] = fn
        return fn

    return deco


def _available(connector: Any) -> bool:
    """Whether a connection can carry a message now (bound, or reopened on demand)."""
    client = getattr(connector, "client", None)
    return bool(getattr(client, "available", getattr(client, "bound", False)))


class _HealthSink:
    """Passes outcomes on to the dispatcher, keeps the failure rate, and knows what is still out.

    Every message handed to a connection is in ``out`` until its outcome arrives. When the channel
    stops, what is left is reported abandoned (its queue lease brings it back) and any late outcome
    for it is dropped, so the dispatcher hears exactly one outcome per message.
    """

    def __init__(self, channel: ChannelConnector, sink: Sink) -> None:
        self.channel = channel
        self.sink = sink
        self.out: set[int] = set()

    def submitted(self, item: Submitted) -> None:
        if item.message_id in self.out:
            self.out.discard(item.message_id)
            self.channel._outcome(False)
            self.sink.submitted(item)

    def failed(self, item: Failed) -> None:
        if item.message_id in self.out:
            self.out.discard(item.message_id)
            self.channel._outcome(True)
            self.sink.failed(item)

    def abandoned(self, message_id: int) -> None:
        if message_id in self.out:
            self.out.discard(message_id)
            self.channel._outcome(True)
            self.sink.abandoned(message_id)

    def abandon_all(self) -> None:
        left, self.out = self.out, set()
        for message_id in left:
            self.sink.abandoned(message_id)

    def receipt(self, item: Receipt) -> asyncio.Future[None] | None:
        self.channel.receipts += 1
        return self.sink.receipt(item)


class ChannelConnector:
    def __init__(self, channel: Channel, factory: ConnectorFactory, hooks: Hooks | None = None) -> None:
        self.channel = channel
        self.name = channel.name
        self.connections = [factory(channel, i, hooks or Hooks()) for i in range(channel.connections)]
        self._rr = 0
        self._queue: deque[Outgoing] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failure_rate = 0.0
        self.submitted = 0
        self.failures = 0
        self.receipts = 0
        self._sent_window: deque[float] = deque()
        self._health: _HealthSink | None = None

    # -- Connector interface ----------------------------------------------------------------------
    def carries(self, carrier: str, msg_type: str) -> bool:
        c = self.channel
        return (not c.carriers or carrier in c.carriers) and (not c.msg_types or msg_type in c.msg_types)

    def submit(self, item: Outgoing) -> None:
        assert self._health is not None, "channel not started"
        self._health.out.add(item.message_id)
        if self.channel.tps <= 0:
            self._pick().submit(item)
            self._count_sent()
            return
        self._queue.append(item)
        self._wake.set()

    async def start(self, sink: Sink) -> None:
        health = self._health = _HealthSink(self, sink)
        for c in self.connections:
            await c.start(health)
        if self.channel.tps > 0:
            self._task = asyncio.create_task(self._pace(), name=f"pace-{self.name}")

    async def stop(self) -> None:
        await cancel(self._task)
        self._queue.clear()
        for c in self.connections:
            await c.stop()
        if self._health is not None:
            self._health.abandon_all()

    # -- health -----------------------------------------------------------------------------------
    @property
    def bound_count(self) -> int:
        return sum(1 for c in self.connections if getattr(getattr(c, "client", None), "bound", False))

    @property
    def available_count(self) -> int:
        return sum(1 for c in self.connections if _available(c))

    @property
    def up(self) -> bool:
        return self.available_count > 0

    @property
    def failing(self) -> bool:
        return self.failure_rate > 0.5

    def _outcome(self, failed: bool) -> None:
        self.failure_rate = self.failure_rate * 0.95 + (0.05 if failed else 0.0)
        if failed:
            self.failures += 1
        else:
            self.submitted += 1

    def _count_sent(self) -> None:
        now = asyncio.get_running_loop().time()
        w = self._sent_window
        w.append(now)
        while w and w[0] < now - 1.0:
            w.popleft()

    def health(self) -> dict[str, Any]:
        window_used = 0
        for c in self.connections:
            session = getattr(getattr(c, "client", None), "session", None)
            window = getattr(session, "window", None)
            window_used += len(window) if window is not None and hasattr(window, "__len__") else 0
        return {
            **self.channel.public(),
            "bound": self.bound_count,
            "idle": self.available_count - self.bound_count,
            "up": self.up,
            "failing": self.failing,
            "queued": len(self._queue),
            "window_used": window_used,
            "tps_now": len(self._sent_window),
            "submitted": self.submitted,
            "submit_errors": self.failures,
            "receipts": self.receipts,
            "failure_rate": round(self.failure_rate, 3),
            # the carrier's flow-control answers and the sessions bound so far (more than the connections:
            # the gateway dropped or restarted), summed over the connections' clients
            "throttled": sum(int(getattr(getattr(c, "client", None), "throttled", 0)) for c in self.connections),
            "binds": sum(int(getattr(getattr(c, "client", None), "binds", 0)) for c in self.connections),
        }

    # -- internals --------------------------------------------------------------------------------
    def _pick(self) -> Connector:
        conns = self.connections
        n = len(conns)
        for _ in range(n):
            self._rr = (self._rr + 1) % n
            c = conns[self._rr]
            if getattr(c, "client", None) is None or _available(c):
                return c
        return conns[self._rr]

    async def _pace(self) -> None:
        tps = self.channel.tps
        loop = asyncio.get_running_loop()
        tokens = float(tps)
        last = loop.time()
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            now = loop.time()
            tokens = min(float(tps), tokens + (now - last) * tps)
            last = now
            if tokens < 1.0:
                await asyncio.sleep((1.0 - tokens) / tps)
                continue
            n = min(int(tokens), len(self._queue))
            tokens -= n
            for _ in range(n):
                self._pick().submit(self._queue.popleft())
                self._count_sent()
