"""The composition root: builds every part of the platform from one Settings object.

Nothing else constructs services, connectors or workers; tests and the CLI go through ``Platform``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from qixin.errors import QxError
from qixin.services import portability
from qixin.services.accept import AcceptService
from qixin.services.accounts import Directory
from qixin.services.billing import BillingWorker
from qixin.services.channels import create_channel, update_channel
from qixin.services.compliance.service import ComplianceService
from qixin.services.dispatch import Connector, Dispatcher, Router
from qixin.services.nonces import DatabaseNonceStore, NonceStore, RedisNonceStore
from qixin.services.notify import Smtp
from qixin.services.pricing import PlanPricer
from qixin.services.staff import StaffDirectory
from qixin.services.uplink import UplinkService
from qixin.services.webhooks import WebhookWorker
from qixin.settings import Settings
from qixin.store.db import Database, Tx
from qixin.store.migrate import migrate


@dataclass(frozen=True)
class EmbeddedChannel:
    """A built-in carrier simulator and the channel row that points at it."""

    name: str
    protocol: str
    carriers: str  # empty: every carrier (the fallback)
    priority: int
    service_code: str


# The embedded default: one simulator per carrier, each behind a channel of its protocol; the SMPP
# simulator takes international numbers and is the fallback for everything (lower priority).
EMBEDDED = (
    EmbeddedChannel("sim-cmpp", "cmpp3", "cmcc", 100, "1065800"),
    EmbeddedChannel("sim-sgip", "sgip", "cucc", 100, "1065500"),
    EmbeddedChannel("sim-smgp", "smgp", "ctcc", 100, "1065900"),
    EmbeddedChannel("smpp-sim", "smpp", "", 200, "10690000"),
)
SIM_ACCOUNT = ("901234", "qixin-sim")  # the account every embedded simulator accepts


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_simulator(protocol: str, delay: tuple[float, float]) -> tuple[Any, int, dict[str, Any]]:
    """Start the built-in simulator for ``protocol`` on a free loopback port.

    Returns the simulator, its port, and the channel options the connector needs to talk to it.
    """
    user, secret = SIM_ACCOUNT
    if protocol == "smpp":
        from qixin.gateway.simulators.smpp import SimulatorConfig, SmppSimulator

        smpp = SmppSimulator("127.0.0.1", 0, SimulatorConfig(receipt_delay=delay))
        return smpp, await smpp.start(), {}
    if protocol in ("cmpp3", "cmpp2"):
        from qixin.gateway.simulators import cmpp

        cm = cmpp.CmppSimulator("127.0.0.1", 0, cmpp.SimulatorConfig(receipt_delay=delay, accounts={user: secret}))
        return cm, await cm.start(), {}
    if protocol == "sgip":
        from qixin.gateway.simulators import sgip

        listen = _free_port()  # our SP listener, where the SMG connects back to
        options = {"node_id": 3010012345, "corp_id": "12345", "listen_port": listen,
                   "smg_login_name": "smg", "smg_password": "smg-secret"}  # fmt: skip
        sg = sgip.SgipSimulator(
            "127.0.0.1", 0,
            sgip.SgipSimulatorConfig(receipt_delay=delay, accounts={user: secret}, smg_password="smg-secret"),
        )  # fmt: skip
        port = await sg.start()
        sg.register_sp(user, "127.0.0.1", listen, "smg-secret")
        return sg, port, options
    if protocol == "smgp":
        from qixin.gateway.simulators import smgp

        tel = smgp.SmgpSimulator("127.0.0.1", 0, smgp.SimulatorConfig(receipt_delay=delay, accounts={user: secret}))
        return tel, await tel.start(), {}
    raise ValueError(f"no built-in simulator for {protocol}")


class Platform:
    def __init__(
        self,
        settings: Settings,
        *,
        connectors: list[Connector] | None = None,
        dispatch: bool = True,
        workers: bool = True,
    ) -> None:
        self.settings = settings
        self.roles = {"dispatch": dispatch, "workers": workers}  # `qixin api` runs neither
        self.log = logging.getLogger("qixin")
        portability.PORTED_STATS.clear()
        portability.PORTED_STATS.update(settings.ported_stats)
        self.db = Database(settings.db_url)
        self.directory = Directory(self.db)
        self.staff = StaffDirectory(self.db)
        self.nonces: NonceStore = (
            RedisNonceStore(settings.redis_url) if settings.redis_url else DatabaseNonceStore(self.db)
        )
        self.compliance = ComplianceService(
            self.db, settings.compliance, redis_url=settings.redis_url, on_freeze=lambda _: self.directory.invalidate()
        )
        self.accept = AcceptService(
            self.db, self.directory, settings.max_parts, settings.max_numbers_per_request, screener=self.compliance
        )
        self.router = Router()
        self.channels: Any = None  # the ChannelManager, once started
        self.uplink = UplinkService(self.db, lambda: self.channels.service_codes() if self.channels else [])
        self.uplink.listeners.append(self.compliance.on_mo)  # 退订 replies → the account's opt-out list
        self.simulators: dict[str, Any] = {}
        self._given_connectors = connectors
        self.dispatcher: Dispatcher | None = None
        self.webhooks = WebhookWorker(
            self.db, batch=settings.webhook_batch, timeout=settings.webhook_timeout, backoff=settings.webhook_backoff
        )
        self.pricer = PlanPricer(self.db)
        self.accept.pricer = self.pricer  # price plans per account, carrier and type (services/pricing.py)
        self.smtp = Smtp(settings.smtp_host, settings.smtp_port, settings.smtp_user, settings.smtp_password,
                         settings.smtp_from, settings.smtp_starttls)  # fmt: skip
        self.billing = BillingWorker(self.db, self.smtp, settings.billing_interval, frozenset(settings.holidays),
                                     settings.auto_statements)  # fmt: skip
        self.started = False

    @property
    def simulator(self) -> Any:
        """The embedded SMPP simulator (the default channel), when running."""
        return self.simulators.get("smpp-sim")

    @property
    def connectors(self) -> list[Connector]:
        return list(self.router.connectors)

    async def start(self, *, dispatch: bool | None = None, webhooks: bool | None = None) -> None:
        """Start the roles this platform plays: dispatch (channels, dispatcher, uplink) and the workers
        (webhooks, billing); the HTTP API is whoever serves ``qixin.api.app``."""
        dispatch = self.roles["dispatch"] if dispatch is None else dispatch
        webhooks = self.roles["workers"] if webhooks is None else webhooks
        await asyncio.to_thread(migrate, self.settings.db_url)
        self.db.start()
        await self.uplink.start()
        await self.compliance.start()
        if dispatch:
            s = self.settings
            self.dispatcher = Dispatcher(
                self.db,
                self.router,
                lease_seconds=s.lease_seconds,
                claim_batch=s.claim_batch,
                inflight_cap=s.inflight_cap,
                flush_interval=s.flush_interval,
            )
            if self._given_connectors is not None:
                self.router.set(self._given_connectors)
                for c in self._given_connectors:
                    await c.start(self.dispatcher)
            else:
                import qixin.gateway.connectors  # noqa: F401 - registers the protocol factories
                from qixin.gateway.channel import Hooks
                from qixin.gateway.manager import ChannelManager

                await self._settings_channels()
                self.channels = ChannelManager(self.db, self.router, hooks=Hooks(on_mo=self.uplink.receive))
                await self.channels.start(self.dispatcher)
            await self.dispatcher.start()
        if webhooks:
            await self.webhooks.start()
            await self.billing.start()
        self.started = True

    async def _settings_channels(self) -> None:
        """Channels the settings imply: the embedded simulators, or the one SMPP endpoint configured."""
        ch = self.settings.channel
        if ch.port == 0:
            for e in EMBEDDED:
                if e.protocol not in self.settings.simulators:
                    continue
                sim, port, options = await start_simulator(e.protocol, self.settings.sim_receipt_delay)
                self.simulators[e.name] = sim
                user, secret = (ch.system_id, ch.password) if e.protocol == "smpp" else SIM_ACCOUNT
                await self._upsert_embedded(e, "127.0.0.1", port, user, secret, options)
        else:
            await self._upsert_embedded(
                EmbeddedChannel(ch.name, "smpp", "", 200, "10690000"), ch.host, ch.port, ch.system_id, ch.password
            )

    async def _upsert_embedded(
        self, e: EmbeddedChannel, host: str, port: int, user: str, secret: str, options: dict[str, Any] | None = None
    ) -> None:
        values = {
            "name": e.name, "protocol": e.protocol, "host": host, "port": port, "username": user, "secret": secret,
            "service_code": e.service_code, "carriers": e.carriers, "priority": e.priority,
            "window": self.settings.channel.window, "options": options or {},
        }  # fmt: skip

        def job(tx: Tx) -> None:
            row = tx.one("SELECT id, embedded, host, port, username, secret, options FROM channels WHERE name = ?",
                         (e.name,))  # fmt: skip
            if row is None:
                create_channel(tx, values, embedded=True)
            elif row[1]:  # still ours: point it at this run's endpoint — only if it moved (a version bump
                # makes every running dispatcher reconnect)
                changes = {"host": host, "port": port, "username": user, "secret": secret, "options": options or {}}
                current = {"host": row[2], "port": int(row[3]), "username": row[4], "secret": row[5],
                           "options": orjson.loads(row[6] or "{}")}  # fmt: skip
                if changes != current:
                    update_channel(tx, int(row[0]), changes)

        try:
            await self.db.write(job)
        except QxError:
            raise
        except Exception:  # another process created the row between our look and our insert: look again
            self.log.info("channel %s created concurrently; retrying the upsert", e.name)
            await self.db.write(job)

    async def stop(self) -> None:
        await self.billing.stop()
        await self.webhooks.stop()
        if self.dispatcher:
            await self.dispatcher.stop()
        if self.channels is not None:
            await self.channels.stop()
        elif self._given_connectors:
            for c in self._given_connectors:
                await c.stop()
        await self.uplink.stop()
        for sim in self.simulators.values():
            await sim.stop()
        await asyncio.to_thread(self.db.close)
        self.started = False

    def after_accept(self) -> None:
        if self.dispatcher:
            self.dispatcher.wake()

    def health(self) -> dict[str, Any]:
        """Public liveness: no configuration, no credentials (staff see everything in /admin/channels)."""
        if self.channels is not None:
            channels = [
                {"name": h["name"], "protocol": h["protocol"], "carriers": h["carriers"], "up": bool(h.get("up"))}
                for h in self.channels.health()
            ]
        else:
            channels = [
                {"name": c.name, "up": bool(getattr(getattr(c, "client", None), "bound", False))}
                for c in self.router.connectors
            ]
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
                "rerouted": d.get("rerouted", 0),
            },
            "uplink": dict(self.uplink.stats),
            "webhooks": dict(self.webhooks.stats),
        }
