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
from pathlib import Path

import httpx
import orjson
from conftest import free_port

from qixin.domain.signing import signed_headers


async def test_api_and_dispatcher_processes(db_url: str, tmp_path: Path) -> None:
    env = dict(
        os.environ, QIXIN_SENDING_WINDOWS="off", QIXIN_DATABASE_URL="" if db_url.startswith("sqlite") else db_url
    )
    if db_url.startswith("sqlite"):
        env.pop("QIXIN_DATABASE_URL")
    data = str(tmp_path / "data")
    cli = [sys.executable, "-m", "qixin.cli"]
    created = subprocess.run(  # noqa: ASYNC221 - one CLI call before any process runs
        [*cli, "account", "create", "--name", "分布式", "--signature", "企信", "--balance", "100", "--price", "0.035",
         "--data-dir", data, "--json"], env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    acct = json.loads(created.stdout)
    port = free_port()
    quiet = subprocess.DEVNULL
    dispatcher = subprocess.Popen([*cli, "dispatcher", "--data-dir", data], env=env, stdout=quiet, stderr=quiet)  # noqa: ASYNC220
    api = subprocess.Popen([*cli, "api", "--port", str(port), "--data-dir", data], env=env, stdout=quiet, stderr=quiet)  # noqa: ASYNC220
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for _ in range(300):
                try:
                    health = (await http.get("/health")).json()
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
