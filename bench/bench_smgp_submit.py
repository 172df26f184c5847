"""SMGP 3.0 submit throughput: one SmgpClient connection against the SmgpSimulator in another process.

    .venv/bin/python bench/bench_smgp_submit.py [-n 100000] [--window 16] [--no-receipts]

Prints submits/s (until every Submit_Resp arrived) and reports/s (until every status report arrived).
"""

from __future__ import annotations

import asyncio

from _submit_bench import CONTENT, Receipts, arg_parser, simulator_process, submit_all

from qixin.gateway.simulators.smgp import SimulatorConfig, SmgpSimulator
from qixin.protocols.smgp.client import SmgpClient
from qixin.protocols.smgp.codec import TAG_PK_NUMBER, TAG_PK_TOTAL, Submit, tlv_u8


async def _bench(port: int, n: int, window: int, receipts: bool) -> None:
    counter = Receipts(n)
    client = SmgpClient("127.0.0.1", port, "bench", "pw", window=window, on_deliver=counter)
    await client.start()
    await client.wait_bound(10)
    tlvs = (tlv_u8(TAG_PK_TOTAL, 1), tlv_u8(TAG_PK_NUMBER, 1))

    def pdu(i: int) -> Submit:
        return Submit(
            need_report=1 if receipts else 0,
            service_id="QXTZ",
            src_term_id="1069000188",
            dest_term_ids=(f"189{i % 100000000:08d}",),
            msg_content=CONTENT,
            tlvs=tlvs,
        )

    run = await submit_all(client, pdu, n, "status")
    print(f"{run.summary()} (window {window})")
    if receipts:
        print(await counter.wait(run.t0, "reports", "reports"))
    await client.stop()


def main() -> None:
    args = arg_parser(16).parse_args()
    with simulator_process(SmgpSimulator, SimulatorConfig, not args.no_receipts) as (port, _pid):
        asyncio.run(_bench(port, args.n, args.window, not args.no_receipts))


if __name__ == "__main__":
    main()
