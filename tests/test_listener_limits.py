"""Listener hardening, over real loopback TCP: every TCP server the package ships (the four carrier
simulators and the SGIP SP listener) closes connections that never log in, drops slowloris frames,
refuses connections beyond its caps while honest sessions keep working, and closes on absurd lengths.

Every wait is on a condition with a deadline (reading until EOF, a counter reaching a value).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from qixin.gateway.simulators.cmpp import CmppSimulator
from qixin.gateway.simulators.cmpp import SimulatorConfig as CmppConfig
from qixin.gateway.simulators.sgip import SgipSimulator, SgipSimulatorConfig
from qixin.gateway.simulators.smgp import SimulatorConfig as SmgpConfig
from qixin.gateway.simulators.smgp import SmgpSimulator
from qixin.gateway.simulators.smpp import SimulatorConfig as SmppConfig
from qixin.gateway.simulators.smpp import SmppSimulator
from qixin.protocols.cmpp import codec as cm
from qixin.protocols.cmpp.client import CmppClient
from qixin.protocols.limits import ConnectionGate, ListenerLimits
from qixin.protocols.sgip import codec as sg
from qixin.protocols.sgip.client import SgipClient
from qixin.protocols.smgp import codec as sm
from qixin.protocols.smgp.client import SmgpClient
from qixin.protocols.smpp import codec as sp
from qixin.protocols.smpp.client import SmppClient

SERVERS = ["smpp", "cmpp", "sgip", "smgp", "sgip-sp-listener"]
SIMULATORS = ["smpp", "cmpp", "sgip", "smgp"]
NODE = 3010012345


async def _until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@dataclass
class Listener:
    kind: str
    port: int
    gate: ConnectionGate
    sim: Any
    client: Any  # an honest client bound to the simulator (None until ``honest`` ran)


def _config(kind: str, limits: ListenerLimits) -> Any:
    fast = {"receipt_delay": (0.0, 0.01), "limits": limits}
    if kind == "smpp":
        return SmppSimulator(config=SmppConfig(**fast), seed=1)
    if kind == "cmpp":
        return CmppSimulator(config=CmppConfig(accounts={"901234": "secret"}, **fast), seed=1)
    if kind == "sgip":
        return SgipSimulator(config=SgipSimulatorConfig(**fast), seed=1)
    return SmgpSimulator(config=SmgpConfig(accounts={"acme0001": "s3cret"}, **fast), seed=1)


def _client(kind: str, port: int, **kw: Any) -> Any:
    if kind == "smpp":
        return SmppClient("127.0.0.1", port, "acme", "pw")
    if kind == "cmpp":
        return CmppClient("127.0.0.1", port, "901234", "secret")
    if kind == "sgip":
        return SgipClient("127.0.0.1", port, "sp1", "pw", node_id=NODE, **kw)
    return SmgpClient("127.0.0.1", port, "acme0001", "s3cret")


def _submit(kind: str) -> Any:
    if kind == "smpp":
        return sp.SubmitSm(source_addr="10690001", destination_addr="8613800000001", short_message=b"hi")
    if kind == "cmpp":
        return cm.Submit(msg_src="901234", src_id="1065800", dest_terminal_ids=("13800000001",), msg_content=b"hi")
    if kind == "sgip":
        return sg.Submit(
            sp_number="1065500001", charge_number="0" * 21, user_numbers=("8613000000001",), message_content=b"hi"
        )
    return sm.Submit(service_id="SVC", src_term_id="10690001", dest_term_ids=("18900000001",), msg_content=b"hi")


def _accepted(kind: str, resp: Any) -> bool:
    if kind == "smpp":
        return bool(resp.command_status == sp.ESME_ROK)
    if kind == "smgp":
        return bool(resp.status == 0)
    return bool(resp.result == 0)


@asynccontextmanager
async def listening(kind: str, limits: ListenerLimits) -> AsyncIterator[Listener]:
    """A server of ``kind`` held to ``limits``; for the SGIP SP listener, an SP client whose listener has them."""
    if kind == "sgip-sp-listener":
        sim = SgipSimulator(config=SgipSimulatorConfig(receipt_delay=(0.0, 0.01)), seed=1)
        port = await sim.start()
        client = SgipClient("127.0.0.1", port, "sp1", "pw", node_id=NODE, listener_limits=limits)
        await client.start()
        sim.register_sp("sp1", "127.0.0.1", client.listen_port)
        try:
            yield Listener(kind, client.listen_port, client.listener_gate, sim, client)
        finally:
            await client.stop()
            await sim.stop()
        return
    sim = _config(kind, limits)
    port = await sim.start()
    lst = Listener(kind, port, sim.server.gate, sim, None)
    try:
        yield lst
    finally:
        if lst.client is not None:
            await lst.client.stop()
        await sim.stop()


async def honest(lst: Listener) -> None:
    """Bind an honest session on the listener: a client of its protocol, or for the SP listener the
    SMG's connect-back (brought about by a submit whose report it delivers)."""
    if lst.client is None:
        kind = lst.kind
        lst.client = _client(kind, lst.port)
        await lst.client.start()
        if kind == "sgip":
            lst.sim.register_sp("sp1", "127.0.0.1", lst.client.listen_port)
    await lst.client.wait_bound(5)
    if lst.kind == "sgip-sp-listener":
        await submit_ok(lst)
        await _until(lambda: lst.client.smg_binds == 1 and lst.sim.stats.receipts_pending == 0)
    assert lst.gate.open == 1


def still_bound(lst: Listener) -> bool:
    """Whether the honest session of ``honest`` is still the bound one it was."""
    if lst.kind == "sgip-sp-listener":
        return lst.client.smg_binds == 1 and any(s.bound for s in lst.client.listener_sessions)
    return bool(lst.client.bound and lst.client.binds == 1)


async def submit_ok(lst: Listener) -> None:
    kind = "sgip" if lst.kind == "sgip-sp-listener" else lst.kind
    resp = await asyncio.wait_for(await lst.client.submit(_submit(kind)), 5)
    assert _accepted(kind, resp)


async def raw(port: int, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A plain TCP connection from ``source`` (any 127/8 address works on loopback)."""
    sock = socket.socket()
    sock.bind((source, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return await asyncio.open_connection(sock=sock)


async def read_to_eof(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """Everything the server sends until it closes (a reset counts as closed); AssertionError if it
    is still open after ``timeout`` seconds."""

    async def drain() -> bytes:
        got = b""
        try:
            while chunk := await reader.read(4096):
                got += chunk
        except ConnectionResetError:
            pass
        return got

    try:
        return await asyncio.wait_for(drain(), timeout)
    except TimeoutError:
        raise AssertionError(f"connection still open after {timeout}s") from None


# -- login timeout --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SERVERS)
async def test_connection_that_never_logs_in_is_closed_after_the_login_timeout(kind: str) -> None:
    async with listening(kind, ListenerLimits(login_timeout=0.3)) as lst:
        await honest(lst)  # bound before the timeout expires for it: the timer must not touch it
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        reader, writer = await raw(lst.port)
        await _until(lambda: lst.gate.open >= 2)
        await read_to_eof(reader, 5.0)
        assert loop.time() - t0 >= 0.25  # the timeout, not an immediate refusal
        writer.close()
        await _until(lambda: lst.gate.open == 1)  # its place is given back
        assert still_bound(lst)  # the honest session outlived the timeout
        await submit_ok(lst)


# -- slowloris -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SERVERS)
async def test_slowloris_frame_is_dropped_at_the_frame_deadline(kind: str) -> None:
    async with listening(kind, ListenerLimits(login_timeout=60.0, frame_timeout=0.3)) as lst:
        await honest(lst)
        loop = asyncio.get_running_loop()
        reader, writer = await raw(lst.port)
        declared = 4000  # a plausible length, then one byte at a time
        sent = 0

        async def trickle() -> None:
            nonlocal sent
            writer.write(struct.pack(">I", declared))
            sent = 4
            while sent < declared:
                await asyncio.sleep(0.02)  # pacing the attack, not waiting for a result
                writer.write(b"\x00")
                sent += 1

        t0 = loop.time()
        task = asyncio.create_task(trickle())
        try:
            await read_to_eof(reader, 5.0)
        finally:
            task.cancel()
            writer.close()
        assert loop.time() - t0 >= 0.25
        assert sent < declared  # dropped mid-frame, long before the frame could complete
        await _until(lambda: lst.gate.open == 1)
        await submit_ok(lst)


async def test_frames_arriving_in_pieces_within_the_deadline_are_fine() -> None:
    async with listening("smpp", ListenerLimits(frame_timeout=0.5)) as lst:
        reader, writer = await raw(lst.port)
        frame = sp.encode_pdu(sp.EnquireLink(sequence=9))
        for i in range(0, len(frame), 3):  # a real client's frame split over several segments
            writer.write(frame[i : i + 3])
            await writer.drain()
        resp = sp.decode_pdu(await asyncio.wait_for(reader.readexactly(16), 5))
        assert resp.command_id == sp.ENQUIRE_LINK_RESP and resp.sequence == 9
        writer.close()


# -- connection caps ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SERVERS)
async def test_connections_beyond_the_caps_are_closed_at_once_and_honest_sessions_go_on(kind: str) -> None:
    limits = ListenerLimits(login_timeout=60.0, max_connections=6, max_per_source=3)
    async with listening(kind, limits) as lst:
        await honest(lst)  # one connection from 127.0.0.1
        base = lst.gate.open
        idle = [await raw(lst.port, "127.0.0.2") for _ in range(3)]
        await _until(lambda: lst.gate.by_source.get("127.0.0.2") == 3)
        # per source: the 4th from 127.0.0.2 is closed at once (well before any timeout)
        r4, w4 = await raw(lst.port, "127.0.0.2")
        await read_to_eof(r4, 2.0)
        w4.close()
        # in total: fill up from other sources, then the next one is closed at once
        more = [await raw(lst.port, f"127.0.0.{3 + i}") for i in range(limits.max_connections - base - 3)]
        await _until(lambda: lst.gate.open == limits.max_connections)
        flood = [await raw(lst.port, "127.0.1.1") for _ in range(20)]
        for r, w in flood:
            await read_to_eof(r, 2.0)
            w.close()
        assert lst.gate.open == limits.max_connections  # never above the cap
        assert lst.gate.refused == 21
        # the admitted idle connections are still open, the honest session still works
        assert all(not r.at_eof() for r, _ in idle + more)
        await submit_ok(lst)
        assert still_bound(lst)
        for _, w in idle + more:
            w.close()
        await _until(lambda: lst.gate.open == base)
        # places are given back: a new connection from the capped source is admitted again
        _, w5 = await raw(lst.port, "127.0.0.2")
        await _until(lambda: lst.gate.by_source.get("127.0.0.2") == 1)
        w5.close()


# -- absurd lengths -----------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 2**31])
@pytest.mark.parametrize("kind", SERVERS)
async def test_absurd_length_closes_the_connection(kind: str, length: int) -> None:
    async with listening(kind, ListenerLimits()) as lst:
        reader, writer = await raw(lst.port)
        # length, a request's command id, status / filler, sequence 7
        writer.write(struct.pack(">IIII", length, 0x00000004, 0, 7) + b"\x00" * 8)
        got = await read_to_eof(reader, 5.0)
        writer.close()
        if kind == "smpp":  # the protocol's answer: generic_nack, command length invalid
            nack = sp.decode_pdu(got[:16])
            assert nack.command_id == sp.GENERIC_NACK
            assert nack.command_status == sp.ESME_RINVCMDLEN and nack.sequence == 7
        else:
            assert got == b""  # CMPP, SGIP and SMGP have no answer to a frame they cannot read
        await _until(lambda: lst.gate.open == 0)


async def test_max_frame_lowers_the_protocol_maximum() -> None:
    async with listening("smpp", ListenerLimits(max_frame=512)) as lst:
        reader, writer = await raw(lst.port)
        writer.write(struct.pack(">IIII", 1000, sp.SUBMIT_SM, 0, 3))  # fine for SMPP, too big here
        nack = sp.decode_pdu((await read_to_eof(reader, 5.0))[:16])
        writer.close()
        assert nack.command_id == sp.GENERIC_NACK and nack.command_status == sp.ESME_RINVCMDLEN
        assert nack.sequence == 3


def test_limits_reject_negative_values() -> None:
    with pytest.raises(ValueError):
        ListenerLimits(max_per_source=-1)
