"""The composition root: builds every part of the platform from one Settings object.

Nothing else constructs services, connectors or workers; tests and the CLI go through ``Platform``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from qixin.services.accept import AcceptService
from qixin.services.accounts import Directory
from qixin.services.dispatch import Connector, Dispatcher, Router
from qixin.services.nonces import MemoryNonceStore, NonceStore, RedisNonceStore
from qixin.services.staff import StaffDirectory
from qixin.services.webhooks import WebhookWorker
from qixin.settings import Settings
from qixin.store.db import Database
from qixin.store.migrate import migrate


class Platform:
    def __init__(self, settings: Settings, *, connectors: list[Connector] | None = None) -> None:
        self.settings = settings
        self.log = logging.getLogger("qixin")
        self.db = Database(settings.db_url)
        self.directory = Directory(self.db)
        self.staff = StaffDirectory(self.db)
        self.nonces: NonceStore = RedisNonceStore(settings.redis_url) if settings.redis_url else MemoryNonceStore()
        self.accept = AcceptService(self.db, self.directory, settings.max_parts, settings.max_numbers_per_request)
        self.simulator: Any = None
        self._given_connectors = connectors
        self.connectors: list[Connector] = []
        self.dispatcher: Dispatcher | None = None
        self.webhooks = WebhookWorker(
            self.db,
            batch=settings.webhook_batch,
            timeout=settings.webhook_timeout,
            backoff=settings.webhook_backoff,
        )
        self.started = False

    async def start(self, *, dispatch: bool = True, webhooks: bool = True) -> None:
        await asyncio.to_thread(migrate, self.settings.db_url)
        self.db.start()
        if dispatch:
            self.connectors = self._given_connectors or [await self._default_connector()]
            self.dispatcher = Dispatcher(
                self.db,
                Router(self.connectors),
                lease_seconds=self.settings.lease_seconds,
                claim_batch=self.settings.claim_batch,
                inflight_cap=self.settings.inflight_cap,
                flush_interval=self.settings.flush_interval,
            )
            for c in self.connectors:
                await c.start(self.dispatcher)
            await self.dispatcher.start()
        if webhooks:
            await self.webhooks.start()
        self.started = True

    async def _default_connector(self) -> Connector:
        from qixin.gateway.smpp_connector import SmppConnector

        ch = self.settings.channel
        port = ch.port
        if port == 0:  # embedded: our own SMSC simulator on loopback is the channel
            from qixin.gateway.simulators.smpp import SimulatorConfig, SmppSimulator

            self.simulator = SmppSimulator(
                "127.0.0.1", 0, SimulatorConfig(receipt_delay=self.settings.sim_receipt_delay)
            )
            port = await self.simulator.start()
        return SmppConnector(ch.name, ch.host, port, ch.system_id, ch.password, window=ch.window)

    async def stop(self) -> None:
        await self.webhooks.stop()
        if self.dispatcher:
            await self.dispatcher.stop()
        for c in self.connectors:
            await c.stop()
        if self.simulator is not None:
            await self.simulator.stop()
        await asyncio.to_thread(self.db.close)
        self.started = False

    def after_accept(self) -> None:
        if self.dispatcher:
            self.dispatcher.wake()

    def health(self) -> dict[str, Any]:
        channels = []
        for c in self.connectors:
            client = getattr(c, "client", None)
            channels.append(
                {
                    "name": c.name,
                    "bound": bool(getattr(client, "bound", False)),
                    "endpoint": f"{getattr(client, 'host', '')}:{getattr(client, 'port', '')}",
                }
            )
        d = self.dispatcher.stats if self.dispatcher else {}
        return {
            "ok": self.started,
            "database": "postgresql" if self.db.is_pg else "sqlite",
            "channels": channels,
            "dispatch": {
                "inflight": self.dispatcher.inflight if self.dispatcher else 0,
                "submitted": d.get("submitted", 0),
                "receipts": d.get("receipts", 0),
                "failed": d.get("failed", 0),
            },
            "webhooks": dict(self.webhooks.stats),
        }
