"""The store survives its PostgreSQL connections being cut (``pg_terminate_backend``, a PostgreSQL restart, a
network blip): found by tests/test_crash_pg_roles.py, where every role logged "the connection is closed" for
ever after the cut — the writer threads and the reader threads kept their dead connections.

Now a read runs again once on a new connection (a read changes nothing), and a write whose connection was
lost fails (its caller retries as it does for any failed write: the dispatcher's flush, the customer's
idempotency key) while the writer opens a new connection for the next one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import running_platform
from psycopg import OperationalError

from qixin.store.db import Database, pg_dsn


def _cut(url: str) -> int:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(pg_dsn(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.pg
async def test_reads_and_writes_work_again_after_the_connections_are_cut(pg_url: str) -> None:
    db = Database(pg_url, writers=1)
    try:
        await db.write(lambda tx: tx.execute("CREATE TABLE t_reconnect (v INTEGER)"))
        await db.write(lambda tx: tx.execute("INSERT INTO t_reconnect VALUES (1)"))
        assert await db.read(lambda tx: tx.one("SELECT COUNT(*) FROM t_reconnect")[0]) == 1
        assert _cut(pg_url) >= 2  # the writer's and the reader's connections
        # a read after the cut: run again on a new connection, not an error
        assert await db.read(lambda tx: tx.one("SELECT COUNT(*) FROM t_reconnect")[0]) == 1
        # the first write after the cut may fail (its connection is dead: nothing of it was committed) …
        try:
            await db.write(lambda tx: tx.execute("INSERT INTO t_reconnect VALUES (2)"))
            written = 1
        except OperationalError:
            written = 0
        # … and every later one succeeds on the writer's new connection
        for v in range(3, 13):
            await db.write(lambda tx, v=v: tx.execute("INSERT INTO t_reconnect VALUES (?)", (v,)))
        assert await db.read(lambda tx: tx.one("SELECT COUNT(*) FROM t_reconnect")[0]) == 1 + written + 10
        assert _cut(pg_url) >= 1  # twice: the new connections are replaced too
        for _ in range(2):
            try:
                await db.write(lambda tx: tx.execute("INSERT INTO t_reconnect VALUES (99)"))
            except OperationalError:
                continue
        assert await db.read(lambda tx: tx.one("SELECT COUNT(*) FROM t_reconnect WHERE v = 99")[0]) >= 1
    finally:
        db.close()


@pytest.mark.pg
def test_a_socket_error_that_psycopg_leaves_unmarked_counts_as_a_lost_connection(pg_url: str) -> None:
    """CI once saw a read fail after the cut with "connection socket closed" on a connection psycopg still
    called good (its poll saw the socket hang up before libpq read the server's goodbye): the read was not
    run again. Such an error, and the server's own "terminating connection", now count as lost and close
    the connection; a statement's own error (a timeout) keeps it."""
    db = Database(pg_url, writers=1)
    conn = db.connect()
    try:
        assert not db._lost(conn, psycopg.errors.QueryCanceled("canceling statement due to statement timeout"))
        assert not db._lost(conn, ValueError("not the database's"))
        assert not conn.closed
        assert db._lost(conn, OperationalError("connection socket closed"))
        assert conn.closed
        other = db.connect()
        assert db._lost(other, psycopg.errors.AdminShutdown("terminating connection due to administrator command"))
        assert other.closed
    finally:
        conn.close()
        db.close()


def _outage(url: str, on: bool) -> None:
    """Refuse (``on``) or allow new connections to the platform's database, cutting the open ones when on."""
    base, name = url.rsplit("/", 1)
    with psycopg.connect(pg_dsn(f"{base}/postgres"), autocommit=True) as conn:  # not from the database itself
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {"false" if on else "true"}')
        if on:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


@pytest.mark.pg
async def test_requests_during_a_database_outage_get_a_retryable_503(pg_url: str, tmp_path: Path) -> None:
    """While PostgreSQL refuses the platform's connections, a send and a query are answered 503
    SERVICE_UNAVAILABLE with Retry-After — not INTERNAL_ERROR with a traceback — and nothing of them is
    kept; once the database is back, the same send (same idempotency key) is accepted exactly once."""
    async with running_platform(pg_url, tmp_path) as r:
        api = r.account()
        assert (await api.send(to=["13800138000"], content="停机前")).status_code == 200
        body = {"to": ["13800138001"], "content": "停机中", "idempotency_key": "outage-1"}
        _outage(pg_url, True)
        try:
            for _ in range(2):  # the first request meets the cut connections, the second the refused reconnect
                resp = await api.send(**body)
                assert resp.status_code == 503, resp.text
                assert resp.json()["code"] == "SERVICE_UNAVAILABLE"
                assert resp.headers["Retry-After"] == "1"
            query = await api.get("/v1/sms?limit=10")
            assert (query.status_code, query.json()["code"]) == (503, "SERVICE_UNAVAILABLE")
        finally:
            _outage(pg_url, False)

        async def send_until_served() -> Any:
            """A client that retries on 503 (Retry-After): the roles reconnect by themselves, and until each
            connection of the pools has met the outage and been replaced, a request may still meet a dead one."""
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while True:
                resp = await api.send(**body)
                if resp.status_code != 503 or loop.time() > deadline:
                    return resp
                await asyncio.sleep(0.05)

        resp = await send_until_served()
        assert resp.status_code == 200, resp.text
        again = await send_until_served()
        assert again.status_code == 200 and again.json().get("replayed") is True, again.text
        rows = await r.platform.db.read(
            lambda tx: tx.one("SELECT COUNT(*) FROM messages WHERE number = ?", ("13800138001",))
        )
        assert rows[0] == 1
