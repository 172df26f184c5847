"""Scale-out of the distributed mode: N API processes sharing one port (``qixin api --workers N``, SO_REUSEPORT)
and M dispatchers on one PostgreSQL queue, with Redis for nonces and limits; every message submitted exactly
once. Real processes on loopback, bounded in count (a few hundred messages) and time."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from conftest import free_port, need, redis_available

from qixin.domain.signing import signed_headers

REDIS = "redis://127.0.0.1:6379/0"
CLI = [sys.executable, "-m", "qixin.cli"]
SECRET_KEY = "c2NhbGUtdGVzdC1rZXktMzItYnl0ZXMtbG9uZyEhISE="  # 32 bytes, base64: the same in every process
FINAL = "('delivered','undelivered','expired','rejected','failed')"


def node_of(message_id: str) -> int:
    """The id generator node that made an id (qixin/ids.py: ms | node (10 bits) | sequence (12 bits))."""
    return (int(message_id) >> 12) & 0x3FF


def submitted_by(resp: httpx.Response) -> int:
    """``qixin_dispatch_submitted`` of one dispatcher, from its /metrics."""
    line = next(x for x in resp.text.splitlines() if x.startswith("qixin_dispatch_submitted_total "))
    return int(float(line.split()[1]))


def stop(procs: list[subprocess.Popen[bytes]]) -> list[int | None]:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    codes: list[int | None] = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=30))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(None)
    return codes


async def count_final(pg_url: str) -> tuple[int, int]:
    """(messages in a final status, messages in total), read straight from PostgreSQL."""
    import psycopg

    dsn = "postgresql://" + pg_url.split("://", 1)[1]
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(f"SELECT COUNT(*) FILTER (WHERE status IN {FINAL}), COUNT(*) FROM messages")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_reuse_port_lets_two_sockets_share_a_port() -> None:
    """The listening socket ``qixin api --reuse-port`` uses: a second bind of the same port succeeds only when
    both sockets ask for SO_REUSEPORT."""
    from qixin.api.server import listen_socket

    port = free_port()
    first = listen_socket("127.0.0.1", port, reuse_port=True)
    first.listen()
    try:
        second = listen_socket("127.0.0.1", port, reuse_port=True)
        second.close()
        with pytest.raises(OSError):
            listen_socket("127.0.0.1", port)
    finally:
        first.close()


def test_help_documents_the_scale_out_flags() -> None:
    from typer.testing import CliRunner

    from qixin.cli import app

    runner = CliRunner()
    api = runner.invoke(app, ["api", "--help"], env={"COLUMNS": "200"}).output
    assert "--workers" in api and "--reuse-port" in api and "SO_REUSEPORT" in api
    assert "--no-workers" in runner.invoke(app, ["dispatcher", "--help"], env={"COLUMNS": "200"}).output
    assert runner.invoke(app, ["worker", "--help"]).exit_code == 0


def test_workers_needs_a_fixed_port(tmp_path: Path) -> None:
    out = subprocess.run(
        [*CLI, "api", "--workers", "2", "--port", "0", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2 and "--workers" in out.stderr


def listeners(port: int) -> int:
    """Sockets listening on ``port`` on loopback (each SO_REUSEPORT listener is its own line)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for x in lines if x.split()[1].endswith(f":{port:04X}") and x.split()[3] == "0A")


def test_workers_supervisor_stops_all_when_one_dies(tmp_path: Path) -> None:
    """``qixin api --workers 2``: both children listen on the one port; when one dies (SIGKILL), the supervisor
    stops the other and exits non-zero, so the orchestrator restarts the unit."""
    port = free_port()
    env = dict(os.environ, QIXIN_SMPP_SERVER_PORT="0", QIXIN_CMPP_SERVER_PORT="0")
    sup = subprocess.Popen([*CLI, "api", "--workers", "2", "--port", str(port), "--data-dir", str(tmp_path)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while listeners(port) < 2:
            assert sup.poll() is None and time.monotonic() < deadline, "two API processes did not listen"
            time.sleep(0.1)
        kids = [int(c) for c in Path(f"/proc/{sup.pid}/task/{sup.pid}/children").read_text().split()]
        assert len(kids) == 2
        os.kill(kids[0], signal.SIGKILL)
        assert sup.wait(timeout=30) != 0
        assert listeners(port) == 0  # the other child was stopped too
        assert not Path(f"/proc/{kids[1]}").exists()  # and reaped by the supervisor before it exited
    finally:
        if sup.poll() is None:
            sup.kill()


@pytest.mark.pg
@pytest.mark.parametrize(("n_api", "n_dispatch"), [(2, 2), pytest.param(3, 3, marks=pytest.mark.soak)])
async def test_n_apis_and_m_dispatchers_submit_each_message_exactly_once(
    pg_url: str, tmp_path: Path, n_api: int, n_dispatch: int
) -> None:
    """N API processes on one port × M dispatchers (small claim batches, so they really share the queue):
    requests on fresh connections reach every API process (told by the node in the message ids), every
    accepted message becomes final, and the gateway sees each one exactly once. ``make test`` runs 2 × 2
    (each process costs its Python start-up on a 2-core CI machine), ``make soak`` 3 × 3."""
    need(redis_available(REDIS))
    from qixin.gateway.simulators.smpp import SimulatorConfig, SmppSimulator

    per_request, max_requests = 10, 60
    sim = SmppSimulator("127.0.0.1", 0, SimulatorConfig(receipt_delay=(0.01, 0.05)))
    smpp_port = await sim.start()
    tag = uuid.uuid4().hex[:8]
    env = dict(
        os.environ, QIXIN_SENDING_WINDOWS="off", QIXIN_MAX_NUMBER_RUN="0", QIXIN_DATABASE_URL=pg_url,
        QIXIN_REDIS_URL=REDIS, QIXIN_FLOW_PREFIX=f"qixin-flow-scale-{tag}",
        QIXIN_LIMITS_PREFIX=f"qixin-limits-scale-{tag}", QIXIN_SMPP_PORT=str(smpp_port), QIXIN_CLAIM_BATCH="20",
        QIXIN_SECRET_KEY=SECRET_KEY,
        QIXIN_SMPP_SERVER_PORT="0", QIXIN_CMPP_SERVER_PORT="0",
    )  # fmt: skip
    env.pop("QIXIN_NODE_ID", None)
    data = str(tmp_path / "data")
    created = subprocess.run(  # noqa: ASYNC221 - one CLI call (it migrates) before any process runs
        [*CLI, "account", "create", "--name", "扩展测试", "--signature", "企信", "--balance", "1000", "--price",
         "0.035", "--data-dir", data, "--json"], env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    acct = json.loads(created.stdout)
    port = free_port()
    quiet = subprocess.DEVNULL
    metrics = [free_port() for _ in range(n_dispatch)]  # each dispatcher's own Prometheus endpoint
    procs = [
        subprocess.Popen(  # noqa: ASYNC220
            [*CLI, "dispatcher", "--data-dir", data],
            env=env | {"QIXIN_METRICS_PORT": str(m)},
            stdout=quiet,
            stderr=quiet,
        )
        for m in metrics
    ]
    api = subprocess.Popen(  # noqa: ASYNC220
        [*CLI, "api", "--workers", str(n_api), "--port", str(port), "--data-dir", data], env=env, stdout=quiet,
        stderr=quiet,
    )  # fmt: skip
    procs.append(api)
    accepted: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while True:  # the port answers (at least one API process is up)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert api.poll() is None and time.monotonic() < deadline, "the API processes did not start"
                await asyncio.sleep(0.1)
        while sim.stats.binds < n_dispatch:  # every dispatcher bound to the gateway
            assert time.monotonic() < deadline, f"only {sim.stats.binds} dispatchers bound"
            await asyncio.sleep(0.1)
        nodes: set[int] = set()
        for r in range(max_requests):
            body = orjson.dumps({"to": [f"139{r:04d}{i:04d}" for i in range(per_request)], "content": "扩展部署",
                                 "signature": "企信"})  # fmt: skip
            headers = signed_headers(acct["app_key"], acct["app_secret"], "POST", "/v1/sms", body)
            # a fresh connection per request: the kernel picks the API process per connection
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                resp = await http.post("/v1/sms", content=body, headers=headers)
            assert resp.status_code == 200, resp.text
            ids = [m["id"] for m in resp.json()["accepted"]]
            assert len(ids) == per_request
            accepted += ids
            nodes |= {node_of(i) for i in ids}
            if len(nodes) == n_api and r >= 19:  # at least 200 messages, and every API process seen
                break
        assert len(nodes) == n_api, f"requests reached {len(nodes)} of {n_api} API processes"
        assert len(set(accepted)) == len(accepted)
        final, total = 0, 0
        while True:
            final, total = await count_final(pg_url)
            if final == len(accepted) or time.monotonic() > deadline + 60:
                break
            await asyncio.sleep(0.1)
        assert (final, total) == (len(accepted), len(accepted))
        assert sim.stats.submits == len(accepted)  # nobody submitted a message another dispatcher held
        async with httpx.AsyncClient(timeout=10) as http:
            submitted = [submitted_by(await http.get(f"http://127.0.0.1:{m}/metrics")) for m in metrics]
        assert sum(submitted) == len(accepted) and all(submitted), submitted  # every dispatcher took a share
    finally:
        codes = stop(procs)
        await sim.stop()
    assert codes == [0] * len(procs), codes
