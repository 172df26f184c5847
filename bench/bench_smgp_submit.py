"""SMGP 3.0 submit throughput: one SmgpClient connection against the SmgpSimulator in another process.

    .venv/bin/python bench/bench_smgp_submit.py [-n 100000] [--window 16] [--no-receipts]

Prints submits/s (until every Submit_Resp arrived) and reports/s (until every status report arrived).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import time

from qixin.gateway.simulators.smgp import SimulatorConfig, SmgpSimulator
from qixin.protocols.smgp.client import SmgpClient
from qixin.protocols.smgp.codec import TAG_PK_NUMBER, TAG_PK_TOTAL, Deliver, Submit, tlv_u8


def _use_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def _serve(port_q: mp.Queue, receipts: bool) -> None:
    _use_uvloop()

    async def main() -> None:
        sim = SmgpSimulator(config=SimulatorConfig(receipt_delay=(0.05, 0.2), receipts=receipts, window=512))
        port_q.put(await sim.start())
        await asyncio.Event().wait()

    asyncio.run(main())


async def _bench(port: int, n: int, window: int, receipts: bool) -> None:
    got = 0
    done = asyncio.Event()

    def on_deliver(d: Deliver) -> None:
        nonlocal got
        got += 1
        if got >= n:
            done.set()

    client = SmgpClient("127.0.0.1", port, "bench", "pw", window=window, on_deliver=on_deliver)
    await client.start()
    await client.wait_bound(10)
    tlvs = (tlv_u8(TAG_PK_TOTAL, 1), tlv_u8(TAG_PK_NUMBER, 1))
    t0 = time.perf_counter()
    futs = []
    for i in range(n):
        pdu = Submit(
            need_report=1 if receipts else 0,
            service_id="QXTZ",
            src_term_id="1069000188",
            dest_term_ids=(f"189{i % 100000000:08d}",),
            msg_content=b"Your verification code is 123456",
            tlvs=tlvs,
        )
        futs.append(await client.submit(pdu))
    resps = await asyncio.gather(*futs)
    t1 = time.perf_counter()
    ok = sum(1 for r in resps if r.status == 0)
    print(f"submitted {n} ({ok} accepted) in {t1 - t0:.2f}s: {n / (t1 - t0):,.0f} submits/s (window {window})")
    if receipts:
        await asyncio.wait_for(done.wait(), 120)
        t2 = time.perf_counter()
        print(f"received {got} reports in {t2 - t0:.2f}s: {got / (t2 - t0):,.0f} reports/s")
    await client.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100_000)
    ap.add_argument("--window", type=int, default=16)
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
        asyncio.run(_bench(port, args.n, args.window, not args.no_receipts))
    finally:
        proc.terminate()
        proc.join(5)


if __name__ == "__main__":
    main()
