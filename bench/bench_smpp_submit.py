"""SMPP submit throughput: one SmppClient connection against the SmppSimulator in another process.

    .venv/bin/python bench/bench_smpp_submit.py [-n 100000] [--window 256] [--no-receipts]

Prints submits/s (until every submit_sm_resp arrived) and receipts/s (until every receipt arrived).
"""

from __future__ import annotations

import asyncio

from _submit_bench import CONTENT, Receipts, arg_parser, simulator_process, submit_all

from qixin.gateway.simulators.smpp import SimulatorConfig, SmppSimulator
from qixin.protocols.smpp.client import SmppClient
from qixin.protocols.smpp.codec import SubmitSm


async def _bench(port: int, n: int, window: int, receipts: bool) -> None:
    counter = Receipts(n)
    client = SmppClient("127.0.0.1", port, "bench", "pw", window=window, on_deliver=counter)
    await client.start()
    await client.wait_bound(10)

    def pdu(i: int) -> SubmitSm:
        return SubmitSm(
            source_addr="10690001",
            destination_addr=f"86138{i % 100000000:08d}",
            registered_delivery=1 if receipts else 0,
            short_message=CONTENT,
        )

    run = await submit_all(client, pdu, n, "command_status")
    print(f"{run.summary()} (window {window})")
    if receipts:
        print(await counter.wait(run.t0, "receipts", "receipts"))
    await client.stop()


def main() -> None:
    args = arg_parser(256).parse_args()
    with simulator_process(SmppSimulator, SimulatorConfig, not args.no_receipts) as (port, _pid):
        asyncio.run(_bench(port, args.n, args.window, not args.no_receipts))


if __name__ == "__main__":
    main()
