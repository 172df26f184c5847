"""Distributed mode: `qixin api` and `qixin dispatcher` as separate processes on one database.

The API process only accepts (no channels); the dispatcher process claims, submits through the
embedded simulators, stores receipts and pushes webhooks. Runs on SQLite (two processes on one WAL
file) and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
from conftest import free_port, migrate_from_template

from qixin.domain.signing import signed_headers


async def test_api_and_dispatcher_processes(db_url: str, tmp_path: Path) -> None:
    env = dict(
        os.environ, QIXIN_SENDING_WINDOWS="off", QIXIN_DATABASE_URL="" if db_url.startswith("sqlite") else db_url
    )
    if db_url.startswith("sqlite"):
        env.pop("QIXIN_DATABASE_URL")
        migrate_from_template(f"sqlite:///{tmp_path / 'data' / 'qixin.db'}")  # the processes find it migrated
    data = str(tmp_path / "data")
    cli = [sys.executable, "-m", "qixin.cli"]
    created = subprocess.run(  # noqa: ASYNC221 - one CLI call before any process runs
        [*cli, "account", "create", "--name", "分布式", "--signature", "企信", "--balance", "100", "--price", "0.035",
         "--data-dir", data, "--json"], env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    acct = json.loads(created.stdout)
    staff = subprocess.run(  # noqa: ASYNC221 - the detailed health is for staff (/admin/health)
        [*cli, "staff", "create", "--name", "ops", "--role", "ops", "--data-dir", data, "--json"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    ops = {"Authorization": f"Bearer {json.loads(staff.stdout)['token']}"}
    port = free_port()
    quiet = subprocess.DEVNULL
    dispatcher = subprocess.Popen(  # noqa: ASYNC220
        [*cli, "dispatcher", "--simulators", "--data-dir", data], env=env, stdout=quiet, stderr=quiet
    )
    api = subprocess.Popen([*cli, "api", "--port", str(port), "--data-dir", data], env=env, stdout=quiet, stderr=quiet)  # noqa: ASYNC220
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for _ in range(300):
                try:
                    health = (await http.get("/admin/health", headers=ops)).json()
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            assert health["channels"] == []  # the API process runs no channel
            body = orjson.dumps({"to": ["13800138000", "18612345678", "18912345678"], "content": "分布式部署",
                                 "signature": "企信"})  # fmt: skip
            headers = signed_headers(acct["app_key"], acct["app_secret"], "POST", "/v1/sms", body)
            resp = await http.post("/v1/sms", content=body, headers=headers)
            assert resp.status_code == 200, resp.text
            ids = [m["id"] for m in resp.json()["accepted"]]
            final: dict[str, str] = {}
            for _ in range(300):
                for mid in ids:
                    path = f"/v1/sms/{mid}"
                    got = (
                        await http.get(path, headers=signed_headers(acct["app_key"], acct["app_secret"], "GET", path))
                    ).json()
                    if got["status"] not in ("queued", "submitted", "scheduled"):
                        final[mid] = got["channel"]
                if len(final) == len(ids):
                    break
                await asyncio.sleep(0.1)
            assert sorted(final.values()) == ["sim-cmpp", "sim-sgip", "sim-smgp"], final
    finally:
        for proc in (api, dispatcher):
            proc.send_signal(signal.SIGTERM)
        for proc in (api, dispatcher):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert dispatcher.returncode == 0
    # uvicorn raises the SIGTERM that stopped it again after draining (exit -15); api.server.Server does not
    assert api.returncode == 0


async def test_two_dispatchers_share_the_queue_without_double_sends(pg_url: str, tmp_path: Path) -> None:
    """Several dispatchers on PostgreSQL (FOR UPDATE SKIP LOCKED): every message submitted exactly once."""
    from qixin.gateway.simulators.smpp import SimulatorConfig, SmppSimulator

    sim = SmppSimulator("127.0.0.1", 0, SimulatorConfig(receipt_delay=(0.01, 0.05)))
    smpp_port = await sim.start()
    env = dict(os.environ, QIXIN_SENDING_WINDOWS="off", QIXIN_MAX_NUMBER_RUN="0", QIXIN_DATABASE_URL=pg_url,
               QIXIN_SMPP_PORT=str(smpp_port))  # fmt: skip
    data = str(tmp_path / "data")
    cli = [sys.executable, "-m", "qixin.cli"]
    created = subprocess.run(  # noqa: ASYNC221 - one CLI call before any process runs
        [*cli, "account", "create", "--name", "多调度", "--signature", "企信", "--balance", "1000", "--price",
         "0.035", "--data-dir", data, "--json"], env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    acct = json.loads(created.stdout)
    port = free_port()
    quiet = subprocess.DEVNULL
    procs = [
        subprocess.Popen([*cli, "dispatcher", "--data-dir", data], env=env, stdout=quiet, stderr=quiet)  # noqa: ASYNC220
        for _ in range(2)
    ]
    procs.append(subprocess.Popen([*cli, "api", "--port", str(port), "--data-dir", data], env=env, stdout=quiet,  # noqa: ASYNC220
                                  stderr=quiet))  # fmt: skip
    n = 600
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for _ in range(300):
                try:
                    await http.get("/health")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            deadline = time.monotonic() + 120  # both dispatchers bound to the gateway (slow starts on a loaded box)
            while sim.stats.binds < 2:
                assert all(p.poll() is None for p in procs), [p.returncode for p in procs]
                assert time.monotonic() < deadline, f"{sim.stats.binds} of 2 dispatchers bound"
                await asyncio.sleep(0.1)
            for chunk in range(3):
                body = orjson.dumps({"to": [f"1390{chunk}{i:06d}" for i in range(n // 3)], "content": "多调度进程",
                                     "signature": "企信"})  # fmt: skip
                headers = signed_headers(acct["app_key"], acct["app_secret"], "POST", "/v1/sms", body)
                resp = await http.post("/v1/sms", content=body, headers=headers)
                assert resp.status_code == 200 and resp.json()["accepted_count"] == n // 3, resp.text
        import psycopg

        dsn = "postgresql://" + pg_url.split("://", 1)[1]
        final = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            async with await psycopg.AsyncConnection.connect(dsn) as conn:
                cur = await conn.execute(
                    "SELECT COUNT(*) FROM messages WHERE status IN ('delivered','undelivered','expired','rejected')"
                )
                final = (await cur.fetchone())[0]  # type: ignore[index]
            if final == n:
                break
            await asyncio.sleep(0.1)
        assert final == n
        assert sim.stats.submits == n  # nobody submitted a message another dispatcher held
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        await sim.stop()


async def test_a_started_runtime_freezes_what_start_up_built_and_stop_gives_it_back(tmp_path: Path) -> None:
    """gc_freeze (on in every process qixin starts): after start-up the collector no longer walks the
    lexicon, the classifier model and the modules; stop hands them back, and off leaves gc alone."""
    import gc

    from qixin.app import Core, Runtime, build
    from qixin.settings import Settings

    migrate_from_template(f"sqlite:///{tmp_path / 'qixin.db'}")
    for freeze in (True, False):
        services = build(Settings(data_dir=tmp_path, gc_freeze=freeze))
        runtime = Runtime(services, [Core(services)])
        assert gc.get_freeze_count() == 0
        await runtime.start()
        try:
            assert (gc.get_freeze_count() > 10_000) is freeze, gc.get_freeze_count()
        finally:
            await runtime.stop()
        assert gc.get_freeze_count() == 0
