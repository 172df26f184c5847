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

from _submit_bench import CONTENT, Receipts, arg_parser, simulator_process, submit_all

from qixin.gateway.simulators.cmpp import CmppSimulator, SimulatorConfig
from qixin.protocols.cmpp.client import CmppClient
from qixin.protocols.cmpp.codec import Submit

_INDENT = " " * 18


async def _bench(port: int, n: int, window: int, version: int, receipts: bool, sim_pid: int | None = None) -> None:
    counter = Receipts(n)
    client = CmppClient("127.0.0.1", port, "901234", "secret", version=version, window=window, on_deliver=counter)
    await client.start()
    await client.wait_bound(10)

    def pdu(i: int) -> Submit:
        return Submit(
            registered_delivery=1 if receipts else 0,
            service_id="MJS0019905",
            msg_src="901234",
            fee_user_type=2,
            fee_type="01",
            fee_code="000000",
            src_id="1065800",
            dest_terminal_ids=(f"138{i % 100000000:08d}",),
            msg_content=CONTENT,
        )

    run = await submit_all(client, pdu, n, "result", sim_pid)
    print(f"CMPP 0x{version:02X} window {window:4d}: {run.summary()}")
    if receipts:
        print(_INDENT + await counter.wait(run.t0, "status reports", "reports"))
    cpu, sim_cpu = run.cpu()
    line = f"{_INDENT}CPU per submit: client {cpu / n * 1e6:.1f} us"
    if sim_cpu is not None:
        line += f", simulator {sim_cpu / n * 1e6:.1f} us; CPU-bound rate {n / max(cpu, sim_cpu):,.0f}/s"
    print(line)
    await client.stop()


def _version_option(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--version", type=lambda s: int(s, 16), default=0x30, help="30 or 20 (hex)")


def main() -> None:
    args = arg_parser([16, 256], _version_option).parse_args()
    with simulator_process(CmppSimulator, SimulatorConfig, not args.no_receipts) as (port, pid):
        for window in args.window:
            asyncio.run(_bench(port, args.n, window, args.version, not args.no_receipts, pid))


if __name__ == "__main__":
    main()
