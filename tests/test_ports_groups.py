"""How the customer ports batch their work (services/ports.py ``PortDesk``), on the embedded platform with
a real database: single-part submits of one login and text arriving while the accepts of their key are
in flight gather into ONE next group (one accept call), and a burst of submits arriving after the login's
memo expired is one directory lookup, not one per submit, with none of them waiting for it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from _ports import billed, one_port
from conftest import Running

from qixin.services.actor import Actor
from qixin.services.connections import Connection, ConnectionDirectory
from qixin.services.ports import PortDesk, Segment

LOGIN, SECRET = "grp01", "grp-pw"


@pytest.fixture
async def ports(tmp_path: Path) -> AsyncIterator[tuple[Running, int]]:
    async for out in one_port(tmp_path, "smpp"):
        yield out


class CountingDirectory(ConnectionDirectory):
    """The real directory (database, TTL cache), counting the lookups asked of it."""

    def __init__(self, inner: ConnectionDirectory) -> None:
        super().__init__(inner.db, inner.box)
        self.finds = 0

    async def find(self, protocol: str, login: str) -> Connection | None:
        self.finds += 1
        return await super().find(protocol, login)


async def _until(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.001)


async def _desk(r: Running, **kw: Any) -> tuple[PortDesk, CountingDirectory, Connection, int]:
    api = r.account(balance_li=1_000_000, price_li=35)
    await r.platform.connections.add(Actor.cli(), api.account_id, "smpp", LOGIN, SECRET)
    p = r.platform
    directory = CountingDirectory(p.ports.directory)
    desk = PortDesk(p.db, p.accept, directory, **kw)
    await desk.start()
    conn = await desk.login("smpp", LOGIN, "127.0.0.1", lambda c: c.secret == SECRET)
    return desk, directory, conn, api.account_id


def _seg(i: int) -> Segment:
    return Segment(str(i), "1069", (f"1380013{i:04d}",), "【企信】分组")


async def test_submits_arriving_while_accepts_are_in_flight_gather_into_one_group(ports: tuple[Running, int]) -> None:
    r, _ = ports
    desk, _, conn, account_id = await _desk(r, group_wait=0.001, inflight_max=1)
    held = threading.Event()
    # the database writer busy with another job (as under load): the first group's accept stays in flight
    blocker = r.platform.db.submit(lambda tx: held.wait(20))
    try:
        first = desk.submit_nowait(conn, _seg(0))
        assert first is not None
        await _until(lambda: bool(desk._inflight), "the first group's accept started")
        key = next(iter(desk._inflight))
        later: list[asyncio.Future[None]] = []
        for batch in range(3):  # three bursts, each past the group's wait: without the limit, three groups
            for i in range(10):
                fut = desk.submit_nowait(conn, _seg(1 + batch * 10 + i))
                assert fut is not None
                later.append(fut)
            await _until(lambda: key in desk._due, "the open group waits for the accept in flight")
        assert not first.done() and desk.stats["accepted"] == 0
        held.set()
        await asyncio.wait_for(asyncio.gather(first, *later), 30)
        assert desk.stats["accepted"] == 2  # the first submit's group, then the 30 gathered meanwhile
        assert len(await billed(r, account_id)) == 31
    finally:
        held.set()
        await asyncio.wrap_future(blocker)
        await desk.stop()


async def test_a_burst_after_the_memo_expired_is_one_lookup_and_waits_for_none(ports: tuple[Running, int]) -> None:
    r, _ = ports
    desk, directory, conn, account_id = await _desk(r)
    try:
        assert directory.finds == 1  # the bind's; its answer serves the first submits
        first = desk.submit_nowait(conn, _seg(0))
        assert first is not None and directory.finds == 1
        await first
        memo_until = desk._fresh[conn.id][0]
        await _until(lambda: time.monotonic() > memo_until, "the login's memo expired", timeout=5)
        burst = [desk.submit_nowait(conn, _seg(i)) for i in range(1, 41)]
        assert all(f is not None for f in burst), "a submit of the burst waited for the lookup"
        await asyncio.wait_for(asyncio.gather(*(f for f in burst if f is not None)), 30)
        assert directory.finds == 2, f"{directory.finds - 1} lookups for one burst"
        assert desk._fresh[conn.id][0] > memo_until  # renewed by that one lookup
        assert len(await billed(r, account_id)) == 41
    finally:
        await desk.stop()
