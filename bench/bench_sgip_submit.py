"""SGIP 1.2 submit throughput: one SgipClient connection against the SgipSimulator in another process.

    .venv/bin/python bench/bench_sgip_submit.py [-n 100000] [--window 16] [--no-receipts]

Prints submits/s (until every Submit_Resp arrived), the client's CPU time per submit (a figure that
does not depend on what else the machine runs) and reports/s (until every Report arrived at the SP's
listener, over the connection the simulator opened back to it).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import time

from qixin.gateway.simulators.sgip import SgipSimulator, SgipSimulatorConfig
from qixin.protocols.sgip.client import SgipClient
from qixin.protocols.sgip.codec import Submit


def _use_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def _cpu_seconds(pid: int) -> float | None:
    """user + system CPU seconds of process ``pid`` (Linux /proc; None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _serve(port_q: mp.Queue, listen_q: mp.Queue, receipts: bool) -> None:
    _use_uvloop()

    async def main() -> None:
        sim = SgipSimulator(config=SgipSimulatorConfig(receipt_delay=(0.05, 0.2), receipts=receipts, window=512))
        port_q.put(await sim.start())
        listen_port = await asyncio.get_running_loop().run_in_executor(None, listen_q.get)
        sim.register_sp("bench", "127.0.0.1", listen_port)
        await asyncio.Event().wait()

    asyncio.run(main())


async def _bench(port: int, listen_q: mp.Queue, n: int, window: int, receipts: bool, sim_pid: int) -> None:
    got = 0
    done = asyncio.Event()

    def on_deliver(pdu: object) -> None:
        nonlocal got
        got += 1
        if got >= n:
            done.set()

    client = SgipClient("127.0.0.1", port, "bench", "pw", node_id=3010012345, window=window, on_deliver=on_deliver)
    await client.start()
    listen_q.put(client.listen_port)
    await client.wait_bound(10)
    t0 = time.perf_counter()
    c0 = time.process_time()
    s0 = _cpu_seconds(sim_pid)
    futs = []
    for i in range(n):
        pdu = Submit(
            sp_number="1065500001",
            charge_number="0" * 21,
            user_numbers=(f"86130{i % 100000000:08d}",),
            corp_id="12345",
            report_flag=1 if receipts else 2,
            message_content=b"Your verification code is 123456",
        )
        futs.append(await client.submit(pdu))
    resps = await asyncio.gather(*futs)
    t1 = time.perf_counter()
    cpu = time.process_time() - c0
    s1 = _cpu_seconds(sim_pid)
    ok = sum(1 for r in resps if r.result == 0)
    print(f"submitted {n} ({ok} accepted) in {t1 - t0:.2f}s: {n / (t1 - t0):,.0f} submits/s (window {window})")
    print(f"client CPU {cpu:.2f}s: {cpu / n * 1e6:.1f} us per submit (including the reports received meanwhile)")
    if s0 is not None and s1 is not None:
        print(f"simulator CPU {s1 - s0:.2f}s: {(s1 - s0) / n * 1e6:.1f} us per submit (including its reports)")
    if receipts:
        await asyncio.wait_for(done.wait(), 120)
        t2 = time.perf_counter()
        print(f"received {got} reports in {t2 - t0:.2f}s: {got / (t2 - t0):,.0f} reports/s")
    await client.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100_000)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--no-receipts", action="store_true")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    lq: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(q, lq, not args.no_receipts), daemon=True)
    proc.start()
    try:
        port = q.get(timeout=30)
        loop_name = _use_uvloop()
        print(f"event loop: {loop_name}; simulator pid {proc.pid} on port {port}")
        asyncio.run(_bench(port, lq, args.n, args.window, not args.no_receipts, proc.pid or 0))
    finally:
        proc.terminate()
        proc.join(5)


if __name__ == "__main__":
    main()
