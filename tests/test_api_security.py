"""Security findings of the API probe, each over real loopback HTTP: forwarded headers and the IP allow-list,
body limits while streaming, replay after a restart, unvalidated input, and what health pages reveal."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from conftest import TEST_COMPLIANCE, Running, start_running

from qixin.domain.signing import signed_headers
from qixin.errors import CATALOGUE
from qixin.services.actor import Actor
from qixin.services.nonces import DatabaseNonceStore
from qixin.services.staff import create_staff
from qixin.settings import Settings
from qixin.store import nonces as nonce_sql
from qixin.store.db import Database, now_ms
from qixin.store.migrate import migrate

MiB = 1024 * 1024


def _settings(db_url: str, tmp_path: Path, **kw: object) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=db_url,
        sim_receipt_delay=(0.01, 0.05),
        compliance=TEST_COMPLIANCE,
        simulators=("smpp",),
    ).with_(**kw)


async def _stop(r: Running, server: object, task: asyncio.Task[None]) -> None:
    for c in r.clients:
        await c.aclose()
    server.should_exit = True  # type: ignore[attr-defined]
    await task
    await r.runtime.stop()


@pytest.fixture
async def behind_proxy(tmp_path: Path) -> AsyncIterator[Running]:
    """The platform told that 127.0.0.1 is its reverse proxy (QIXIN_TRUSTED_PROXIES=127.0.0.1)."""
    r, server, task = await start_running(
        _settings(f"sqlite:///{tmp_path / 'proxy.db'}", tmp_path, trusted_proxies=("127.0.0.1",))
    )
    try:
        yield r
    finally:
        await _stop(r, server, task)


# --- forwarded headers and the IP allow-list -------------------------------------------------------


async def test_forwarded_for_is_ignored_without_trusted_proxies(running: Running) -> None:
    api = running.account()
    await running.platform.accounts.set_ip_allowlist(Actor.cli(), api.app_key, ["203.0.113.7"])
    headers = signed_headers(api.app_key, api.secret, "GET", "/v1/account")
    headers["X-Forwarded-For"] = "203.0.113.7"
    resp = await api.http.get("/v1/account", headers=headers)
    assert resp.status_code == 403, resp.text
    assert resp.json()["code"] == "IP_FORBIDDEN" and "127.0.0.1" in resp.json()["message"]


async def test_forwarded_for_is_believed_from_a_trusted_proxy(behind_proxy: Running) -> None:
    api = behind_proxy.account()
    await behind_proxy.platform.accounts.set_ip_allowlist(Actor.cli(), api.app_key, ["203.0.113.7"])
    headers = signed_headers(api.app_key, api.secret, "GET", "/v1/account")
    headers["X-Forwarded-For"] = "203.0.113.7"
    assert (await api.http.get("/v1/account", headers=headers)).status_code == 200
    headers = signed_headers(api.app_key, api.secret, "GET", "/v1/account")
    headers["X-Forwarded-For"] = "198.51.100.1"
    assert (await api.http.get("/v1/account", headers=headers)).json()["code"] == "IP_FORBIDDEN"


# --- body limits ---------------------------------------------------------------------------------


async def _raw_post(
    base: str, path: str, total: int, *, chunked: bool = True, declared: int | None = None, extra: str = ""
) -> tuple[int, dict[str, str], bytes, int]:
    """POST ``total`` bytes to ``path`` over a raw socket (chunked, or with a declared Content-Length and
    no body at all), stopping as soon as the server answers. Returns status, headers, body, bytes sent."""
    url = urlsplit(base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)

    async def read_answer() -> bytes:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = await reader.read(65536)
                if not chunk:
                    return data
                data += chunk
            head = data.partition(b"\r\n\r\n")[0].lower()
            length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            while len(data.partition(b"\r\n\r\n")[2]) < length:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionError:
            pass
        return data

    reply = asyncio.create_task(read_answer())
    sent = 0
    try:
        head = f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n{extra}"
        head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {declared}\r\n"
        writer.write((head + "\r\n").encode())
        piece = b"[" + b"1" * (256 * 1024 - 2) + b"]"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while chunked and sent < total and not reply.done():
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            sent += len(piece)
            drain = asyncio.ensure_future(writer.drain())
            done, _ = await asyncio.wait({drain, reply}, timeout=deadline - loop.time(), return_when="FIRST_COMPLETED")
            if not done:
                raise AssertionError("the server neither read nor answered")
            if drain not in done:
                drain.cancel()
            elif drain.exception() is not None:
                break
        if chunked and sent >= total and not reply.done():
            writer.write(b"0\r\n\r\n")
        data = await asyncio.wait_for(reply, timeout=max(1.0, deadline - loop.time()))
    finally:
        reply.cancel()
        writer.close()
    head_raw, _, body = data.partition(b"\r\n\r\n")
    lines = head_raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
    return status, headers, body, sent


async def test_chunked_body_over_the_send_limit_is_refused_while_streaming(running: Running) -> None:
    # no authentication headers at all: the limit applies before anything else
    status, headers, body, sent = await _raw_post(running.base, "/v1/sms", 96 * MiB)
    assert status == 413, body
    assert orjson.loads(body)["code"] == "BODY_TOO_LARGE"
    assert headers.get("connection") == "close"
    # refused around the 16 MB limit, not after reading everything (socket buffers take a few MB)
    assert 16 * MiB < sent < 48 * MiB, sent


async def test_chunked_body_over_the_default_limit_is_refused_on_other_routes(running: Running) -> None:
    token = running.platform.db.write_sync(lambda tx: create_staff(tx, "admin-user", "admin"))["token"]
    for path in ("/v1/signatures", "/admin/accounts", "/v1/templates"):
        auth = f"Authorization: Bearer {token}\r\n" if path.startswith("/admin") else ""
        status, _, body, sent = await _raw_post(running.base, path, 64 * MiB, extra=auth)
        assert status == 413 and orjson.loads(body)["code"] == "BODY_TOO_LARGE", (path, body)
        assert sent < 24 * MiB, (path, sent)
    assert running.platform.db.read_sync(lambda tx: tx.one("SELECT COUNT(*) FROM signatures")[0]) == 0


async def test_declared_length_over_the_limit_is_refused_without_reading(running: Running) -> None:
    # (replaces test_api_send's check of the 16 MB Content-Length limit, which the middleware now owns)
    status, _, body, _ = await _raw_post(running.base, "/v1/sms", 0, chunked=False, declared=16 * MiB + 1)
    assert status == 413 and orjson.loads(body)["code"] == "BODY_TOO_LARGE"
    assert "16 MB" in orjson.loads(body)["message"]
    status, _, body, _ = await _raw_post(running.base, "/v1/account", 0, chunked=False, declared=2 * MiB)
    assert status == 413 and orjson.loads(body)["limit_bytes"] == MiB


async def test_bodies_under_the_limits_still_work(running: Running) -> None:
    api = running.account()
    resp = await api.send(to="13800138000", content="单发", out_id="x" * 60)
    assert resp.status_code == 200, resp.text
    # 1.5 MB on the send route (over the 1 MB default, under its 16 MB): read whole, answered on its merits
    resp = await api.send(to=[f"x{i:013d}" for i in range(90_000)], content="无效号码")
    assert resp.status_code == 400 and resp.json()["code"] == "NO_VALID_NUMBERS", resp.text[:200]


# --- replay after a restart ----------------------------------------------------------------------


async def test_replay_after_restart_is_refused(db_url: str, tmp_path: Path) -> None:
    settings = _settings(db_url, tmp_path)
    r, server, task = await start_running(settings)
    try:
        api = r.account()
        body = orjson.dumps({"to": "13800138000", "content": "只发一次", "signature": "企信"})
        headers = signed_headers(api.app_key, api.secret, "POST", "/v1/sms", body)
        headers["Content-Type"] = "application/json"
        first = await api.http.post("/v1/sms", content=body, headers=headers)
        assert first.status_code == 200, first.text
        # delivered before the stop (a stop with a submit in flight can hit a dispatcher flush race)
        await r.wait_final(1)
        balance = r.platform.db.read_sync(
            lambda tx: tx.one("SELECT balance_li FROM accounts WHERE id = ?", (api.account_id,))[0]
        )
    finally:
        await _stop(r, server, task)
    r, server, task = await start_running(settings)  # the same database, a new process state
    try:
        async with httpx.AsyncClient(base_url=r.base) as http:
            resp = await http.post("/v1/sms", content=body, headers=headers)
        assert resp.status_code == 401 and resp.json()["code"] == "NONCE_REPLAYED", resp.text
        count, now_balance = r.platform.db.read_sync(
            lambda tx: (
                tx.one("SELECT COUNT(*) FROM messages")[0],
                tx.one("SELECT balance_li FROM accounts WHERE id = ?", (api.account_id,))[0],
            )
        )
        assert (count, now_balance) == (1, balance)  # sent and billed once
    finally:
        await _stop(r, server, task)


async def test_nonce_store_expiry_and_bounded_purge(db_url: str) -> None:
    db = Database(db_url)
    await asyncio.to_thread(migrate, db_url)
    db.start()
    try:
        store = DatabaseNonceStore(db, purge_every=3600, purge_batch=10)
        store._next_purge = float("inf")  # no purge while filling
        now = now_ms()
        for i in range(25):  # expired a minute ago
            await db.write(lambda tx, i=i: nonce_sql.claim(tx, "k", f"old-nonce-{i:03d}", now, now - 60_000))
        assert await store.first_use("k", "fresh-nonce-1", 600)
        assert not await store.first_use("k", "fresh-nonce-1", 600)  # a replay
        assert await store.first_use("k", "old-nonce-000", 600)  # expired: may be used again
        assert not await store.first_use("k", "old-nonce-000", 600)
        counts = []
        for i in range(4):  # each request purges at most one batch of 10 while a backlog remains
            store._next_purge = 0.0 if i == 0 else store._next_purge
            assert await store.first_use("k", f"later-nonce-{i}", 600)
            counts.append(db.read_sync(nonce_sql.count))
        # 24 expired + 2 live rows; each request adds one live row: 27-10, 18-10, 9-4 (the last expired), 5+1
        assert counts == [17, 8, 5, 6], counts
        assert store._next_purge > 0.0  # the backlog is gone: back to purging every purge_every seconds
    finally:
        db.close()


# --- unvalidated input: 4xx with a catalogue code, never a 5xx, nothing stored --------------------

BIG = 2**70  # beyond signed 64-bit: SQLite raised OverflowError (a 500)


def _stored(r: Running) -> tuple[int, int, int, int]:
    return r.platform.db.read_sync(
        lambda tx: (
            tx.one("SELECT COUNT(*) FROM batches")[0],
            tx.one("SELECT COUNT(*) FROM messages")[0],
            tx.one("SELECT COUNT(*) FROM ledger")[0],
            tx.one("SELECT COALESCE(SUM(balance_li), 0) FROM accounts")[0],
        )
    )


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    errors = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert errors == [], errors


async def test_oversized_integers_in_paths_and_queries(running: Running, caplog: pytest.LogCaptureFixture) -> None:
    api = running.account()
    token = running.platform.db.write_sync(lambda tx: create_staff(tx, "admin-user", "admin"))["token"]
    before = _stored(running)
    for path in (f"/v1/sms/{BIG}", f"/v1/batches/{BIG}", f"/v1/templates/{BIG}", f"/v1/sms/{2**63}"):
        resp = await api.get(path)
        assert resp.status_code in (400, 404) and resp.json()["code"] in ("INVALID_REQUEST", "NOT_FOUND"), (path, resp)
    async with httpx.AsyncClient(base_url=running.base, headers={"Authorization": f"Bearer {token}"}) as admin:
        for method, path, body in (
            ("GET", f"/admin/audit?limit=10&before_id={BIG}", None),
            ("GET", f"/admin/audit?limit={BIG}", None),
            ("GET", f"/admin/ported-numbers?limit={BIG}", None),
            ("GET", f"/admin/billing/accounts/{BIG}/ledger", None),
            ("POST", f"/admin/accounts/{BIG}/topup", {"amount": "10", "ref": "t-1"}),
            ("POST", f"/admin/billing/accounts/{BIG}/topups", {"amount": "10", "ref": "t-2"}),
            ("POST", f"/admin/signatures/{BIG}/approve", {}),
            ("DELETE", f"/admin/channels/{BIG}", None),
        ):
            resp = await admin.request(method, path, json=body)
            assert resp.status_code < 500, (method, path, resp.status_code, resp.text)
            if resp.status_code >= 400:  # (a huge limit may also be clamped and answered)
                assert resp.json()["code"] in CATALOGUE, resp.text
    assert _stored(running) == before
    _no_tracebacks(caplog)


async def test_bad_send_fields_are_refused(running: Running, caplog: pytest.LogCaptureFixture) -> None:
    api = running.account()
    before = _stored(running)
    cases = (
        ({"type": {}}, "TYPE_INVALID"),
        ({"type": ["marketing"]}, "TYPE_INVALID"),
        ({"template_id": 2**63}, "TEMPLATE_NOT_APPROVED"),
        ({"template_id": str(BIG)}, "TEMPLATE_NOT_APPROVED"),
        ({"send_at": 1e16}, "SEND_AT_TOO_FAR"),
        ({"send_at": 2**63}, "SEND_AT_TOO_FAR"),
        ({"send_at": 1e300}, "SEND_AT_TOO_FAR"),
        ({"send_at": "9999-12-31T23:59:59"}, "SEND_AT_TOO_FAR"),
        ({"send_at": int(time.time()) + 91 * 86_400}, "SEND_AT_TOO_FAR"),
    )
    for extra, code in cases:
        resp = await api.send(to="13800138000", content="内容", **extra)
        assert resp.status_code == 400 and resp.json()["code"] == code, (extra, resp.text)
    # beyond 64 bits the JSON parser reads a float: still no template
    raw = b'{"to": "13800138000", "content": "x", "signature": "\xe4\xbc\x81\xe4\xbf\xa1", "template_id": %d}' % BIG
    headers = signed_headers(api.app_key, api.secret, "POST", "/v1/sms", raw)
    resp = await api.http.post("/v1/sms", content=raw, headers=headers)
    assert resp.status_code == 400 and resp.json()["code"] == "TEMPLATE_NOT_APPROVED", resp.text
    assert _stored(running) == before
    # 89 days ahead is still a scheduled send
    ok = await api.send(to="13800138000", content="内容", send_at=int(time.time()) + 89 * 86_400)
    assert ok.status_code == 200 and ok.json()["status"] == "scheduled", ok.text
    _no_tracebacks(caplog)


async def test_non_ascii_signature_and_timestamp(running: Running, caplog: pytest.LogCaptureFixture) -> None:
    api = running.account()
    headers: dict[str, str | bytes] = dict(signed_headers(api.app_key, api.secret, "GET", "/v1/account"))
    headers["X-Qx-Signature"] = "签名".encode()
    resp = await api.http.get("/v1/account", headers=headers)
    assert resp.status_code == 401 and resp.json()["code"] == "SIGNATURE_INVALID", resp.text
    headers = dict(signed_headers(api.app_key, api.secret, "GET", "/v1/account"))
    headers["X-Qx-Timestamp"] = "١٧٠٠٠٠٠٠٠٠".encode()  # Arabic-Indic digits: int() takes them
    resp = await api.http.get("/v1/account", headers=headers)
    assert resp.status_code == 401 and resp.json()["code"] == "TIMESTAMP_EXPIRED", resp.text
    headers = dict(signed_headers(api.app_key, api.secret, "GET", "/v1/account"))
    headers["X-Qx-Timestamp"] = "9" * 5000
    resp = await api.http.get("/v1/account", headers=headers)
    assert resp.status_code == 401 and resp.json()["code"] == "TIMESTAMP_EXPIRED", resp.text
    _no_tracebacks(caplog)


async def test_huge_top_up_amounts_are_refused(running: Running, caplog: pytest.LogCaptureFixture) -> None:
    api = running.account()
    token = running.platform.db.write_sync(lambda tx: create_staff(tx, "finance-user", "finance"))["token"]
    before = _stored(running)
    async with httpx.AsyncClient(base_url=running.base, headers={"Authorization": f"Bearer {token}"}) as fin:
        for amount in ("1e20", "100000000000", str(BIG), "9" * 30):
            for path in (f"/admin/accounts/{api.account_id}/topup", f"/admin/billing/accounts/{api.account_id}/topups"):
                resp = await fin.post(path, json={"amount": amount, "ref": f"big-{amount[:8]}", "operator": True})
                assert resp.status_code == 400 and resp.json()["code"] == "INVALID_REQUEST", (amount, resp.text)
        ok = await fin.post(f"/admin/accounts/{api.account_id}/topup", json={"amount": "100", "ref": "normal"})
        assert ok.status_code == 200, ok.text
    assert _stored(running)[2:] == (before[2] + 1, before[3] + 100_000)
    _no_tracebacks(caplog)


# --- health pages --------------------------------------------------------------------------------


async def test_public_health_reveals_nothing_and_details_need_staff(running: Running) -> None:
    api = running.account()
    assert (await api.send(to="13800138000", content="计数")).status_code == 200
    async with httpx.AsyncClient(base_url=running.base) as anon:
        for path in ("/healthz", "/health"):
            resp = await anon.get(path)
            assert resp.status_code == 200 and resp.json() == {"ok": True}, (path, resp.text)
        assert (await anon.get("/")).headers["location"] == "/login"  # the console wants a login
        page = (await anon.get("/login")).text
        assert "/docs" in page and "smpp-sim" not in page and "已提交" not in page
        resp = await anon.get("/admin/health")
        assert resp.status_code == 401 and resp.json()["code"] == "STAFF_AUTH_REQUIRED"
    for role, status in (("reviewer", 403), ("ops", 200)):
        token = running.platform.db.write_sync(lambda tx, role=role: create_staff(tx, f"{role}-h", role))["token"]
        async with httpx.AsyncClient(base_url=running.base, headers={"Authorization": f"Bearer {token}"}) as staff:
            resp = await staff.get("/admin/health")
            assert resp.status_code == status, resp.text
    details = resp.json()
    assert [c["name"] for c in details["channels"]] == ["smpp-sim"] and "submitted" in details["dispatch"]


async def test_readyz_database_migrations_and_channels(running: Running) -> None:
    from qixin.api import health

    async with httpx.AsyncClient(base_url=running.base) as anon:
        resp = await anon.get("/readyz")
        assert resp.status_code == 200 and resp.json() == {"ok": True, "failed": []}, resp.text
    platform = running.platform
    assert await health.readiness(platform) == []
    # traffic for a carrier no channel is up for: not ready
    api = running.account()
    await platform.channels.stop()  # every channel down: the send is accepted, then fails NO_ROUTE
    assert (await api.send(to="13800138000", content="无通道")).status_code == 200
    assert await health.readiness(platform) == ["channel:cmcc"]
    async with httpx.AsyncClient(base_url=running.base) as anon:
        deadline = asyncio.get_running_loop().time() + 10
        while (resp := await anon.get("/readyz")).status_code != 503:  # past the one-second cache
            assert asyncio.get_running_loop().time() < deadline, resp.text
            await asyncio.sleep(0.1)
        assert resp.json() == {"ok": False, "failed": ["channel:cmcc"]}
    # a database whose migrations are behind the code
    platform.db.write_sync(lambda tx: tx.execute("DELETE FROM alembic_version"))  # no head applied
    assert "migrations" in await health.readiness(platform)


async def test_405_answers_carry_allow(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.base) as anon:
        resp = await anon.delete("/v1/account")
        assert resp.status_code == 405 and resp.json()["code"] == "METHOD_NOT_ALLOWED"
        assert resp.headers["allow"] == "GET"
        resp = await anon.put("/v1/sms")  # POST sends, GET searches
        assert resp.status_code == 405 and "POST" in resp.headers["allow"].split(", ")
