"""CMPP submit throughput: one CmppClient connection against the CmppSimulator in another process.

    .venv/bin/python bench/bench_cmpp_submit.py [-n 100000] [--window 16 256] [--version 30] [--no-receipts]

For each window size, prints submits/s (until every SUBMIT_RESP arrived) and status reports/s (until
every report arrived). The simulator process stays up across the runs; each run binds a new client.

It also prints the CPU time each process spent per submit (client from ``time.process_time``, the
simulator from /proc on Linux) and the rate the busier process alone would allow ("CPU-bound"): on a
shared or small machine the wall-clock rate mostly measures contention, the CPU figures do not.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import time

from qixin.gateway.simulators.cmpp import CmppSimulator, SimulatorConfig
from qixin.protocols.cmpp.client import CmppClient
from qixin.protocols.cmpp.codec import Deliver, Submit


def _use_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def _proc_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` (Linux /proc), or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _serve(port_q: mp.Queue, receipts: bool) -> None:
    _use_uvloop()

    async def main() -> None:
        sim = CmppSimulator(config=SimulatorConfig(receipt_delay=(0.05, 0.2), receipts=receipts, window=512))
        port_q.put(await sim.start())
        await asyncio.Event().wait()

    asyncio.run(main())


async def _bench(port: int, n: int, window: int, version: int, receipts: bool, sim_pid: int | None = None) -> None:
    got = 0
    done = asyncio.Event()

    def on_deliver(d: Deliver) -> None:
        nonlocal got
        got += 1
        if got >= n:
            done.set()

    client = CmppClient("127.0.0.1", port, "901234", "secret", version=version, window=window, on_deliver=on_deliver)
    await client.start()
    await client.wait_bound(10)
    content = b"Your verification code is 123456"
    c0 = time.process_time()
    s0 = _proc_cpu(sim_pid)
    t0 = time.perf_counter()
    futs = []
    for i in range(n):
        pdu = Submit(
            registered_delivery=1 if receipts else 0,
            service_id="MJS0019905",
            msg_src="901234",
            fee_user_type=2,
            fee_type="01",
            fee_code="000000",
            src_id="1065800",
            dest_terminal_ids=(f"138{i % 100000000:08d}",),
            msg_content=content,
        )
        futs.append(await client.submit(pdu))
    resps = await asyncio.gather(*futs)
    t1 = time.perf_counter()
    ok = sum(1 for r in resps if r.result == 0)
    print(
        f"CMPP 0x{version:02X} window {window:4d}: submitted {n} ({ok} accepted) in {t1 - t0:.2f}s:"
        f" {n / (t1 - t0):,.0f} submits/s"
    )
    if receipts:
        await asyncio.wait_for(done.wait(), 120)
        t2 = time.perf_counter()
        print(f"                  received {got} status reports in {t2 - t0:.2f}s: {got / (t2 - t0):,.0f} reports/s")
    c1 = time.process_time() - c0
    s1 = _proc_cpu(sim_pid)
    line = f"                  CPU per submit: client {c1 / n * 1e6:.1f} us"
    if s0 is not None and s1 is not None:
        sim_cpu = s1 - s0
        line += f", simulator {sim_cpu / n * 1e6:.1f} us; CPU-bound rate {n / max(c1, sim_cpu):,.0f}/s"
    print(line)
    await client.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100_000)
    ap.add_argument("--window", type=int, nargs="+", default=[16, 256])
    ap.add_argument("--version", type=lambda s: int(s, 16), default=0x30, help="30 or 20 (hex)")
    ap.add_argument("--no-receipts", action="store_true")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(q, not args.no_receipts), daemon=True)
    proc.start()
    try:
        port = q.get(timeout=30)
        loop_name = _use_uvloop()
        print(f"event loop: {loop_name}; simulator pid {proc.pid} on port {port}")
        for window in args.window:
            asyncio.run(_bench(port, args.n, window, args.version, not args.no_receipts, proc.pid))
    finally:
        proc.terminate()
        proc.join(5)


if __name__ == "__main__":
    main()
