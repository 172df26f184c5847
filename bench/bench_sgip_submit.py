"""SGIP 1.2 submit throughput: one SgipClient connection against the SgipSimulator in another process.

    .venv/bin/python bench/bench_sgip_submit.py [-n 100000] [--window 16] [--no-receipts]

Prints submits/s (until every Submit_Resp arrived), the client's CPU time per submit (a figure that
does not depend on what else the machine runs) and reports/s (until every Report arrived at the SP's
listener, over the connection the simulator opened back to it).
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing as mp

from _submit_bench import CONTENT, Receipts, arg_parser, simulator_process, submit_all

from qixin.gateway.simulators.sgip import SgipSimulator, SgipSimulatorConfig
from qixin.protocols.sgip.client import SgipClient
from qixin.protocols.sgip.codec import Submit


async def _register_sp(listen_q: mp.Queue, sim: SgipSimulator) -> None:
    """In the simulator process: deliver to the SP's listener once the bench tells its port."""
    listen_port = await asyncio.get_running_loop().run_in_executor(None, listen_q.get)
    sim.register_sp("bench", "127.0.0.1", listen_port)


async def _bench(port: int, listen_q: mp.Queue, n: int, window: int, receipts: bool, sim_pid: int | None) -> None:
    counter = Receipts(n)
    client = SgipClient("127.0.0.1", port, "bench", "pw", node_id=3010012345, window=window, on_deliver=counter)
    await client.start()
    listen_q.put(client.listen_port)
    await client.wait_bound(10)

    def pdu(i: int) -> Submit:
        return Submit(
            sp_number="1065500001",
            charge_number="0" * 21,
            user_numbers=(f"86130{i % 100000000:08d}",),
            corp_id="12345",
            report_flag=1 if receipts else 2,
            message_content=CONTENT,
        )

    run = await submit_all(client, pdu, n, "result", sim_pid)
    cpu, sim_cpu = run.cpu()
    print(f"{run.summary()} (window {window})")
    print(f"client CPU {cpu:.2f}s: {cpu / n * 1e6:.1f} us per submit (including the reports received meanwhile)")
    if sim_cpu is not None:
        print(f"simulator CPU {sim_cpu:.2f}s: {sim_cpu / n * 1e6:.1f} us per submit (including its reports)")
    if receipts:
        print(await counter.wait(run.t0, "reports", "reports"))
    await client.stop()


def main() -> None:
    args = arg_parser(256).parse_args()
    lq: mp.Queue = mp.get_context("spawn").Queue()
    ready = functools.partial(_register_sp, lq)
    with simulator_process(SgipSimulator, SgipSimulatorConfig, not args.no_receipts, ready) as (port, pid):
        asyncio.run(_bench(port, lq, args.n, args.window, not args.no_receipts, pid))


if __name__ == "__main__":
    main()
