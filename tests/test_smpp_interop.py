"""Interop: the independent `smpplib` client (PyPI) against our SMSC simulator / server side."""

from __future__ import annotations

import asyncio

import smpplib.client
import smpplib.consts

from qixin.gateway.simulators.smpp import SimulatorConfig, SmppSimulator


def _smpplib_session(port: int) -> dict:
    out: dict = {"resps": [], "receipts": []}
    client = smpplib.client.Client("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)
    client.set_message_sent_handler(lambda pdu: out["resps"].append(pdu))
    client.set_message_received_handler(lambda pdu: out["receipts"].append(pdu))
    client.connect()
    try:
        client.bind_transceiver(system_id="interop", password="secret")
        client.send_message(
            source_addr_ton=smpplib.consts.SMPP_TON_INTL,
            source_addr="10690001",
            dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
            destination_addr="8613800138000",
            short_message=b"hello from smpplib",
            registered_delivery=True,
        )
        while not (out["resps"] and out["receipts"]):
            client.read_once()
        client.unbind()
    finally:
        client.disconnect()
    return out


async def test_smpplib_binds_submits_and_gets_receipt():
    sim = SmppSimulator(config=SimulatorConfig(receipt_delay=(0.01, 0.02), accounts={"interop": "secret"}))
    port = await sim.start()
    try:
        out = await asyncio.wait_for(asyncio.to_thread(_smpplib_session, port), 20)
    finally:
        await sim.stop()
    (resp,) = out["resps"]
    message_id = resp.message_id.decode() if isinstance(resp.message_id, bytes) else resp.message_id
    assert resp.status == 0 and message_id
    (receipt,) = out["receipts"]
    text = receipt.short_message.decode()
    assert text.startswith(f"id:{message_id} ") and "stat:" in text
    assert sim.stats.binds == 1 and sim.stats.submits == 1
