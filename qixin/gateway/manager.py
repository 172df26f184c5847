"""The channel manager: channel rows in, running channel connectors out, changes applied live.

Rules:
- Every ``poll`` seconds (and on ``sync()``), enabled channels whose protocol has a connector factory
  are running; a channel whose ``version`` changed is restarted; a disabled or deleted one is stopped.
  Stopping reports the channel's unfinished messages abandoned, so they return through the queue.
- The router always sees exactly the running channels.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import orjson

from qixin.gateway.channel import FACTORIES, ChannelConnector, ConnectorFactory, Hooks
from qixin.services.channels import Channel, list_channels
from qixin.services.dispatch import Router, Sink
from qixin.store import channels as store
from qixin.store.db import Database, Tx, now_ms
from qixin.tasks import cancel

log = logging.getLogger(__name__)


def save_health(tx: Tx, snapshot: list[dict[str, Any]]) -> None:
    now = now_ms()
    store.save_health(tx, [(h["name"], orjson.dumps(h).decode(), now) for h in snapshot])


def load_health(tx: Tx, max_age_ms: int = 15_000) -> dict[str, dict[str, Any]]:
    """The latest snapshots no older than ``max_age_ms`` (older ones mean no platform is running them)."""
    rows = store.health_since(tx, now_ms() - max_age_ms)
    return {r[0]: orjson.loads(r[1]) for r in rows}


class ChannelManager:
    def __init__(
        self,
        db: Database,
        router: Router,
        factories: dict[str, ConnectorFactory] | None = None,
        poll: float = 2.0,
        hooks: Hooks | None = None,
    ) -> None:
        self.db = db
        self.hooks = hooks or Hooks()
        self.router = router
        self.factories = factories if factories is not None else FACTORIES
        self.poll = poll
        self.active: dict[str, ChannelConnector] = {}
        self.known: list[Channel] = []
        self._sink: Sink | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self, sink: Sink) -> None:
        self._sink = sink
        await self.sync()
        self._task = asyncio.create_task(self._loop(), name="channel-manager")

    async def stop(self) -> None:
        await cancel(self._task)
        async with self._lock:
            for conn in list(self.active.values()):
                await conn.stop()
            self.active.clear()
            self.router.set([])

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll)
            try:
                await self.sync()
                snapshot = self.health()
                await self.db.write(functools.partial(save_health, snapshot=snapshot))
            except Exception:
                log.exception("channel sync failed")

    async def sync(self) -> None:
        assert self._sink is not None
        async with self._lock:
            channels = await self.db.read(list_channels)
            self.known = channels
            wanted = {c.name: c for c in channels if c.enabled and c.protocol in self.factories}
            for name, conn in list(self.active.items()):
                ch = wanted.get(name)
                if ch is None or ch.version != conn.channel.version or ch.id != conn.channel.id:
                    log.info("channel %s: stopping (%s)", name, "changed" if ch else "removed or disabled")
                    del self.active[name]
                    await conn.stop()
            for name, ch in wanted.items():
                if name not in self.active:
                    conn = ChannelConnector(ch, self.factories[ch.protocol], self.hooks)
                    await conn.start(self._sink)
                    self.active[name] = conn
                    log.info("channel %s (%s %s:%s) started", name, ch.protocol, ch.host, ch.port)
            self.router.set(list(self.active.values()))

    @property
    def started(self) -> bool:
        return self._sink is not None

    def service_codes(self) -> list[str]:
        return [c.service_code for c in self.known if c.service_code]

    def health(self) -> list[dict[str, Any]]:
        out = []
        for ch in self.known:
            conn = self.active.get(ch.name)
            if conn is not None:
                out.append(conn.health())
            else:
                state = "disabled" if not ch.enabled else "no connector for protocol"
                out.append({**ch.public(), "bound": 0, "up": False, "state": state})
        return out
