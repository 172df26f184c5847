"""The composition root: ``build(settings)`` constructs every service; roles start and stop them.

Rules:
- Nothing else constructs services, connectors or workers: the CLI, the HTTP API and the tests all get
  them from ``build``. Collaborators are passed in at construction (no wiring by mutation afterwards).
- ``build`` starts nothing. A process runs some roles (``Runtime``): ``Core`` (migrations, the writer,
  the lexicon), ``EmbeddedSimulators`` (the built-in carrier simulators and the channel rows pointing at
  them — only the embedded mode and the tests start it), ``SettingsChannel`` (the one SMPP endpoint of
  QIXIN_SMPP_*), ``DispatchRole`` (channels, dispatcher, uplink), ``WorkersRole`` (webhooks, billing
  housekeeping), ``AlertsRole`` (alert rules, staff notices), ``NumberProbeRole`` (the number check's
  upstream probe), ``RetentionRole`` (the daily purge), ``PortsRole`` (the customer SMPP / CMPP
  ports) and ``FlashProbeRole`` (the periodic 闪测 of every channel). The HTTP API is served by whoever
  serves ``qixin.api.app.asgi_app(services)``.
- ``qixin run`` = every role in one process; ``qixin api`` = Core + PortsRole; ``qixin dispatcher`` =
  Core + SettingsChannel + DispatchRole + WorkersRole + FileJobsRole + AlertsRole + NumberProbeRole +
  RetentionRole + FlashProbeRole (``--no-workers``: without the last six, which ``qixin worker`` runs).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from qixin import ids
from qixin.domain.numbercheck import Rules as NumberRules
from qixin.domain.secretbox import SecretBox
from qixin.errors import QxError
from qixin.gateway.channel import Hooks
from qixin.gateway.manager import ChannelManager, load_health
from qixin.services import portability
from qixin.services.accept import AcceptService
from qixin.services.accounts import Accounts, Directory, Signatures, Templates
from qixin.services.addressbook import AddressBook
from qixin.services.alerts import Alerts, AlertTargets, AlertWorker
from qixin.services.aliyun import AliyunApi
from qixin.services.announcements import Announcements
from qixin.services.billing_desk import BillingDesk
from qixin.services.billing_worker import BillingWorker
from qixin.services.channels import ChannelDesk, upsert_embedded_channel
from qixin.services.compliance import documents
from qixin.services.compliance.desk import ComplianceDesk
from qixin.services.compliance.review import ReviewQueue
from qixin.services.compliance.service import ComplianceService
from qixin.services.compliance.store import update_policy
from qixin.services.connections import ConnectionDirectory, Connections
from qixin.services.console_send import ConsoleSender
from qixin.services.console_users import ConsoleUsers
from qixin.services.console_views import ConsoleViews
from qixin.services.dispatch import Connector, Dispatcher, Router
from qixin.services.exports import ExportJobs
from qixin.services.filejobs import FileJobs
from qixin.services.flashtests import FlashProbe, FlashTests
from qixin.services.flow import FlowControl, FlowGate
from qixin.services.metrics import Metrics, PipelineCollector
from qixin.services.nonces import DatabaseNonceStore, NonceStore, RedisNonceStore
from qixin.services.notify import Smtp
from qixin.services.numbercheck import NumberChecks
from qixin.services.numbercheck_jobs import NumberCheckJobs
from qixin.services.numbercheck_probe import ProviderProbe
from qixin.services.numberproviders import CircuitBreaker, HttpProvider, Provider, SimulatorProvider
from qixin.services.ports import PortDesk
from qixin.services.pricing import PlanPricer
from qixin.services.queries import MessageSearch, Queries
from qixin.services.retention import Retention
from qixin.services.staff import StaffDirectory, StaffUsers
from qixin.services.stats import Statistics
from qixin.services.tokens import RecipientTokens
from qixin.services.uplink import UplinkService
from qixin.services.webhooks import WebhookWorker
from qixin.settings import NumberCheckSettings, Settings
from qixin.store.db import Database
from qixin.store.migrate import migrate

log = logging.getLogger("qixin")


@dataclass
class Services:
    """Everything ``build`` made, by name. The API and CLI read the use cases; roles run the workers."""

    settings: Settings
    db: Database
    smtp: Smtp
    directory: Directory
    staff: StaffDirectory
    nonces: NonceStore
    compliance: ComplianceService
    pricer: PlanPricer
    accept: AcceptService
    router: Router
    dispatcher: Dispatcher
    uplink: UplinkService
    channels: ChannelManager
    webhooks: WebhookWorker
    billing_worker: BillingWorker
    # use cases
    accounts: Accounts
    signatures: Signatures
    templates: Templates
    staff_users: StaffUsers
    queries: Queries
    billing: BillingDesk
    metrics: Metrics
    message_search: MessageSearch
    statistics: Statistics
    connections: Connections  # direct connections (customer SMPP / CMPP logins)
    ports: PortDesk  # what the customer ports do, whatever the protocol
    channel_desk: ChannelDesk
    compliance_desk: ComplianceDesk
    reviews: ReviewQueue  # manual content review (人工审核) and its expiry sweep
    numbers: NumberChecks
    tokens: RecipientTokens
    flash_tests: FlashTests
    flash_probe: FlashProbe  # the periodic 闪测 of every channel
    numcheck_jobs: NumberCheckJobs
    numcheck_probe: ProviderProbe
    alerts: Alerts
    alert_worker: AlertWorker
    announcements: Announcements
    flow: FlowControl
    aliyun: AliyunApi
    filejobs: FileJobs
    # the web console (docs/console.md)
    console_users: ConsoleUsers
    console_send: ConsoleSender
    console_views: ConsoleViews
    addressbook: AddressBook
    retention: Retention
    exports: ExportJobs
    log: logging.Logger = log

    def invalidate(self) -> None:
        """Drop every short-lived cache of this process (after a staff change)."""
        self.directory.invalidate()
        self.staff.invalidate()
        self.compliance.invalidate()
        self.ports.invalidate()
        self.flow.invalidate()

    def health(self) -> dict[str, Any]:
        """What this process knows about the channels and the pipeline (staff see it at /admin)."""
        d = self.dispatcher.stats
        return {
            "ok": True,
            "database": "postgresql" if self.db.is_pg else "sqlite",
            "channels": [
                {"name": h["name"], "protocol": h.get("protocol", ""), "carriers": h.get("carriers", []),
                 "up": bool(h.get("up"))}
                for h in self.channels.health()
            ] if self.channels.started else [
                {"name": getattr(c, "name", "?"), "up": bool(getattr(getattr(c, "client", None), "available", False))}
                for c in self.router.connectors
            ],
            "dispatch": {
                "inflight": self.dispatcher.inflight,
                "submitted": d.get("submitted", 0),
                "receipts": d.get("receipts", 0),
                "failed": d.get("failed", 0),
                "rerouted": d.get("rerouted", 0),
            },
            "uplink": dict(self.uplink.stats),
            "webhooks": dict(self.webhooks.stats),
        }  # fmt: skip


def secret_box(settings: Settings) -> SecretBox:
    """The key that seals API secrets: the ``secret_key`` setting, else ``secret.key`` beside the SQLite
    database (PostgreSQL: in ``data_dir``), created once, readable by its owner only."""
    if settings.secret_key:
        return SecretBox.from_text(settings.secret_key)
    db = settings.db_url
    folder = Path(db.split("///", 1)[1]).parent if db.startswith("sqlite") and "///" in db else settings.data_dir
    path = folder / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(SecretBox.new_key_text() + "\n")
    return SecretBox.from_text(path.read_text().strip())


def build(settings: Settings) -> Services:
    """Every service of the platform, constructed with its collaborators; nothing is started."""
    s = settings
    ids.configure(s.node_id)
    portability.configure(s.ported_stats)
    db = Database(s.db_url)
    box = secret_box(s)
    directory = Directory(db, box=box)
    staff = StaffDirectory(db)
    nonces: NonceStore = RedisNonceStore(s.redis_url) if s.redis_url else DatabaseNonceStore(db)
    compliance = ComplianceService(db, s.compliance, redis_url=s.redis_url, on_freeze=lambda _: directory.invalidate())
    pricer = PlanPricer(db)
    router = Router()
    dispatcher = Dispatcher(
        db, router, lease_seconds=s.lease_seconds, claim_batch=s.claim_batch, inflight_cap=s.inflight_cap,
        flush_interval=s.flush_interval, receipt_timeout=s.receipt_timeout,
    )  # fmt: skip
    channels_box: list[ChannelManager] = []  # the uplink asks the manager built just below for service codes
    tokens = RecipientTokens(db, box)
    ports_box: list[PortDesk] = []  # MO for accounts with direct connections are owed to the ports
    uplink = UplinkService(
        db, lambda: channels_box[0].service_codes(),
        # the ports see the number as the customer may: a tokenised sender as its token
        listeners=[compliance.on_mo,
                   lambda tx, a, src, text: ports_box[0].on_mo(tx, a, tokens.present_source(tx, a, src), text)],
        present_source=tokens.present_source,
    )  # fmt: skip
    channels = ChannelManager(db, router, hooks=Hooks(on_mo=uplink.receive))
    channels_box.append(channels)
    webhooks = WebhookWorker(
        db, batch=s.webhook_batch, timeout=s.webhook_timeout, backoff=s.webhook_backoff, open_secret=box.open
    )
    metrics = Metrics()
    metrics.registry.register(
        PipelineCollector(
            db, lambda: dispatcher.stats, lambda: dispatcher.inflight,
            lambda: channels.health() if channels.started else [], lambda: uplink.stats, lambda: webhooks.stats,
        )
    )  # fmt: skip
    flow = FlowControl(db, FlowGate(s.redis_url, s.flow_prefix))
    numbers = NumberChecks(
        db, numcheck_provider(s.numcheck),
        NumberRules(fresh_days=s.numcheck.fresh_days, silent_days=s.numcheck.silent_days), s.numcheck.max_inline,
        skip_days=s.numcheck.skip_days,
    )  # fmt: skip
    accept = AcceptService(
        db, directory, s.max_parts, s.max_numbers_per_request, screener=compliance, pricer=pricer,
        on_accepted=dispatcher.wake, metrics=metrics, flow=flow, tokens=tokens, skippable=numbers.skippable,
    )  # fmt: skip
    smtp = Smtp(s.smtp_host, s.smtp_port, s.smtp_user, s.smtp_password, s.smtp_from, s.smtp_starttls)

    def on_change() -> None:
        directory.invalidate()
        compliance.invalidate()

    accounts = Accounts(db, directory, on_policy=update_policy, on_change=on_change)

    async def channel_health() -> list[dict[str, Any]]:
        if channels.started:
            return channels.health()
        return list((await db.read(load_health)).values())  # the snapshots of the processes running channels

    async def alert_sms(numbers: Sequence[str], text: str) -> None:
        key = await directory.key(s.alert_sms_app_key)
        if key is None:
            raise RuntimeError("QIXIN_ALERT_SMS_APP_KEY names no active API key")
        body = {"to": list(numbers), "content": text, "signature": s.alert_sms_signature, "type": "notification"}
        await accept.accept(key, body, orjson.dumps(body))

    alerts = Alerts(
        db, channel_health, smtp, AlertTargets(s.alert_emails, s.alert_webhook_url, s.alert_sms_numbers),
        sms=alert_sms if s.alert_sms_app_key else None,
    )  # fmt: skip
    console_send = ConsoleSender(db, directory, accept, s.console_sms_account, s.console_sms_signature)
    console_users = ConsoleUsers(
        db, console_send, s.console_max_failures, s.console_lock_minutes, s.console_session_hours,
        s.console_code_minutes, on_change=staff.invalidate,
    )  # fmt: skip
    connection_directory = ConnectionDirectory(db, box)
    ports = PortDesk(
        db,
        accept,
        connection_directory,
        part_timeout=s.port_part_timeout,
        redis_url=s.redis_url,
        redis_prefix=f"{s.compliance.limits_prefix}-ports",
    )
    ports_box.append(ports)
    signatures = Signatures(db, directory, on_apply=documents.set_purpose)
    templates = Templates(db, directory, checker=lambda: compliance.checker)
    queries, message_search, statistics = Queries(db), MessageSearch(db), Statistics(db)
    flash_tests = FlashTests(db, directory, accept)
    aliyun = AliyunApi(db, accept, message_search, queries, statistics, signatures, templates)
    return Services(
        settings=s,
        db=db,
        smtp=smtp,
        directory=directory,
        staff=staff,
        nonces=nonces,
        compliance=compliance,
        pricer=pricer,
        accept=accept,
        router=router,
        dispatcher=dispatcher,
        uplink=uplink,
        channels=channels,
        webhooks=webhooks,
        billing_worker=BillingWorker(db, smtp, s.billing_interval, frozenset(s.holidays), s.auto_statements),
        accounts=accounts,
        signatures=signatures,
        templates=templates,
        staff_users=StaffUsers(db, staff.invalidate),
        billing=BillingDesk(
            db, smtp, tuple(s.holidays), s.price_notice_days * 86_400_000, pricer.invalidate, on_change=on_change
        ),
        queries=queries,
        metrics=metrics,
        message_search=message_search,
        statistics=statistics,
        channel_desk=ChannelDesk(db, accept.ported, resync=lambda: channels.sync() if channels.started else _nothing()),
        compliance_desk=ComplianceDesk(db, compliance, on_change=on_change),
        reviews=ReviewQueue(db, compliance, on_release=dispatcher.wake),
        tokens=tokens,
        flash_tests=flash_tests,
        flash_probe=FlashProbe(
            db, flash_tests, s.flash_probe_interval, s.flash_probe_timeout, s.flash_probe_content,
            s.flash_probe_signature, s.flash_probe_account,
        ),
        numbers=numbers,
        numcheck_jobs=NumberCheckJobs(numbers),
        numcheck_probe=ProviderProbe(db, numbers.provider, s.numcheck.probe_interval, s.numcheck.probe_timeout),
        alerts=alerts,
        alert_worker=AlertWorker(alerts, s.alerts_interval),
        announcements=Announcements(db),
        flow=flow,
        aliyun=aliyun,
        connections=Connections(db, box, on_change=connection_directory.invalidate),
        ports=ports,
        filejobs=FileJobs(
            db, accept, directory, s.data_dir, max_bytes=s.filejob_max_bytes, max_numbers=s.filejob_max_numbers,
            chunk_size=s.filejob_chunk_size, poll_interval=s.filejob_poll_interval,
        ),
        console_users=console_users,
        console_send=console_send,
        console_views=ConsoleViews(db),
        addressbook=AddressBook(db, console_send),
        retention=Retention(db, s.retention_days, s.retention_chunk_ms, s.retention_hour, data_dir=s.data_dir,
                            export_keep_days=s.export_keep_days),
        exports=ExportJobs(db, message_search, s.data_dir, poll_interval=s.filejob_poll_interval),
    )  # fmt: skip


async def _nothing() -> None:
    return None


def numcheck_provider(n: NumberCheckSettings) -> Provider | None:
    """The number check's upstream provider as the settings name it (``none``: own evidence only)."""
    if n.provider == "simulator":
        return SimulatorProvider()
    if n.provider == "http":
        if not n.http_url:
            raise QxError("INVALID_REQUEST", "QIXIN_NUMCHECK_HTTP_URL 未设置")
        return HttpProvider(
            n.http_url, numbers_field=n.http_numbers_field, extra_body=n.http_extra_body,
            results_field=n.http_results_field, number_field=n.http_number_field, status_field=n.http_status_field,
            status_map=n.http_status_map, confidence=n.http_confidence, token=n.http_token, timeout=n.http_timeout,
            batch=n.http_batch, breaker=CircuitBreaker(n.breaker_failures, n.breaker_reset),
        )  # fmt: skip
    return None


# -- roles ----------------------------------------------------------------------------------------------


class Role(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class Core:
    """Migrations, the database writer and the compliance lexicon: every process runs it first."""

    def __init__(self, services: Services) -> None:
        self.s = services

    async def start(self) -> None:
        await asyncio.to_thread(migrate, self.s.settings.db_url)
        self.s.db.start()
        await self.s.compliance.start()

    async def stop(self) -> None:
        await asyncio.to_thread(self.s.db.close)


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


def ephemeral_low() -> int:
    """The lowest port of the kernel's ephemeral range (source ports of outgoing connections)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_loopback_port(low: int = 15000, high: int | None = None, avoid: Collection[int] = ()) -> int:
    """A loopback port in [low, high) that is free now, for a listener bound a moment later (the SGIP SP
    listener). Drawn below the kernel's ephemeral range by default: a bind(0) port is one the next outgoing
    connection (a database or Redis pool) may take as its source port before the listener binds it."""
    import random
    import socket

    high = min(ephemeral_low(), 32768) if high is None else high
    for _ in range(1000):
        port = random.randrange(low, high)
        if port in avoid:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError(f"no free loopback port in {low}–{high}")


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

        listen = free_loopback_port()  # our SP listener, where the SMG connects back to
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


async def _upsert(services: Services, e: EmbeddedChannel, host: str, port: int, user: str, secret: str,
                  options: dict[str, Any] | None = None) -> None:  # fmt: skip
    values = {
        "name": e.name, "protocol": e.protocol, "host": host, "port": port, "username": user, "secret": secret,
        "service_code": e.service_code, "carriers": e.carriers, "priority": e.priority,
        "window": services.settings.channel.window, "options": options or {},
    }  # fmt: skip
    try:
        await services.db.write(lambda tx: upsert_embedded_channel(tx, values))
    except QxError:
        raise
    except Exception:  # another process created the row between our look and our insert: look again
        log.info("channel %s created concurrently; retrying the upsert", e.name)
        await services.db.write(lambda tx: upsert_embedded_channel(tx, values))


class EmbeddedSimulators:
    """The built-in carrier simulators on loopback, one channel row each (embedded mode and tests only)."""

    def __init__(self, services: Services, on_handset: Callable[[str, str], None] | None = None) -> None:
        self.s = services
        self.simulators: dict[str, Any] = {}
        self.on_handset = on_handset  # told of every text a simulated handset receives (qixin run prints them)

    async def start(self) -> None:
        st = self.s.settings
        for e in EMBEDDED:
            if e.protocol not in st.simulators:
                continue
            sim, port, options = await start_simulator(e.protocol, st.sim_receipt_delay)
            self.simulators[e.name] = sim
            sim.on_handset = self.on_handset
            user, secret = (st.channel.system_id, st.channel.password) if e.protocol == "smpp" else SIM_ACCOUNT
            await _upsert(self.s, e, "127.0.0.1", port, user, secret, options)

    async def stop(self) -> None:
        for sim in self.simulators.values():
            await sim.stop()
        self.simulators.clear()


class SettingsChannel:
    """The SMPP endpoint named by QIXIN_SMPP_* (port ≠ 0), kept as one channel row."""

    def __init__(self, services: Services) -> None:
        self.s = services

    async def start(self) -> None:
        ch = self.s.settings.channel
        if ch.port:
            e = EmbeddedChannel(ch.name, "smpp", "", 200, "10690000")
            await _upsert(self.s, e, ch.host, ch.port, ch.system_id, ch.password)

    async def stop(self) -> None:
        return None


class DispatchRole:
    """Channels (from the channel rows, or connectors given by a test), the dispatcher and the uplink."""

    def __init__(self, services: Services, connectors: list[Connector] | None = None) -> None:
        self.s = services
        self.connectors = connectors

    async def start(self) -> None:
        s = self.s
        await s.uplink.start()
        if self.connectors is not None:
            s.router.set(self.connectors)
            for c in self.connectors:
                await c.start(s.dispatcher)
        else:
            import qixin.gateway.connectors  # noqa: F401 - registers the protocol factories

            await s.channels.start(s.dispatcher)
        await s.dispatcher.start()

    async def stop(self) -> None:
        s = self.s
        await s.dispatcher.stop()
        if self.connectors is not None:
            for c in self.connectors:
                await c.stop()
        else:
            await s.channels.stop()
        await s.uplink.stop()


class WorkersRole:
    """Background workers: webhook pushes and billing housekeeping."""

    def __init__(self, services: Services) -> None:
        self.s = services

    async def start(self) -> None:
        await self.s.webhooks.start()
        await self.s.billing_worker.start()
        await self.s.numcheck_jobs.start()
        await self.s.reviews.start()

    async def stop(self) -> None:
        await self.s.reviews.stop()
        await self.s.numcheck_jobs.stop()
        await self.s.billing_worker.stop()
        await self.s.webhooks.stop()


class PortsRole:
    """The customer SMPP, CMPP, SGIP and SMGP ports (``QIXIN_SMPP_SERVER_PORT``, ``QIXIN_CMPP_SERVER_PORT``,
    ``QIXIN_SGIP_SERVER_PORT``, ``QIXIN_SMGP_SERVER_PORT``; 0 = off)
    and the pump delivering receipts and MO to their sessions. A port whose address is taken is
    reported and left off; the rest of the process runs on."""

    def __init__(self, services: Services) -> None:
        self.s = services
        self.ports: dict[str, Any] = {}  # protocol -> running port
        self.failed: dict[str, str] = {}  # protocol -> why it is not running
        self.pump: Any = None

    async def start(self) -> None:
        from qixin.gateway.ports.base import Pump
        from qixin.gateway.ports.cmpp import CmppPort
        from qixin.gateway.ports.sgip import SgipPort
        from qixin.gateway.ports.smgp import SmgpPort
        from qixin.gateway.ports.smpp import SmppPort
        from qixin.protocols.limits import ListenerLimits

        st = self.s.settings
        host = st.ports_host or st.host
        limits = ListenerLimits(max_connections=st.port_max_sessions, max_per_source=st.port_max_sessions)
        wanted: list[tuple[str, int, Any]] = [
            ("smpp", st.smpp_server_port, lambda p: SmppPort(
                self.s.ports, host, p, window=st.port_window, enquire_link_interval=st.port_heartbeat, limits=limits,
                max_buffered=st.port_max_buffered)),
            ("cmpp", st.cmpp_server_port, lambda p: CmppPort(
                self.s.ports, host, p, window=st.port_window, heartbeat_interval=st.port_heartbeat, limits=limits,
                max_buffered=st.port_max_buffered, gateway_id=st.node_id)),
            ("sgip", st.sgip_server_port, lambda p: SgipPort(
                self.s.ports, host, p, window=st.port_window, idle_timeout=st.port_heartbeat * 3, limits=limits,
                max_buffered=st.port_max_buffered, node_id=st.node_id)),
            ("smgp", st.smgp_server_port, lambda p: SmgpPort(
                self.s.ports, host, p, window=st.port_window, heartbeat_interval=st.port_heartbeat, limits=limits,
                max_buffered=st.port_max_buffered, smgw_code=st.node_id or 0)),
        ]  # fmt: skip
        for protocol, number, make in wanted:
            if not number:
                continue
            port = make(number)
            try:
                await port.start()
            except OSError as e:
                self.failed[protocol] = f"{host}:{number}: {e.strerror or e}"
                log.warning("customer %s port not opened (%s)", protocol.upper(), self.failed[protocol])
                continue
            self.ports[protocol] = port
        if not self.ports:
            return  # every port off (or taken): nothing to deliver to from this process
        await self.s.ports.start()
        self.pump = Pump(self.s.ports, list(self.ports.values()))
        await self.pump.start()

    async def stop(self) -> None:
        if self.pump is not None:
            await self.pump.stop()
            self.pump = None
        for port in self.ports.values():
            await port.stop()
        self.ports.clear()
        await self.s.ports.stop()


class FileJobsRole:
    """The file-job runner: resumes unfinished file jobs on start, then runs new ones (services/filejobs.py)."""

    def __init__(self, services: Services) -> None:
        self.s = services

    async def start(self) -> None:
        await self.s.filejobs.start()
        await self.s.exports.start()  # export jobs (services/exports.py) run beside the file jobs

    async def stop(self) -> None:
        await self.s.exports.stop()
        await self.s.filejobs.stop()


class AlertsRole:
    """Evaluates the alert rules every ``alerts_interval`` seconds and notifies staff (services/alerts.py)."""

    def __init__(self, services: Services) -> None:
        self.s = services

    async def start(self) -> None:
        await self.s.alert_worker.start()

    async def stop(self) -> None:
        await self.s.alert_worker.stop()


class NumberProbeRole:
    """Probes the number check's upstream provider every ``numcheck.probe_interval`` seconds; the alert
    rules read the outcome (services/numbercheck_probe.py)."""

    def __init__(self, services: Services) -> None:
        self.s = services

    async def start(self) -> None:
        await self.s.numcheck_probe.start()

    async def stop(self) -> None:
        await self.s.numcheck_probe.stop()


class FlashProbeRole:
    """The periodic 闪测 of every channel every ``flash_probe_interval`` seconds; the alert rules read the
    outcome (services/flashtests.py FlashProbe)."""

    def __init__(self, services: Services) -> None:
        self.s = services

    async def start(self) -> None:
        await self.s.flash_probe.start()

    async def stop(self) -> None:
        await self.s.flash_probe.stop()


class RetentionRole:
    """The daily retention purge (services/retention.py) at ``retention_hour`` Beijing time."""

    def __init__(self, services: Services) -> None:
        self.s = services

    async def start(self) -> None:
        await self.s.retention.start()

    async def stop(self) -> None:
        await self.s.retention.stop()


class Runtime:
    """Starts roles in order and stops them in reverse."""

    def __init__(self, services: Services, roles: list[Role]) -> None:
        self.services = services
        self.roles = roles
        self._started: list[Role] = []
        self._frozen = False

    @property
    def simulators(self) -> dict[str, Any]:
        for r in self.roles:
            if isinstance(r, EmbeddedSimulators):
                return r.simulators
        return {}

    @property
    def customer_ports(self) -> PortsRole | None:
        return next((r for r in self.roles if isinstance(r, PortsRole)), None)

    @property
    def simulator(self) -> Any:
        """The embedded SMPP simulator (the default channel), when running."""
        return self.simulators.get("smpp-sim")

    async def start(self) -> None:
        for role in self.roles:
            await role.start()
            self._started.append(role)
        if self.services.settings.gc_freeze:
            # what start-up built (lexicon automata, classifier model, compiled statements, imported modules)
            # lives as long as the process: out of the cyclic collector's sight, so its full collections no
            # longer walk it again and again under traffic (22–87 µs per message, bench/RESULTS.md)
            gc.collect()
            gc.freeze()
            self._frozen = True

    async def stop(self) -> None:
        while self._started:
            await self._started.pop().stop()
        if self._frozen:
            gc.unfreeze()
            self._frozen = False


def embedded(
    services: Services, connectors: list[Connector] | None = None,
    on_handset: Callable[[str, str], None] | None = None,
) -> Runtime:  # fmt: skip
    """``qixin run``: everything in one process, with the built-in simulators unless QIXIN_SMPP_PORT is set
    (or ``connectors`` are given); ``on_handset`` hears what the simulated handsets receive."""
    roles: list[Role] = [Core(services)]
    if connectors is None:
        sims = EmbeddedSimulators(services, on_handset)
        roles.append(sims if services.settings.channel.port == 0 else SettingsChannel(services))
    roles += [
        DispatchRole(services, connectors),
        WorkersRole(services),
        FileJobsRole(services),
        AlertsRole(services),
        NumberProbeRole(services),
        RetentionRole(services),
        PortsRole(services),
        FlashProbeRole(services),
    ]
    return Runtime(services, roles)


def api_only(services: Services) -> Runtime:
    """``qixin api``: HTTP and the customer ports; dispatch and workers run in ``qixin dispatcher`` processes."""
    return Runtime(services, [Core(services), PortsRole(services)])


def dispatcher_only(services: Services, simulators: bool = False, workers: bool = True) -> Runtime:
    """``qixin dispatcher``: channels, dispatcher, uplink, webhooks and billing housekeeping; with
    ``simulators`` (a demo or test of the distributed roles) the built-in simulators run in it too; without
    ``workers`` (``--no-workers``) only the channels, the dispatcher and the uplink, the rest being left to
    ``qixin worker`` processes."""
    channel: Role = EmbeddedSimulators(services) if simulators else SettingsChannel(services)
    roles: list[Role] = [Core(services), channel, DispatchRole(services)]
    return Runtime(services, [*roles, *_worker_roles(services)] if workers else roles)


def workers_only(services: Services) -> Runtime:
    """``qixin worker``: webhook pushes, billing housekeeping, number-check and file jobs, alerts, the
    number-check upstream probe and the retention purge, without channels or dispatch (beside ``qixin
    dispatcher --no-workers``)."""
    return Runtime(services, [Core(services), *_worker_roles(services)])


def _worker_roles(services: Services) -> list[Role]:
    return [
        WorkersRole(services), FileJobsRole(services), AlertsRole(services), NumberProbeRole(services),
        RetentionRole(services), FlashProbeRole(services),
    ]  # fmt: skip
