"""What the customer-port tests share: the platform with one customer port open on a free loopback port,
raw exchanges of bytes with a port, and the garbage that every port must survive (hypothesis)."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Self

from conftest import TEST_COMPLIANCE, Running, free_port, start_running
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qixin.protocols.errors import BindError
from qixin.services.actor import Actor
from qixin.settings import Settings

PROTOCOLS = ("smpp", "cmpp", "sgip", "smgp")


async def one_port(tmp_path: Path, protocol: str, **kw: Any) -> AsyncIterator[tuple[Running, int]]:
    """The embedded platform with only ``protocol``'s customer port open; yields it and the port."""
    ports: dict[str, Any] = {f"{p}_server_port": free_port() if p == protocol else 0 for p in PROTOCOLS}
    kw = {"sim_receipt_delay": (0.01, 0.05), "compliance": TEST_COMPLIANCE, "simulators": ("smpp",),
          "port_part_timeout": 1.0, **ports, **kw}  # fmt: skip
    settings = Settings(data_dir=tmp_path, **kw)
    r, server, task = await start_running(settings)
    try:
        yield r, settings.customer_port(protocol)
    finally:
        for c in r.clients:
            await c.aclose()
        server.should_exit = True
        await task
        await r.runtime.stop()


def raw(port: int, data: bytes) -> bytes:
    """Send ``data`` on a new connection, half-close, and return whatever the port answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return out


def garbage(header: str, commands: Sequence[int], body: int = 200) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, absurd length fields, and frames of the protocol's ``header`` layout (a struct
    format: length, command id, then ones) with known and unknown ``commands`` and random bodies."""
    size = struct.calcsize(header)
    rest = (1,) * (len(header.lstrip("<>!=@")) - 2)
    return st.one_of(
        st.binary(max_size=300),
        st.builds(lambda n, b: struct.pack(">I", n) + b, st.integers(0, 2**32 - 1), st.binary(max_size=64)),
        st.builds(
            lambda cid, b: struct.pack(header, size + len(b), cid, *rest) + b,
            st.sampled_from(list(commands)),
            st.binary(max_size=body),
        ),
    )


def fuzz(port: int, frames: st.SearchStrategy[bytes], examples: int = 60) -> None:
    """Feed ``examples`` garbage connections to ``port`` (blocking: run it in a thread)."""

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(frames)
    def run(data: bytes) -> None:
        assert isinstance(raw(port, data), bytes)

    run()


async def add_login(r: Running, protocol: str, login: str, secret: str, **kw: Any) -> int:
    """A new account (100 元, 0.035 元 a part) with one direct-connection login; returns the account id."""
    api = r.account(balance_li=100_000, price_li=35)
    await r.platform.connections.add(Actor.cli(), api.account_id, protocol, login, secret, **kw)
    return api.account_id


async def billed(r: Running, account_id: int) -> list[tuple[int, int]]:
    """(parts, fee_li) of the account's messages, in the order they were accepted."""
    rows = await r.platform.db.read(
        lambda tx: tx.all("SELECT parts, fee_li FROM messages WHERE account_id = ? ORDER BY id", (account_id,))
    )
    return [(int(a), int(b)) for a, b in rows]


async def mo_to(r: Running, account_id: int, text: str, source: str = "8613900139000") -> None:
    """An MO from the SMPP simulator to the account's extension (behind the embedded channel's 10690000)."""
    ext = await r.platform.db.read(lambda tx: tx.one("SELECT code FROM extensions WHERE account_id = ?", (account_id,)))
    await r.runtime.simulator.send_mo(source, "10690000" + ext[0], text)


class Customer:
    """One of our protocol clients (``client``: a ``ProtocolClient``) as the customer's SP, collecting what
    the port delivers in ``got``."""

    client: Any

    def __init__(self) -> None:
        self.got: list[Any] = []

    async def __aenter__(self) -> Self:
        await self.client.start()
        await self.client.wait_bound(5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.stop(2)

    async def wait(self, n: int, timeout: float = 20.0) -> None:
        """Until ``n`` deliveries arrived (bounded)."""
        deadline = time.monotonic() + timeout
        while len(self.got) < n:
            assert time.monotonic() < deadline, f"only {len(self.got)} deliveries"
            await asyncio.sleep(0.02)

    async def refused(self) -> int:
        """Start, fail to bind within a second, stop: the status of the bind refusal."""
        await self.client.start()
        try:
            await self.client.wait_bound(1)
        except TimeoutError:
            pass
        else:
            raise AssertionError("the bind was accepted")
        finally:
            await self.client.stop(1)
        error = self.client.last_error
        assert isinstance(error, BindError), error
        return error.status
