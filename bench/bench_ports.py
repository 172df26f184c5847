"""Customer ports: one SMPP (CMPP, SGIP, SMGP) session's submits accepted per second — checked, billed,
stored by the same accept use case as POST /v1/sms — with a receipt back for every submit.

The platform runs in this process (embedded roles, SQLite in a temporary directory, the SMPP simulator
as the channel, sending windows off); the customer is one session on loopback pipelining ``--window``
submits (SMPP and CMPP: our protocol engine's bare session; SGIP and SMGP: our SP clients, the SGIP one
with its own listener as the login's ``deliver_to``, where the port connects back with the Reports). The
client shares the event loop with the platform, so the figure is a lower bound of what a separate client
would see; ``--client-process`` (SMPP, CMPP) runs it in a process of its own instead (``--customer …``,
which prints ``started`` when its timed part begins and then one JSON line of what it measured).
Bounded: ``--count`` messages (default 20,000) and ``--timeout`` seconds for the receipts.

``--profile FILE``: cProfile of the event loop (this process's main thread) over the timed part only, to
``FILE.<protocol>`` (``python -m pstats``); it slows the loop about 2.5×. With ``--split`` also the
child's main thread (its event loop: dispatcher, connector, simulator), start to end, to
``FILE.dispatcher.<protocol>``.

``--split``: the dispatcher and the SMPP simulator run in a child process (``qixin dispatcher
--simulators`` on the same SQLite file) and this process has the ``qixin api`` roles only (HTTP, the
ports and their receipt pump), as in the distributed mode: the port path measured without the carrier
side sharing its GIL. Every run prints the CPU of this process per message, split by thread (the event
loop, the database writer, the reader threads), and with ``--split`` the child's. ``--sim-process`` (with
``--split``): the simulator in a third process (``qixin simulator smpp``, the dispatcher's channel by
``QIXIN_SMPP_PORT``), its CPU printed apart: what the platform itself costs, the carrier elsewhere.
``--gc-threshold N``: ``gc.set_threshold(N)`` in this process and the dispatcher child. ``--receipt-delay
LO,HI``: the simulator's receipt delay (default 0.01,0.1 s; a real carrier's seconds keep more receipts
waiting for their message's final status).

    .venv/bin/python bench/bench_ports.py [--count 20000] [--window 256] [--split [--sim-process]] [--client-process]
        [--protocol smpp|cmpp|sgip|smgp|both|all] [--gc-threshold N] [--receipt-delay LO,HI]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from _harness import stop_processes

from qixin.app import api_only, build, embedded
from qixin.protocols.cmpp.codec import VERSION_30, CmppCodec, Connect, Submit, cmpp_authenticator_source
from qixin.protocols.cmpp.text import encode_text
from qixin.protocols.session import Session
from qixin.protocols.sgip import codec as sgip
from qixin.protocols.sgip.client import SgipClient
from qixin.protocols.smgp.client import SmgpClient
from qixin.protocols.smgp.codec import Submit as SmgpSubmit
from qixin.protocols.smpp.codec import BindTransceiver, SmppCodec, SubmitSm
from qixin.services.accounts import create_account
from qixin.services.actor import Actor
from qixin.settings import ComplianceSettings, Settings

ACCEPT_ONLY = "--accept-only" in sys.argv
GC_FREEZE = "--gc-freeze" in sys.argv
SIM_PROCESS = "--sim-process" in sys.argv
# --receipt-delay LO,HI: the simulator's receipt delay in seconds (default 0.01,0.1); a longer one keeps more
# receipts waiting for their message's final status, as a real carrier does
DELAY = sys.argv[sys.argv.index("--receipt-delay") + 1] if "--receipt-delay" in sys.argv else "0.01,0.1"
DELAY_LO, DELAY_HI = (float(x) for x in DELAY.split(","))
# --gc-threshold N: the cyclic collector's youngest-generation threshold (default 700) in this process and the
# dispatcher child, to see what the collections cost
GC_THRESHOLD = int(sys.argv[sys.argv.index("--gc-threshold") + 1]) if "--gc-threshold" in sys.argv else 0
PROFILE = sys.argv[sys.argv.index("--profile") + 1] if "--profile" in sys.argv else ""
CLIENT_PROCESS = "--client-process" in sys.argv
ROOT = Path(__file__).resolve().parent.parent
THIS = str(Path(__file__).resolve())
LOGINS = {"smpp": "bench01", "cmpp": "900001", "sgip": "bench-sgip", "smgp": "bench001"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _numbers(n: int) -> list[str]:
    rng = random.Random(7)
    return [f"13{rng.randrange(10**9):09d}" for _ in range(n)]  # random, distinct enough, not consecutive


async def _client(codec: Any, port: int, receipts: list[Any], window: int) -> Session:
    loop = asyncio.get_running_loop()

    def handler(session: Session, pdu: Any) -> Any:
        receipts.append(pdu)
        return codec.response_to(pdu) if hasattr(codec, "response_to") else None

    session = Session(codec, handler, window=window, request_timeout=60.0, heartbeat_interval=0)
    await loop.create_connection(lambda: session, "127.0.0.1", port)
    return session


def _session_pdus(protocol: str, login: str, rd: int) -> tuple[Any, Any, Callable[[str], Any], Callable[[Any], bool]]:
    """The customer's codec, its bind request (checked here), a submit to one number and the test of a good
    answer to a submit: SMPP and CMPP, on our protocol engine's bare session."""
    if protocol == "smpp":

        def make(n: str) -> Any:
            return SubmitSm(source_addr="1069", destination_addr=n, short_message=b"hello", registered_delivery=rd)

        bind: Any = BindTransceiver(system_id=login, password="benchpw")
        return SmppCodec(), bind, make, lambda r: int(r.command_status) == 0
    ts = time.strftime("%m%d%H%M%S")
    auth = cmpp_authenticator_source(login, "benchpw", ts)
    bind = Connect(source_addr=login, authenticator=auth, version=VERSION_30, timestamp=int(ts))
    fmt, contents, _ = encode_text("hello", 1)

    def make_cmpp(n: str) -> Any:
        return Submit(registered_delivery=rd, msg_fmt=fmt, src_id="1069", dest_terminal_ids=(n,),
                      msg_content=contents[0], msg_src=login)  # fmt: skip

    return CmppCodec(VERSION_30), bind, make_cmpp, lambda r: int(r.result) == 0


def _bound(protocol: str, resp: Any) -> bool:
    return int(resp.command_status if protocol == "smpp" else resp.status) == 0


async def _customer_process(
    protocol: str, port: int, count: int, window: int, rd: int, timeout: float, started: Callable[[], None]
) -> dict[str, Any]:
    """``--client-process``: the customer's SMPP or CMPP session in a process of its own (``bench_ports.py
    --customer …``), as a real customer's system is elsewhere: the platform's process no longer runs the
    customer's codec on its event loop. ``started`` is called when the timed part begins."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, THIS, "--customer", protocol, str(port), str(count), str(window),
        str(rd), str(timeout), stdout=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = await proc.stdout.readline()
        if line.strip() != b"started":
            raise RuntimeError(f"the customer process said {line!r}")
        started()
        out: dict[str, Any] = orjson.loads(await proc.stdout.readline())
    finally:
        if proc.returncode is None:
            await proc.wait()
    return out


async def _timed(
    submit: Callable[[Any], Any],
    make: Callable[[str], Any],
    ok: Callable[[Any], bool],
    receipts: list[Any],
    count: int,
    rd: int,
    timeout: float,
    started: Callable[[], None],
) -> dict[str, Any]:
    """One warm-up submit (not counted: what the platform builds on first use, compliance tables, is not the
    port path) and its receipt; then ``count`` submits as fast as the window lets them go, timed to the last
    answer, and the receipts waited for (at most ``timeout`` seconds)."""
    numbers = _numbers(count)
    warm = await (await submit(make("14700000000")))
    assert ok(warm), warm
    deadline = time.monotonic() + timeout
    while rd and not receipts and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    receipts.clear()
    started()
    t0 = time.perf_counter()
    futs = [await submit(make(n)) for n in numbers]
    resps = await asyncio.gather(*futs)
    t1 = time.perf_counter()
    accepted = sum(1 for r in resps if ok(r))
    deadline = time.monotonic() + timeout
    while rd and len(receipts) < accepted and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    t2 = time.perf_counter()
    return {"accepted": accepted, "accept_s": t1 - t0, "receipts": len(receipts), "all_receipts_s": t2 - t0}


async def _session_customer(
    protocol: str, port: int, count: int, window: int, rd: int, timeout: float, started: Callable[[], None]
) -> dict[str, Any]:
    """One customer SMPP or CMPP session: bind, then ``_timed`` with submits pipelined ``window`` deep."""
    login = LOGINS[protocol]
    codec, bind, make, ok = _session_pdus(protocol, login, rd)
    receipts: list[Any] = []
    s = await _client(codec, port, receipts, window)
    try:
        resp = await (await s.request(bind))
        assert _bound(protocol, resp), resp
        s.mark_bound()
        return await _timed(s.request, make, ok, receipts, count, rd, timeout, started)
    finally:
        await s.close(2)


def _sp_client(protocol: str, port: int, login: str, listen: int, window: int, receipts: list[Any]) -> Any:
    """The SGIP or SMGP customer: our SP client (the SGIP one with its listener for the port's Reports)."""
    if protocol == "sgip":
        return SgipClient(
            "127.0.0.1", port, login, "benchpw", node_id=3_0755_00001, listen_port=listen, smg_login_name=login,
            smg_password="benchpw", window=window, request_timeout=60.0, on_deliver=receipts.append,
        )  # fmt: skip
    return SmgpClient(
        "127.0.0.1", port, login, "benchpw", window=window, request_timeout=60.0, on_deliver=receipts.append
    )


async def _sp_customer(
    client: Any, receipts: list[Any], protocol: str, count: int, rd: int, timeout: float, started: Callable[[], None]
) -> dict[str, Any]:
    if protocol == "sgip":
        coding, contents, _ = encode_text("hello", 1)

        def make(n: str) -> Any:
            return sgip.Submit(sp_number="1069", user_numbers=("86" + n,), report_flag=1 if rd else 2,
                               message_coding=coding, message_content=contents[0])  # fmt: skip

        def ok(r: Any) -> bool:
            return int(r.result) == 0
    else:
        fmt, contents, _ = encode_text("hello", 1)

        def make(n: str) -> Any:
            return SmgpSubmit(need_report=rd, msg_format=fmt, src_term_id="1069", dest_term_ids=(n,),
                              msg_content=contents[0])  # fmt: skip

        def ok(r: Any) -> bool:
            return int(r.status) == 0

    await client.start()
    await client.wait_bound(10)
    try:
        return await _timed(client.submit, make, ok, receipts, count, rd, timeout, started)
    finally:
        await client.stop(2)


class _Meter:
    """The CPU this process (by thread, and its garbage collector) and the dispatcher and simulator children
    spend from ``start`` (the timed part's beginning) to ``stop``; the cProfile of the loop with ``--profile``."""

    def __init__(self, dispatcher: Any) -> None:
        self.dispatcher = dispatcher

    def start(self) -> None:
        self.cpu0, self.threads0 = time.process_time(), _thread_cpu()
        self.child0 = self.dispatcher.cpu() if self.dispatcher else 0.0
        self.child_loop0 = self.dispatcher.loop_cpu() if self.dispatcher else 0.0
        self.sim0 = self.dispatcher.sim_cpu() if self.dispatcher else 0.0
        self.gc_spent = _gc_clock()
        self.prof = cProfile.Profile() if PROFILE else None
        if self.prof is not None:
            self.prof.enable()

    def stop(self, protocol: str, count: int) -> dict[str, Any]:
        if self.prof is not None:
            self.prof.disable()
            self.prof.dump_stats(f"{PROFILE}.{protocol}")
        gc_us = self.gc_spent() * 1e6 / count
        split = f"{_split_line(self.threads0, count)}; garbage collector {gc_us:,.0f} µs per message"
        d = self.dispatcher
        return {
            "cpu_us": (time.process_time() - self.cpu0) * 1e6 / count, "split": split,
            "child_us": ((d.cpu() - self.child0) if d else 0.0) * 1e6 / count,
            "child_loop_us": ((d.loop_cpu() - self.child_loop0) if d else 0.0) * 1e6 / count,
            "sim_us": ((d.sim_cpu() - self.sim0) if d else 0.0) * 1e6 / count,
        }  # fmt: skip


def _thread_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds so far of each thread of this process: native id -> (name, seconds), from /proc."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        tid = int(task.name)
        name = names.get(tid) or (task / "comm").read_text().strip()
        out[tid] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return out


def _split_line(before: dict[int, tuple[str, float]], per: int) -> str:
    """µs of CPU per message of this process by thread kind: the event loop (main thread), the database
    writer(s), the reader threads (asyncio.to_thread), the rest."""
    after = _thread_cpu()
    kinds: dict[str, float] = {}
    main = threading.main_thread().native_id
    for tid, (name, sec) in after.items():
        used = sec - before.get(tid, (name, 0.0))[1]
        kind = (
            "event loop" if tid == main else "writer" if name.startswith("qixin-writer")
            else "readers" if name.startswith(("asyncio_", "uvloop_", "ThreadPoolExecutor")) else "other"
        )  # fmt: skip
        kinds[kind] = kinds.get(kind, 0.0) + used
    total = sum(kinds.values())
    parts = [f"{k} {v * 1e6 / per:,.0f}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])]
    return f"CPU {total * 1e6 / per:,.0f} µs per message ({', '.join(parts)})"


def _gc_clock() -> Callable[[], float]:
    """CPU seconds the cyclic garbage collector used from now on (its callbacks, the thread that ran it),
    read by calling the result."""
    spent = [0.0, 0.0]

    def hook(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            spent[1] = time.thread_time()
        else:
            spent[0] += time.thread_time() - spent[1]

    gc.callbacks.append(hook)

    def read() -> float:
        if hook in gc.callbacks:
            gc.callbacks.remove(hook)
        return spent[0]

    return read


def _cpu_of(pid: int, main_thread: bool = False) -> float:
    """CPU seconds of a child process, or of its main thread only (its event loop; the rest is its writer and
    reader threads)."""
    stat = Path(f"/proc/{pid}/task/{pid}/stat" if main_thread else f"/proc/{pid}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Dispatcher:
    """``qixin dispatcher --simulators`` on the bench's SQLite file, in a child process (``--split``); with
    ``--sim-process`` the SMPP simulator (the carrier) runs in a third process (``qixin simulator smpp``) and
    the dispatcher binds to it as its one channel (``QIXIN_SMPP_PORT``): the platform's own CPU without the
    carrier's."""

    def __init__(self, data_dir: Path, database_url: str, profile: str = "") -> None:
        env = dict(os.environ)
        env.pop("QIXIN_DATABASE_URL", None)
        if database_url:
            env["QIXIN_DATABASE_URL"] = database_url
        env.update(QIXIN_SIMULATORS="smpp", QIXIN_SIM_RECEIPT_DELAY=DELAY, QIXIN_SENDING_WINDOWS="off")
        self.sim: subprocess.Popen[bytes] | None = None
        roles = ["--simulators"]
        if SIM_PROCESS:
            sim_port = _free_port()
            self.sim = subprocess.Popen(
                [sys.executable, "-m", "qixin.cli", "simulator", "smpp", "--port", str(sim_port), "--delay-min",
                 str(DELAY_LO), "--delay-max", str(DELAY_HI)],
                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(data_dir / "simulator.log", "wb"),  # noqa: SIM115
            )  # fmt: skip
            _wait_listening(sim_port)
            env.update(QIXIN_SMPP_PORT=str(sim_port))
            roles = []
        run = ["-m", "qixin.cli"]
        if profile:
            run = ["-m", "cProfile", "-o", profile, *run]  # its main thread (the event loop), the whole run
        elif GC_THRESHOLD:
            run = ["-c", f"import gc, runpy; gc.set_threshold({GC_THRESHOLD}); runpy.run_module('qixin.cli', "
                   "run_name='__main__', alter_sys=True)"]  # fmt: skip
        self.proc = subprocess.Popen(
            [sys.executable, *run, "dispatcher", *roles, "--data-dir", str(data_dir)],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(data_dir / "dispatcher.log", "wb"),  # noqa: SIM115
        )  # fmt: skip

    def cpu(self) -> float:
        return _cpu_of(self.proc.pid)

    def loop_cpu(self) -> float:
        return _cpu_of(self.proc.pid, main_thread=True)

    def sim_cpu(self) -> float:
        return _cpu_of(self.sim.pid) if self.sim is not None else 0.0

    def stop(self) -> None:
        stop_processes(self.proc, self.sim)


def _wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


async def _run(
    protocol: str, count: int, window: int, timeout: float, rd: int = 1, database_url: str = "", split: bool = False
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="qixin-bench-ports-"))
    port = _free_port()
    settings = Settings(
        data_dir=tmp, database_url=database_url, simulators=() if split else ("smpp",),
        sim_receipt_delay=(DELAY_LO, DELAY_HI), port_window=window,
        compliance=ComplianceSettings(sending_windows=False),
        smpp_server_port=port if protocol == "smpp" else 0, cmpp_server_port=port if protocol == "cmpp" else 0,
        sgip_server_port=port if protocol == "sgip" else 0, smgp_server_port=port if protocol == "smgp" else 0,
    )  # fmt: skip
    platform = build(settings)
    runtime = api_only(platform) if split or (rd == 0 and ACCEPT_ONLY) else embedded(platform)
    await runtime.start()
    if GC_THRESHOLD:
        gc.set_threshold(GC_THRESHOLD)
    if GC_FREEZE:
        gc.collect()
        gc.freeze()  # what the platform holds after start-up (tables, lexicons) is never scanned again
    dispatcher = (
        _Dispatcher(tmp, database_url, f"{PROFILE}.dispatcher.{protocol}" if PROFILE else "") if split else None
    )
    client: Any = None
    try:
        acct = await platform.db.write(
            lambda tx: create_account(tx, "bench", "企信", 10**12, 35, box=platform.directory.box)
        )
        login = LOGINS[protocol]
        listen = _free_port()
        await platform.connections.add(
            Actor.cli(), acct["account_id"], protocol, login, "benchpw",
            deliver_to=f"127.0.0.1:{listen}" if protocol == "sgip" else "",
        )  # fmt: skip
        meter = _Meter(dispatcher)
        if protocol in ("smpp", "cmpp"):
            customer = _customer_process if CLIENT_PROCESS else _session_customer
            out = await customer(protocol, port, count, window, rd, timeout, meter.start)
        else:
            receipts: list[Any] = []
            client = _sp_client(protocol, port, login, listen, window, receipts)
            out = await _sp_customer(client, receipts, protocol, count, rd, timeout, meter.start)
        return {"protocol": protocol, "messages": count, "accepted_per_s": out["accepted"] / out["accept_s"],
                **out, **meter.stop(protocol, count)}  # fmt: skip
    finally:
        if client is not None:
            await client.stop(1)
        await runtime.stop()
        if dispatcher is not None:
            dispatcher.stop()


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


async def _idle(n: int) -> dict[str, Any]:
    """``n`` SMPP sessions bound at once and left idle: memory per connection (RSS of this process, which
    holds the client sockets too: an upper bound of the server's share)."""
    tmp = Path(tempfile.mkdtemp(prefix="qixin-bench-ports-"))
    smpp_port = _free_port()
    settings = Settings(data_dir=tmp, simulators=(), smpp_server_port=smpp_port, cmpp_server_port=0,
                        port_max_sessions=n + 10)  # fmt: skip
    platform = build(settings)
    runtime = api_only(platform)
    await runtime.start()
    try:
        acct = await platform.db.write(lambda tx: create_account(tx, "idle", "企信", 0, 35, box=platform.directory.box))
        await platform.connections.add(Actor.cli(), acct["account_id"], "smpp", "idle01", "pw", max_connections=n)
        sessions = [await _client(SmppCodec(), smpp_port, [], 16)]  # warm-up: one bind before measuring
        await (await sessions[0].request(BindTransceiver(system_id="idle01", password="pw")))
        before = _rss()
        t0 = time.perf_counter()
        for _ in range(n - 1):
            sessions.append(await _client(SmppCodec(), smpp_port, [], 16))
        resps = await asyncio.gather(
            *[await s.request(BindTransceiver(system_id="idle01", password="pw")) for s in sessions[1:]]
        )
        t1 = time.perf_counter()
        await asyncio.sleep(1.0)
        after = _rss()
        bound = 1 + sum(1 for r in resps if r.command_status == 0)
        port = runtime.customer_ports.ports["smpp"] if runtime.customer_ports else None
        on_server = len(port.server.sessions) if port else 0
        for s in sessions:
            s.abort()
        return {"bound": bound, "on_server": on_server, "bind_s": t1 - t0, "rss_per_conn": (after - before) / (n - 1)}
    finally:
        await runtime.stop()


def _customer_main(argv: list[str]) -> None:
    """``--customer PROTOCOL PORT COUNT WINDOW RD TIMEOUT``: the child of ``--client-process``. It prints
    ``started`` when its timed part begins, then one JSON line with what it measured."""
    protocol, port, count, window, rd, timeout = argv
    import uvloop

    def started() -> None:
        print("started", flush=True)

    out = uvloop.run(_session_customer(protocol, int(port), int(count), int(window), int(rd), float(timeout), started))
    sys.stdout.write(orjson.dumps(out).decode() + "\n")


def main() -> None:
    if sys.argv[1:2] == ["--customer"]:
        _customer_main(sys.argv[2:])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--protocol", choices=("smpp", "cmpp", "sgip", "smgp", "both", "all"), default="both")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--no-receipts", action="store_true", help="submits ask for no receipt")
    ap.add_argument("--accept-only", action="store_true", help="with --no-receipts: no dispatcher (qixin api roles)")
    ap.add_argument(
        "--pg", default="", help="PostgreSQL server (postgresql://postgres@127.0.0.1:5432): a fresh database"
    )
    ap.add_argument("--profile", default="", help="cProfile of the event loop over the timed part, to FILE.<protocol>")
    ap.add_argument("--gc-freeze", action="store_true", help="gc.freeze() once the platform started")
    ap.add_argument("--gc-threshold", type=int, default=0, help="gc.set_threshold(N) here and in the child")
    ap.add_argument("--split", action="store_true", help="the dispatcher and simulator in a child process")
    ap.add_argument("--sim-process", action="store_true", help="with --split: the simulator in a third process")
    ap.add_argument("--receipt-delay", default="0.01,0.1", help="the simulator's receipt delay LO,HI in seconds")
    ap.add_argument("--idle", type=int, default=0, help="instead: this many SMPP sessions bound at once, idle")
    ap.add_argument(
        "--client-process", action="store_true", help="SMPP and CMPP: the customer's session in a process of its own"
    )
    a = ap.parse_args()
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    if a.idle:
        out = runner(_idle(a.idle))
        print(
            f"idle: {out['bound']} bound ({out['on_server']} server sessions) in {out['bind_s']:.2f}s; "
            f"RSS {out['rss_per_conn'] / 1024:.1f} KiB per connection (client sockets included)"
        )
        return
    protocols = {"both": ("smpp", "cmpp"), "all": ("smpp", "cmpp", "sgip", "smgp")}.get(a.protocol, (a.protocol,))
    rd = 0 if a.no_receipts else 1
    for protocol in protocols:
        if a.pg:
            sys.path.insert(0, str(Path(__file__).parent))
            from _harness import PostgresDb

            with PostgresDb(a.pg) as pg:
                out = runner(_run(protocol, a.count, a.window, a.timeout, rd, pg.url, a.split))
        else:
            out = runner(_run(protocol, a.count, a.window, a.timeout, rd, split=a.split))
        print(
            f"{out['protocol']}: {out['accepted']}/{out['messages']} accepted in {out['accept_s']:.2f}s "
            f"= {out['accepted_per_s']:,.0f}/s; {out['receipts']} receipts back after {out['all_receipts_s']:.2f}s"
        )
        child = (
            f"; dispatcher process {out['child_us']:,.0f} µs per message (event loop {out['child_loop_us']:,.0f})"
            if a.split
            else ""
        )
        if a.sim_process:
            child += f"; simulator process {out['sim_us']:,.0f} µs per message"
        print(f"  {out['split']}{child}; load average {os.getloadavg()[0]:.1f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
