"""Shared fixtures: databases (SQLite and PostgreSQL), a platform on real loopback HTTP, signed clients.

PostgreSQL tests use a fresh database per test on 127.0.0.1:5432 (QIXIN_TEST_PG for another server).
Migrations run once per session, not once per test (see "Migrated templates" below).
Without PostgreSQL the PostgreSQL tests are skipped with the reason printed, except when QIXIN_REQUIRE_SERVICES=1
(set by .ci/run): then a missing service is a failure, never a silent skip.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import qixin.app
import qixin.store.migrate
from qixin.api.app import asgi_app
from qixin.api.server import server_config
from qixin.app import Runtime, Services, build, embedded, ephemeral_low, free_loopback_port
from qixin.domain.signing import HEADER_APPKEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, signed_headers, verify
from qixin.services.accounts import create_account
from qixin.settings import ComplianceSettings, Settings
from qixin.store import reads

# The platform's compliance defaults defer messages outside 08:00–22:00 Beijing time and refuse runs of
# consecutive numbers; tests that are not about compliance must pass at any hour and may number their
# recipients 139000000000, 139000000001, … The compliance tests switch the rules back on.
TEST_COMPLIANCE = ComplianceSettings(sending_windows=False, max_number_run=0)

# The customer ports (2775, 7890, 8801, 8890 by default) stay closed in test platforms and the processes they
# start, unless a test asks for them (tests/test_port_*.py and test_ports_*.py pass free ports explicitly).
os.environ.setdefault("QIXIN_SMPP_SERVER_PORT", "0")
os.environ.setdefault("QIXIN_CMPP_SERVER_PORT", "0")
os.environ.setdefault("QIXIN_SGIP_SERVER_PORT", "0")
os.environ.setdefault("QIXIN_SMGP_SERVER_PORT", "0")
# Test platforms start hundreds of times in one pytest process: a full collection before each gc.freeze
# would walk the whole test session's heap every time. tests/test_entry_points.py checks the freeze itself.
os.environ.setdefault("QIXIN_GC_FREEZE", "off")

PG_SERVER = os.environ.get("QIXIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
REQUIRE = os.environ.get("QIXIN_REQUIRE_SERVICES") == "1"


def _pg_admin() -> Any:
    import psycopg

    return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=3)


def pg_available() -> str | None:
    try:
        _pg_admin().close()
        return None
    except Exception as e:  # pragma: no cover - depends on the machine
        return f"PostgreSQL unreachable at {PG_SERVER}: {e}"


def redis_available(url: str = "redis://127.0.0.1:6379/0") -> str | None:
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        return None
    except Exception as e:  # pragma: no cover
        return f"Redis unreachable at {url}: {e}"


def need(reason: str | None) -> None:
    if reason is None:
        return
    if REQUIRE:
        pytest.fail(f"required service missing (QIXIN_REQUIRE_SERVICES=1): {reason}")
    pytest.skip(reason)


# -- Migrated templates -----------------------------------------------------------------------------------
# Alembic from an empty database costs about 2 s (all revisions, SQLite table rebuilds), and most tests start
# a platform whose Core migrates its fresh database. So each session runs the real migrations once per
# engine into a template, and a test's new database starts as a copy of it:
# - SQLite: ``migrate(url)`` of a file that does not exist yet copies the template file there first;
# - PostgreSQL: ``pg_url`` creates its database ``TEMPLATE`` a database migrated at the session's start.
# The real ``migrate`` still runs after the copy (it finds the newest revision and does nothing), so a
# revision added later than the template would still apply. tests/test_migrations.py runs Alembic from
# empty databases (``empty_db_url``, ``real_migrate``). QIXIN_TEST_MIGRATE_EACH=1 turns the templates off.

real_migrate = qixin.store.migrate.migrate
EACH = os.environ.get("QIXIN_TEST_MIGRATE_EACH") == "1"
_template_lock = threading.Lock()
_sqlite_template: list[Path] = []  # the migrated SQLite file, made on first use


def _sqlite_template_file() -> Path:
    with _template_lock:
        if not _sqlite_template:
            folder = Path(tempfile.mkdtemp(prefix="qixin-migrated-"))
            atexit.register(shutil.rmtree, folder, True)
            path = folder / "template.db"
            real_migrate(f"sqlite:///{path}")
            _sqlite_template.append(path)
        return _sqlite_template[0]


def migrate_from_template(url: str) -> None:
    """``qixin.store.migrate.migrate`` in tests: a new SQLite file starts as the migrated template."""
    if not EACH and url.startswith("sqlite:///") and ":memory:" not in url:
        target = Path(url.split("///", 1)[1])
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_sqlite_template_file(), target)
    real_migrate(url)


# Tests and qixin.app import the name at import time; conftest is imported before every test module.
qixin.store.migrate.migrate = migrate_from_template
qixin.app.migrate = migrate_from_template


def _pg_url(name: str) -> str:
    return f"postgresql+psycopg://{PG_SERVER.split('://', 1)[1]}/{name}"


class _PgDatabases:
    """Fresh databases copied from the session's template one step ahead of the tests, and dropped behind
    them: a thread of its own runs ``CREATE DATABASE … TEMPLATE`` for the next test and ``DROP DATABASE`` of
    the last one while the tests run (each took about a second of a PostgreSQL test's setup and teardown
    on a loaded 2-core machine). A test still gets a database nobody used before, at the newest schema."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="qixin-test-pg")
        self.next: Future[str] | None = None

    def _create(self) -> str:
        name = f"qixin_t_{secrets.token_hex(6)}"
        with _pg_admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    @staticmethod
    def _drop(name: str) -> None:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def take(self) -> str:
        ahead, self.next = self.next, None
        name = (ahead or self.pool.submit(self._create)).result()
        self.next = self.pool.submit(self._create)
        return name

    def give_back(self, name: str) -> None:
        self.pool.submit(self._drop, name)

    def close(self) -> None:
        if self.next is not None:
            self.pool.submit(self._drop, self.next.result())
        self.pool.shutdown(wait=True)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[_PgDatabases | None]:
    """A PostgreSQL database migrated to the newest schema once per session, and the copies made of it
    (None: no PostgreSQL, or QIXIN_TEST_MIGRATE_EACH=1)."""
    if pg_available() is not None or EACH:
        yield None
        return
    name = f"qixin_t_tpl_{secrets.token_hex(6)}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    databases = _PgDatabases(name)
    try:
        real_migrate(_pg_url(name))
        yield databases
    finally:
        databases.close()
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fresh_pg(template: str | None) -> Iterator[str]:
    need(pg_available())
    name = f"qixin_t_{secrets.token_hex(6)}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield _pg_url(name)
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A new PostgreSQL database, already at the newest schema (a copy of ``pg_template``)."""
    need(pg_available())
    databases: _PgDatabases | None = request.getfixturevalue("pg_template")
    if databases is None:
        yield from _fresh_pg(None)
        return
    name = databases.take()
    try:
        yield _pg_url(name)
    finally:
        databases.give_back(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables), once on SQLite and once on PostgreSQL: for tests of the migrations."""
    if request.param == "sqlite":
        path = tmp_path / "empty.db"
        path.touch()  # exists, so migrate_from_template leaves it to Alembic
        yield f"sqlite:///{path}"
    else:
        yield from _fresh_pg(None)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Runs the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'qixin.db'}"
    else:
        yield request.getfixturevalue("pg_url")


_HANDED_OUT: set[int] = set()


def _port_slice(low: int, high: int) -> tuple[int, int]:
    """Under pytest-xdist (``-n N``) each worker hands out ports of its own slice of [low, high), so that two
    workers never pick the same port; without xdist, the whole range."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not (worker.startswith("gw") and worker[2:].isdigit() and count.isdigit() and int(count) > 1):
        return low, high
    size = (high - low) // int(count)
    start = low + int(worker[2:]) * size
    return start, start + size


def free_port() -> int:
    """A loopback port that is free now and was not handed out before in this run (nor by another xdist
    worker), below the kernel's ephemeral range (qixin.app.free_loopback_port): a port from bind(0) is one
    that any outgoing connection (a pool's next PostgreSQL or Redis connection, in this or a started process)
    may take as its source port before the server meant to listen there binds it — which made a service
    exit with EADDRINUSE now and then."""
    port = free_loopback_port(*_port_slice(15000, min(ephemeral_low(), 32768)), avoid=_HANDED_OUT)
    _HANDED_OUT.add(port)
    return port


class Api:
    """A signed HTTP client for one account, over real loopback HTTP."""

    def __init__(self, base: str, app_key: str, secret: str, account_id: int) -> None:
        self.base = base
        self.app_key = app_key
        self.secret = secret
        self.account_id = account_id
        self.http = httpx.AsyncClient(base_url=base, timeout=60)

    async def request(self, method: str, path: str, body: Any = None, **sign_kw: Any) -> httpx.Response:
        raw = b"" if body is None else orjson.dumps(body)
        bare, _, query = path.partition("?")
        sign_kw.setdefault("query", parse_qsl(query, keep_blank_values=True))
        headers = signed_headers(self.app_key, self.secret, method, bare, raw, **sign_kw)
        headers["Content-Type"] = "application/json"
        return await self.http.request(method, path, content=raw, headers=headers)

    async def send(self, **body: Any) -> httpx.Response:
        body.setdefault("signature", "企信")
        return await self.request("POST", "/v1/sms", body)

    async def get(self, path: str) -> httpx.Response:
        return await self.request("GET", path)

    async def aclose(self) -> None:
        await self.http.aclose()


class Running:
    """A running platform: ``platform`` is what ``app.build`` made, ``runtime`` the roles started."""

    def __init__(self, platform: Services, runtime: Runtime, base: str) -> None:
        self.platform = platform
        self.runtime = runtime
        self.base = base
        self.clients: list[Api] = []

    def account(self, balance_li: int = 100_000, price_li: int = 35, signature: str = "企信", **kw: Any) -> Api:
        out = self.platform.db.write_sync(
            lambda tx: create_account(
                tx, kw.pop("name", "测试客户"), signature, balance_li, price_li, box=self.platform.directory.box, **kw
            )
        )
        api = Api(self.base, out["app_key"], out["app_secret"], out["account_id"])
        self.clients.append(api)
        return api

    async def wait_final(self, n: int, timeout: float = 30.0) -> None:
        """Wait until ``n`` messages are in a final state."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            done = await self.platform.db.read(reads.count_final)
            if done >= n:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"only {done} of {n} messages final after {timeout}s")
            await asyncio.sleep(0.05)


async def start_running(settings: Settings, **platform_kw: Any) -> tuple[Running, uvicorn.Server, asyncio.Task[None]]:
    """The embedded platform (``app.embedded``: simulators, dispatch, workers) behind real loopback HTTP."""
    platform = build(settings)
    runtime = embedded(platform, **platform_kw)
    await runtime.start()
    port = free_port()
    api = asgi_app(platform)
    server = uvicorn.Server(server_config(api, "127.0.0.1", port, settings.trusted_proxies, lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    return Running(platform, runtime, f"http://127.0.0.1:{port}"), server, task


@pytest.fixture
async def running(db_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    """The whole platform (SMPP simulator channel, dispatcher, webhooks) behind real HTTP."""
    async with running_platform(db_url, tmp_path) as r:
        yield r


@asynccontextmanager
async def running_platform(db_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    """What the ``running`` fixture yields, for modules that override the fixture (e.g. to run it in another
    event loop scope, tests/test_console_browser.py)."""
    settings = Settings(
        data_dir=tmp_path,
        database_url=db_url,
        sim_receipt_delay=(0.01, 0.05),
        compliance=TEST_COMPLIANCE,
        simulators=("smpp",),  # one simulator channel; tests/test_four_carriers.py runs all four
    )
    r, server, task = await start_running(settings)
    try:
        yield r
    finally:
        for c in r.clients:
            await c.aclose()
        server.should_exit = True
        await task
        await r.runtime.stop()


class Receiver:
    """A real local HTTP server standing in for a customer's webhook endpoint; verifies our signatures."""

    def __init__(self) -> None:
        self.events: list[dict] = []  # type: ignore[type-arg]
        self.requests = 0
        self.fail_first = 0
        self.bad_signatures = 0
        self.secrets: dict[str, str] = {}
        self.paths: list[str] = []  # the path of every request, in order

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.requests += 1
        self.paths.append(request.url.path)
        if self.fail_first > 0:
            self.fail_first -= 1
            return Response(status_code=503)
        h = request.headers
        secret = self.secrets.get(h.get(HEADER_APPKEY, ""), "")
        path = request.url.path
        ok = verify(secret, h[HEADER_SIGNATURE], "POST", path, "", h[HEADER_TIMESTAMP], h[HEADER_NONCE], body)
        if not ok:
            self.bad_signatures += 1
            return Response(status_code=401)
        self.events.extend(orjson.loads(body)["events"])
        return Response(b"ok")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver()
    port = free_port()
    app = Starlette(routes=[Route("/{path:path}", rec.handle, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield rec, f"http://127.0.0.1:{port}/hook"
    server.should_exit = True
    await task


class MailInbox:
    """A real SMTP server's mailbox on loopback (aiosmtpd): every message delivered to it, parsed."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import email
        from email import policy

        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


@pytest.fixture
def mail_sink() -> Iterator[tuple[int, MailInbox]]:
    """An SMTP server on a free loopback port: (port, its inbox)."""
    from aiosmtpd.controller import Controller

    box = MailInbox()
    port = free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield port, box
    finally:
        ctl.stop()
