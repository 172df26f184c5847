"""The security finding end to end: idle connections flooding the SGIP ports of a running platform must
not take the file descriptors the HTTP API in the same process needs.

The platform runs with the SGIP simulator channel; the process may open only a few more files than
it has open (RLIMIT_NOFILE lowered for the test, restored after). An attacker in a child process
opens 300 idle connections to each SGIP port (the simulator's and the SP listener the SMG connects
back to), from several source addresses. The listeners keep at most ``max_connections`` each and
close the rest at once, so /health keeps answering while the flood is held open.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
from pathlib import Path

import httpx
from conftest import TEST_COMPLIANCE, start_running

from qixin.protocols.limits import ListenerLimits
from qixin.settings import Settings

FLOOD = 300  # per port, spread over 6 source addresses (each under the per-source cap)

ATTACKER = """
import socket, sys
count = int(sys.argv[1])
held = []
for port in map(int, sys.argv[2:]):
    for i in range(count):
        s = socket.socket()
        s.bind((f"127.0.0.{2 + i % 6}", 0))
        s.connect(("127.0.0.1", port))
        held.append(s)
print("ready", flush=True)
sys.stdin.read()  # hold every connection until the test is done
"""


async def test_flooded_sgip_ports_leave_the_api_answering(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, sim_receipt_delay=(0.01, 0.05), compliance=TEST_COMPLIANCE, simulators=("sgip",)
    )
    r, server, task = await start_running(settings)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    attacker = None
    try:
        sim = r.runtime.simulators["sim-sgip"]
        channel = r.platform.channels.active["sim-sgip"]
        connector = channel.connections[0]
        gates = [sim.server.gate, connector.client.listener_gate]
        ports = [sim.port, connector.listen_port]
        cap = ListenerLimits().max_connections
        async with httpx.AsyncClient(base_url=r.base, timeout=5) as http:
            assert (await http.get("/health")).status_code == 200  # the connection is kept alive
            # room for what the caps admit on both ports plus a little, far less than the flood
            in_use = len(os.listdir("/proc/self/fd"))
            resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 2 * cap + 64, hard))
            attacker = await asyncio.create_subprocess_exec(
                sys.executable, "-c", ATTACKER, str(FLOOD), *map(str, ports),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)),  # not the attacker's limit
            )  # fmt: skip
            assert attacker.stdout is not None
            line = await asyncio.wait_for(attacker.stdout.readline(), 30)
            assert line.strip() == b"ready"
            # every connection beyond the cap was refused: wait until the listeners have seen them all
            deadline = asyncio.get_running_loop().time() + 30
            while any(g.open + g.refused < FLOOD for g in gates):
                assert asyncio.get_running_loop().time() < deadline, [(g.open, g.refused) for g in gates]
                await asyncio.sleep(0.02)
            assert all(g.open <= cap for g in gates), [g.open for g in gates]
            assert all(g.refused >= FLOOD - cap for g in gates), [g.refused for g in gates]
            # the API in the same process still answers, on its open connection and on new ones
            assert (await http.get("/health")).status_code == 200
            async with httpx.AsyncClient(base_url=r.base, timeout=5) as fresh:
                assert (await fresh.get("/health")).status_code == 200
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        if attacker is not None:
            if attacker.stdin is not None:
                attacker.stdin.close()
            try:
                await asyncio.wait_for(attacker.wait(), 10)
            except TimeoutError:
                attacker.kill()
                await attacker.wait()
        for c in r.clients:
            await c.aclose()
        server.should_exit = True
        await task
        await r.runtime.stop()
