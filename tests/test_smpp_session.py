"""SMPP client ⇄ simulator over real loopback TCP."""

from __future__ import annotations

import asyncio

import pytest

from qixin.gateway.simulators.smpp import SimulatorConfig, SmppSimulator
from qixin.protocols.errors import BindError, RequestTimeout, SessionClosed, WindowFull
from qixin.protocols.smpp.client import SmppClient
from qixin.protocols.smpp.codec import (
    ESME_RINVPASWD,
    ESME_ROK,
    ESME_RTHROTTLED,
    DeliverSm,
    SubmitSm,
)
from qixin.protocols.window import Window

FAST = SimulatorConfig(receipt_delay=(0.0, 0.02))


def _sm(i: int) -> SubmitSm:
    return SubmitSm(
        source_addr="10690001",
        destination_addr=f"86138{i:08d}",
        registered_delivery=1,
        short_message=f"msg {i}".encode(),
    )


async def _until(cond, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# -- window ---------------------------------------------------------------------------------------


async def test_window_capacity_complete_and_expiry():
    w = Window(2, 0.05)
    await w.acquire()
    f1 = w.offer(1)
    f2 = w.offer(2)
    with pytest.raises(WindowFull):
        w.offer(3)
    waiter = asyncio.ensure_future(w.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()
    assert w.complete(1, "r1")
    assert await f1 == "r1"
    await waiter  # the freed slot went to the waiter
    f3 = w.offer(3)
    with pytest.raises(RequestTimeout):
        await f2
    with pytest.raises(RequestTimeout):
        await f3
    assert len(w) == 0 and w.free == 2
    f4 = w.offer(4)
    w.fail_all()
    with pytest.raises(SessionClosed):
        await f4
    with pytest.raises(SessionClosed):
        await w.acquire()


# -- sessions ---------------------------------------------------------------------------------------


async def test_pipelined_submits_and_receipts():
    sim = SmppSimulator(config=FAST, seed=1)
    port = await sim.start()
    receipts: list[DeliverSm] = []
    client = SmppClient("127.0.0.1", port, "acme", "pw", window=128, on_deliver=receipts.append)
    await client.start()
    try:
        await client.wait_bound(5)
        n = 2000
        futs = [await client.submit(_sm(i)) for i in range(n)]
        resps = await asyncio.gather(*futs)
        assert all(r.command_status == ESME_ROK for r in resps)
        ids = {r.message_id for r in resps}
        assert len(ids) == n
        await _until(lambda: len(receipts) >= n)
        got = {}
        for d in receipts:
            info = d.receipt()
            assert info is not None
            got[info["id"]] = info
        assert set(got) == ids
        assert {i["stat"] for i in got.values()} <= {"DELIVRD", "UNDELIV", "EXPIRED"}
        await _until(lambda: sim.stats.receipts_pending == 0)  # acknowledged just after the client saw it
        assert sim.stats.submits == n
    finally:
        await client.stop()
        await sim.stop()


async def test_throttling_is_honoured_and_resubmits_succeed():
    sim = SmppSimulator(config=SimulatorConfig(throttle_tps=200, receipts=False), seed=2)
    port = await sim.start()
    client = SmppClient("127.0.0.1", port, "acme", "pw", window=64)
    await client.start()
    try:
        await client.wait_bound(5)
        todo = list(range(600))
        accepted = 0
        rounds = 0
        while todo:
            rounds += 1
            futs = [(i, await client.submit(_sm(i))) for i in todo]
            todo = []
            for i, f in futs:
                r = await f
                if r.command_status == ESME_RTHROTTLED:
                    todo.append(i)
                else:
                    assert r.command_status == ESME_ROK
                    accepted += 1
        assert accepted == 600
        assert client.throttled > 0
        assert sim.stats.submit_resps[ESME_RTHROTTLED] == client.throttled
        assert rounds < 50
    finally:
        await client.stop()
        await sim.stop()


async def test_reconnect_after_drop_and_queued_receipts_delivered():
    sim = SmppSimulator(config=SimulatorConfig(receipt_delay=(0.3, 0.4)), seed=3)
    port = await sim.start()
    receipts: list[DeliverSm] = []
    states: list[bool] = []
    client = SmppClient(
        "127.0.0.1",
        port,
        "acme",
        "pw",
        reconnect_min=0.5,
        on_deliver=receipts.append,
        on_state=states.append,
    )
    await client.start()
    try:
        await client.wait_bound(5)
        futs = [await client.submit(_sm(i)) for i in range(50)]
        resps = await asyncio.gather(*futs)
        ids = {r.message_id for r in resps}
        sim.drop_connections()
        await _until(lambda: not client.bound, 2)
        # receipts fall due while the client is away (reconnect waits >= 0.25 s): kept for 'acme'
        await client.wait_bound(5)
        await _until(lambda: len(receipts) >= 50)
        assert {d.receipted_message_id for d in receipts} == ids
        assert client.binds == 2
        assert states[:3] == [True, False, True]
        # and traffic flows on the new session
        r = await (await client.submit(_sm(99)))
        assert r.command_status == ESME_ROK
    finally:
        await client.stop()
        await sim.stop()


async def test_receipts_wait_for_the_same_system_id_to_bind_again():
    sim = SmppSimulator(config=SimulatorConfig(receipt_delay=(0.05, 0.1)), seed=4)
    port = await sim.start()
    c1 = SmppClient("127.0.0.1", port, "acme", "pw")
    await c1.start()
    await c1.wait_bound(5)
    futs = [await c1.submit(_sm(i)) for i in range(20)]
    ids = {r.message_id for r in await asyncio.gather(*futs)}
    await c1.stop()
    await _until(lambda: sim.queued("acme") == 20)  # all due, none delivered: nobody to take them
    assert sim.stats.receipts_pending == 20 and sim.stats.receipts_sent == 0
    other: list[DeliverSm] = []
    c_other = SmppClient("127.0.0.1", port, "other", "pw", on_deliver=other.append)
    receipts: list[DeliverSm] = []
    c2 = SmppClient("127.0.0.1", port, "acme", "pw", on_deliver=receipts.append)
    await c_other.start()
    await c2.start()
    try:
        await c2.wait_bound(5)
        await _until(lambda: len(receipts) >= 20)
        assert {d.receipted_message_id for d in receipts} == ids
        assert other == []
    finally:
        await c2.stop()
        await c_other.stop()
        await sim.stop()


async def test_wrong_password_retries_with_backoff_until_stopped():
    sim = SmppSimulator(config=SimulatorConfig(accounts={"acme": "secret"}))
    port = await sim.start()
    client = SmppClient("127.0.0.1", port, "acme", "wrong", reconnect_min=0.05, reconnect_max=0.2)
    await client.start()
    try:
        with pytest.raises(TimeoutError) as info:
            await client.wait_bound(0.6)
        assert isinstance(client.last_error, BindError)
        assert client.last_error.status == ESME_RINVPASWD
        assert "ESME_RINVPASWD" in str(client.last_error)
        assert "ESME_RINVPASWD" in str(info.value)
        assert sim.stats.bind_failures >= 2  # it kept trying
    finally:
        await client.stop()
    tries = sim.stats.bind_failures
    # a control client fails the same way meanwhile; after 5 attempts (its backoff alone spans more
    # than the stopped client's longest wait) every failure counted since must be the control's
    control = SmppClient("127.0.0.1", port, "acme", "wrong", reconnect_min=0.05, reconnect_max=0.2)
    await control.start()
    try:
        await _until(
            lambda: control.failed_attempts >= 5 and sim.stats.bind_failures - tries == control.failed_attempts
        )
    finally:
        await control.stop()
    ok = SmppClient("127.0.0.1", port, "acme", "secret")
    await ok.start()
    await ok.wait_bound(5)
    await ok.stop()
    await sim.stop()


@pytest.mark.parametrize("client_hb, server_hb", [(0.1, 30.0), (30.0, 0.1)], ids=["esme", "smsc"])
async def test_enquire_link_keepalive_and_mo(client_hb: float, server_hb: float):
    sim = SmppSimulator(config=SimulatorConfig(enquire_link_interval=server_hb))
    port = await sim.start()
    got: list[DeliverSm] = []
    client = SmppClient("127.0.0.1", port, "acme", "pw", enquire_link_interval=client_hb, on_deliver=got.append)
    await client.start()
    try:
        await client.wait_bound(5)
        mine, theirs = client.session, next(iter(sim.server.sessions))
        sender, receiver = (mine, theirs) if client_hb < server_hb else (theirs, mine)
        # idle: the side with the short interval sends enquire_link, the other side sees and answers it
        await _until(lambda: receiver.keepalives_received >= 3 and sender.keepalives_answered >= 3)
        assert client.bound and client.binds == 1
        await sim.send_mo("8613800138000", "10690001", "TD")
        await sim.send_mo("8613800138000", "10690001", "退订")
        await _until(lambda: len(got) == 2)
        assert got[0].short_message == b"TD" and not got[0].is_receipt
        assert got[1].data_coding == 8 and got[1].short_message.decode("utf-16-be") == "退订"
        await _until(lambda: sim.stats.mo_sent == 2)  # acknowledged just after the client saw it
    finally:
        await client.stop()
        await sim.stop()


async def test_on_deliver_failure_gets_redelivered():
    sim = SmppSimulator(config=FAST)
    port = await sim.start()
    seen: list[str] = []

    def flaky(d: DeliverSm) -> None:
        seen.append(d.receipted_message_id or "")
        if len(seen) == 1:
            raise RuntimeError("database down")

    client = SmppClient("127.0.0.1", port, "acme", "pw", on_deliver=flaky)
    await client.start()
    try:
        await client.wait_bound(5)
        r = await (await client.submit(_sm(1)))
        await _until(lambda: len(seen) >= 2)
        assert seen[0] == seen[1] == r.message_id
        await _until(lambda: sim.stats.receipts_pending == 0)
    finally:
        await client.stop()
        await sim.stop()


async def test_submit_fails_with_session_closed_when_connection_drops():
    sim = SmppSimulator(config=SimulatorConfig(receipts=False))
    port = await sim.start()
    client = SmppClient("127.0.0.1", port, "acme", "pw", reconnect_min=0.05)
    await client.start()
    try:
        await client.wait_bound(5)
        futs = [await client.submit(_sm(i)) for i in range(200)]
        client.drop()
        results = await asyncio.gather(*futs, return_exceptions=True)
        assert all(
            isinstance(r, SessionClosed) or (not isinstance(r, BaseException) and r.command_status == 0)
            for r in results
        )
        await client.wait_bound(5)
    finally:
        await client.stop()
        await sim.stop()
