"""Shared helpers for the benches that drive a real platform process over loopback.

- ``PlatformProcess`` runs ``python -m qixin.cli run`` in its own process (its own data directory, optional
  PostgreSQL URL, optional external SMPP port) and can profile it with py-spy when that is installed.
- ``HttpConn`` is a minimal HTTP/1.1 keep-alive client on asyncio streams: the load generator must not be
  the bottleneck, so there is no request object, no header dict on the way out and no JSON parse unless
  asked for.
- ``signed_request`` builds the raw bytes of one signed request (signing per docs/api.md).

Everything stops by itself: processes are terminated in ``stop()`` (also on errors, via ``with``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from qixin.domain.signing import signed_headers

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
FINAL_SQL = (
    "SELECT COUNT(*) FROM messages WHERE status IN"
    " ('delivered','undelivered','failed','rejected','expired','cancelled')"
)


def use_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> str:
    cpus = os.cpu_count() or 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return f"{cpus} cpus, load avg {load:.2f}, python {sys.version.split()[0]}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads) so far, from /proc (Linux). CPU per
    request is far less disturbed than req/s when other work shares the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of each thread of process ``pid`` (tid -> (name, seconds)), from /proc (Linux)."""
    out: dict[int, tuple[str, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        out[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    return out


def thread_split(pid: int, before: dict[int, tuple[str, float]], per: int) -> str:
    """µs per unit (``per`` units) of the main thread, the busiest other threads, and the rest."""
    after = thread_cpu(pid)
    used = {t: (n, s - before.get(t, (n, 0.0))[1]) for t, (n, s) in after.items()}
    main = used.pop(pid, ("main", 0.0))[1]
    others = sorted(used.items(), key=lambda kv: -kv[1][1])
    parts = [f"event loop {main * 1e6 / per:,.0f}"]
    parts += [f"thread {t} {s * 1e6 / per:,.0f}" for t, (_, s) in others[:3]]
    rest = sum(s for _, (_, s) in others[3:])
    parts.append(f"{len(others) - 3} others {rest * 1e6 / per:,.0f}")
    return "µs per unit by thread: " + ", ".join(parts)


def py_spy() -> str | None:
    exe = Path(PY).with_name("py-spy")
    return str(exe) if exe.exists() else shutil.which("py-spy")


def stop_processes(*procs: subprocess.Popen[bytes] | None, wait: float = 20) -> None:
    """SIGINT each child still running (a clean stop), SIGKILL the ones not gone ``wait`` seconds later."""
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


class PostgresDb:
    """A fresh PostgreSQL database, dropped on exit (``server`` like postgresql://postgres@127.0.0.1:5432)."""

    def __init__(self, server: str) -> None:
        self.server = server.rstrip("/")
        self.name = f"qixin_bench_{os.getpid()}_{int(time.time())}"

    def _admin(self) -> Any:
        import psycopg

        return psycopg.connect(f"{self.server}/postgres", autocommit=True, connect_timeout=5)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.server.split('://', 1)[1]}/{self.name}"

    def __enter__(self) -> PostgresDb:
        with self._admin() as c:
            c.execute(f'CREATE DATABASE "{self.name}"')
        return self

    def __exit__(self, *exc: object) -> None:
        with self._admin() as c:
            c.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class PlatformProcess:
    """``qixin run`` in a child process, with an account created through the CLI first."""

    def __init__(
        self,
        *,
        database_url: str | None = None,
        smpp_port: int | None = None,
        env: dict[str, str] | None = None,
        profile: str | None = None,
        balance: str = "100000000",
        price: str = "0.001",
        split: bool = False,
    ) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="qixin-bench-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        self.env.pop("QIXIN_DATABASE_URL", None)
        if database_url:
            self.env["QIXIN_DATABASE_URL"] = database_url
        if smpp_port:
            self.env["QIXIN_SMPP_PORT"] = str(smpp_port)
        # the compliance sending window (08:00–22:00 Beijing) would defer the bench's messages at night
        self.env["QIXIN_SENDING_WINDOWS"] = "off"
        self.env.update(env or {})
        self.profile = profile  # py-spy output path (flamegraph .svg or raw .txt)
        self.balance, self.price = balance, price
        self.split = split  # distributed roles: `qixin api` + `qixin dispatcher` processes on one database
        self.dispatcher: subprocess.Popen[bytes] | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.spy: subprocess.Popen[bytes] | None = None
        self.account: dict[str, Any] = {}
        self.staff_headers: dict[str, str] = {}

    @property
    def sqlite_path(self) -> Path:
        return self.tmp / "qixin.db"

    def _cli(self, *args: str) -> str:
        out = subprocess.run(
            [PY, "-m", "qixin.cli", *args, "--data-dir", str(self.tmp)],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=120,
        )
        return out.stdout.decode()

    def start(self, timeout: float = 60.0) -> PlatformProcess:
        # the detailed health (dispatch counters) is staff-only: /admin/health with an ops token
        staff = json.loads(self._cli("staff", "create", "--name", "bench-ops", "--role", "ops", "--json"))
        self.staff_headers = {"Authorization": f"Bearer {staff['token']}"}
        self.account = json.loads(
            self._cli(
                "account",
                "create",
                "--name",
                "压测客户",
                "--signature",
                "企信",
                "--balance",
                self.balance,
                "--price",
                self.price,
                "--json",
            )
        )
        if self.split:
            self.dispatcher = subprocess.Popen(
                [PY, "-m", "qixin.cli", "dispatcher", "--data-dir", str(self.tmp)],
                env=self.env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=open(self.tmp / "dispatcher.log", "wb"),  # noqa: SIM115 - closed with the process
            )
        self.proc = subprocess.Popen(
            [
                PY,
                "-m",
                "qixin.cli",
                "api" if self.split else "run",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.tmp),
            ],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=open(self.tmp / "platform.log", "wb"),  # noqa: SIM115 - closed with the process
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"platform exited: {(self.tmp / 'platform.log').read_text()[-2000:]}")
            try:
                h = httpx.get(f"{self.base}/admin/health", headers=self.staff_headers, timeout=2).json()
                chans = h.get("channels") or []
                # every channel connected (the key was "bound" before channels became data, now "up")
                if h.get("ok") and (self.split or (chans and all(c.get("up", c.get("bound")) for c in chans))):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("platform did not become healthy")
            time.sleep(0.2)
        return self

    def start_profile(self) -> None:
        exe = py_spy()
        if not (self.profile and exe and self.proc):
            return
        fmt = "flamegraph" if self.profile.endswith(".svg") else "raw"
        self.spy = subprocess.Popen(
            [exe, "record", "--pid", str(self.proc.pid), "--rate", "200", "--format", fmt, "-o", self.profile,
             "--threads", "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def stop_profile(self) -> None:
        if self.spy is not None:
            self.spy.send_signal(signal.SIGINT)
            try:
                self.spy.wait(30)
            except subprocess.TimeoutExpired:
                self.spy.kill()
            self.spy = None

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.base}/admin/health", headers=self.staff_headers, timeout=10).json())

    def stop(self) -> None:
        self.stop_profile()
        stop_processes(self.proc, self.dispatcher)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> PlatformProcess:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class SimulatorProcess:
    """``qixin simulator smpp`` in a child process."""

    def __init__(self, delay_min: float = 0.05, delay_max: float = 0.2) -> None:
        self.port = free_port()
        self.args = ["--port", str(self.port), "--delay-min", str(delay_min), "--delay-max", str(delay_max)]
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SimulatorProcess:
        self.proc = subprocess.Popen(
            [PY, "-m", "qixin.cli", "simulator", "smpp", *self.args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("simulator did not start") from None
                time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        stop_processes(self.proc, wait=10)


def signed_request(account: dict[str, Any], method: str, path: str, body: bytes = b"", host: str = "x") -> bytes:
    """The raw bytes of one signed HTTP/1.1 keep-alive request."""
    h = signed_headers(account["app_key"], account["app_secret"], method, path, body)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    )
    return head.encode() + body


class HttpConn:
    """One keep-alive HTTP/1.1 connection; ``roundtrip`` sends raw bytes and returns (status, body)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.first_byte = 0.0  # perf_counter when the status line of the last response arrived

    @classmethod
    async def open(cls, port: int) -> HttpConn:
        r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        sock = w.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(r, w)

    async def roundtrip(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        self.first_byte = time.perf_counter()
        status = int(head[9:12])
        length = -1
        chunked = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value)
            elif lname == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
                data = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(data[:-2])
            return status, b"".join(parts)
        return status, await self.reader.readexactly(length) if length > 0 else b""

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


MOBILE_PREFIXES = ("135", "139", "138", "186", "133", "177", "150", "189", "132", "182", "192")  # all four carriers


def random_numbers(n: int, seed: int) -> list[str]:
    """``n`` distinct, valid, non-consecutive mainland mobile numbers (random, reproducible by seed).

    Consecutive runs are avoided on purpose: accept refuses number-range sending (runs longer than 20).
    """
    import random

    span = 10**8
    picks = random.Random(seed).sample(range(len(MOBILE_PREFIXES) * span), n)
    return [f"{MOBILE_PREFIXES[v // span]}{v % span:08d}" for v in picks]


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def summarize_profile(path: str, top: int = 25) -> str:
    """Top functions by self samples and by inclusive samples from a py-spy ``raw`` (collapsed) file."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            n = int(count)
            total += n
            frames = stack.split(";")
            own[frames[-1]] = own.get(frames[-1], 0) + n
            for fr in set(frames):
                incl[fr] = incl.get(fr, 0) + n
    if not total:
        return "(no samples)"
    lines = [f"{total} samples"]
    lines.append("-- self --")
    for fr, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * n / total:5.1f}%  {fr}")
    lines.append("-- inclusive --")
    for fr, n in sorted(incl.items(), key=lambda kv: -kv[1])[: top * 2]:
        lines.append(f"{100 * n / total:5.1f}%  {fr}")
    return "\n".join(lines)
