"""Customer ports: one SMPP session's (and one CMPP session's) submits accepted per second — checked,
billed, stored by the same accept use case as POST /v1/sms — with a receipt back for every submit.

The platform runs in this process (embedded roles, SQLite in a temporary directory, the SMPP simulator
as the channel, sending windows off); the customer is one session of our own protocol engine on
loopback, pipelining ``--window`` submits. The client shares the event loop with the platform, so the
figure is a lower bound of what a separate client would see. Bounded: ``--count`` messages (default
20,000) and ``--timeout`` seconds for the receipts.

    .venv/bin/python bench/bench_ports.py [--count 20000] [--window 256] [--protocol smpp|cmpp|both]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from qixin.app import api_only, build, embedded
from qixin.protocols.cmpp.codec import VERSION_30, CmppCodec, Connect, Submit, cmpp_authenticator_source
from qixin.protocols.cmpp.text import encode_text
from qixin.protocols.session import Session
from qixin.protocols.smpp.codec import BindTransceiver, SmppCodec, SubmitSm
from qixin.services.accounts import create_account
from qixin.services.actor import Actor
from qixin.settings import ComplianceSettings, Settings

ACCEPT_ONLY = "--accept-only" in sys.argv


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


async def _run(
    protocol: str, count: int, window: int, timeout: float, rd: int = 1, database_url: str = ""
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="qixin-bench-ports-"))
    smpp_port, cmpp_port = _free_port(), _free_port()
    settings = Settings(
        data_dir=tmp, database_url=database_url, simulators=("smpp",), sim_receipt_delay=(0.01, 0.1),
        smpp_server_port=smpp_port,
        cmpp_server_port=cmpp_port, port_window=window, compliance=ComplianceSettings(sending_windows=False),
    )  # fmt: skip
    platform = build(settings)
    runtime = api_only(platform) if rd == 0 and ACCEPT_ONLY else embedded(platform)
    await runtime.start()
    try:
        acct = await platform.db.write(
            lambda tx: create_account(tx, "bench", "企信", 10**12, 35, box=platform.directory.box)
        )
        login = "bench01" if protocol == "smpp" else "900001"
        await platform.connections.add(Actor.cli(), acct["account_id"], protocol, login, "benchpw")
        receipts: list[Any] = []
        numbers = _numbers(count)
        if protocol == "smpp":
            codec: Any = SmppCodec()
            s = await _client(codec, smpp_port, receipts, window)
            resp = await (await s.request(BindTransceiver(system_id=login, password="benchpw")))
            assert resp.command_status == 0, resp

            def make(n: str) -> Any:
                return SubmitSm(source_addr="1069", destination_addr=n, short_message=b"hello", registered_delivery=rd)

            def ok(r: Any) -> bool:
                return int(r.command_status) == 0
        else:
            codec = CmppCodec(VERSION_30)
            s = await _client(codec, cmpp_port, receipts, window)
            ts = time.strftime("%m%d%H%M%S")
            auth = cmpp_authenticator_source(login, "benchpw", ts)
            resp = await (await s.request(Connect(source_addr=login, authenticator=auth, version=VERSION_30,
                                                   timestamp=int(ts))))  # fmt: skip
            assert resp.status == 0, resp
            fmt, contents, _ = encode_text("hello", 1)

            def make(n: str) -> Any:
                return Submit(registered_delivery=rd, msg_fmt=fmt, src_id="1069", dest_terminal_ids=(n,),
                              msg_content=contents[0], msg_src=login)  # fmt: skip

            def ok(r: Any) -> bool:
                return int(r.result) == 0

        s.mark_bound()
        # the signature comes from the account's only approved one ("企信")
        t0 = time.perf_counter()
        futs = [await s.request(make(n)) for n in numbers]
        resps = await asyncio.gather(*futs)
        t1 = time.perf_counter()
        accepted = sum(1 for r in resps if ok(r))
        deadline = time.monotonic() + timeout
        while rd and len(receipts) < accepted and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        t2 = time.perf_counter()
        await s.close(2)
        return {
            "protocol": protocol, "messages": count, "accepted": accepted, "accept_s": t1 - t0,
            "accepted_per_s": accepted / (t1 - t0), "receipts": len(receipts), "all_receipts_s": t2 - t0,
        }  # fmt: skip
    finally:
        await runtime.stop()


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--protocol", choices=("smpp", "cmpp", "both"), default="both")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--no-receipts", action="store_true", help="submits ask for no receipt")
    ap.add_argument("--accept-only", action="store_true", help="with --no-receipts: no dispatcher (qixin api roles)")
    ap.add_argument(
        "--pg", default="", help="PostgreSQL server (postgresql://postgres@127.0.0.1:5432): a fresh database"
    )
    ap.add_argument("--idle", type=int, default=0, help="instead: this many SMPP sessions bound at once, idle")
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
    for protocol in ("smpp", "cmpp") if a.protocol == "both" else (a.protocol,):
        if a.pg:
            sys.path.insert(0, str(Path(__file__).parent))
            from _harness import PostgresDb

            with PostgresDb(a.pg) as pg:
                out = runner(_run(protocol, a.count, a.window, a.timeout, 0 if a.no_receipts else 1, pg.url))
        else:
            out = runner(_run(protocol, a.count, a.window, a.timeout, 0 if a.no_receipts else 1))
        print(
            f"{out['protocol']}: {out['accepted']}/{out['messages']} accepted in {out['accept_s']:.2f}s "
            f"= {out['accepted_per_s']:,.0f}/s; {out['receipts']} receipts back after {out['all_receipts_s']:.2f}s"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
