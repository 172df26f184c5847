"""CMPP client ⇄ ISMG simulator over real loopback TCP (CMPP 3.0 and 2.0)."""

from __future__ import annotations

import asyncio

import pytest

from qixin.gateway.simulators.cmpp import CmppSimulator, SimulatorConfig
from qixin.protocols.cmpp import codec as c
from qixin.protocols.cmpp.client import CmppClient
from qixin.protocols.cmpp.codec import (
    CONNECT_AUTH_FAILED,
    CONNECT_BAD_SOURCE_ADDR,
    CONNECT_VERSION_TOO_HIGH,
    RESULT_FLOW_CONTROL,
    RESULT_OK,
    VERSION_20,
    VERSION_30,
    Deliver,
    Submit,
)
from qixin.protocols.cmpp.server import CmppServer
from qixin.protocols.cmpp.text import decode_content
from qixin.protocols.errors import BindError, RequestTimeout, SessionClosed
from qixin.protocols.session import Session

FAST = SimulatorConfig(receipt_delay=(0.0, 0.02))
SP = "901234"
SECRET = "secret"


def _sm(i: int) -> Submit:
    return Submit(
        registered_delivery=1,
        msg_src=SP,
        src_id="1065800",
        dest_terminal_ids=(f"138{i:08d}",),
        msg_content=f"msg {i}".encode(),
    )


def _client(port: int, **kw: object) -> CmppClient:
    return CmppClient("127.0.0.1", port, kw.pop("sp", SP), kw.pop("secret", SECRET), **kw)  # type: ignore[arg-type]


async def _until(cond, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# -- the Codec adapter --------------------------------------------------------------------------------


def test_codec_adapter_answers_every_request_type() -> None:
    for codec in (c.CMPP20, c.CMPP30):
        assert codec.is_heartbeat(c.ActiveTest()) and not codec.is_response(c.ActiveTest())
        assert codec.is_response(c.ActiveTestResp()) and codec.is_unbind(c.Terminate())
        assert isinstance(codec.heartbeat(), c.ActiveTest) and isinstance(codec.unbind(), c.Terminate)
        assert codec.response_to(c.ActiveTest(sequence=7)) == c.ActiveTestResp(sequence=7)
        assert codec.response_to(c.Terminate(sequence=8)) == c.TerminateResp(sequence=8)
        assert codec.error_response(c.Submit(sequence=9), 8) == c.SubmitResp(0, 8, 9)
        assert codec.error_response(c.Deliver(msg_id=5, sequence=9), 9) == c.DeliverResp(5, 9, 9)
        assert codec.error_response(c.Cancel(sequence=2), 9) == c.CancelResp(1, 2)
        resp = codec.error_response(c.Connect(sequence=3), 77)
        assert resp.status == c.CONNECT_OTHER_ERROR and resp.sequence == 3
        for pdu in (c.Submit(), c.Deliver(), c.Connect(), c.Query(), c.Cancel(), c.ActiveTest(), c.Terminate()):
            codec.encode(codec.error_response(pdu, 1))  # every answer encodes in its version
    # a SUBMIT whose body is malformed gets SUBMIT_RESP Result 1; unknown commands get nothing
    bad = bytes.fromhex("00000010 00000004 0000002A 00000000")
    with pytest.raises(c.ProtocolError) as info:
        c.CMPP30.decode(bad)
    assert c.CMPP30.error_for_frame(info.value) == c.SubmitResp(0, c.RESULT_BAD_STRUCTURE, 0x2A)
    with pytest.raises(c.ProtocolError) as info:
        c.CMPP30.decode(bytes.fromhex("0000000C 00000099 00000001"))
    assert c.CMPP30.error_for_frame(info.value) is None
    with pytest.raises(c.ProtocolError) as info:
        c.CMPP30.decode(bytes.fromhex("0000000D 80000004 00000001 00"))
    assert c.CMPP30.error_for_frame(info.value) is None  # never answer a response


# -- sessions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [VERSION_30, VERSION_20])
async def test_pipelined_submits_and_reports(version: int) -> None:
    sim = CmppSimulator(config=FAST, seed=1)
    port = await sim.start()
    reports: list[Deliver] = []
    client = _client(port, version=version, window=64, on_deliver=reports.append)
    await client.start()
    try:
        await client.wait_bound(5)
        assert client.session is not None and client.session.codec.version == version  # type: ignore[attr-defined]
        n = 2000
        futs = [await client.submit(_sm(i)) for i in range(n)]
        resps = await asyncio.gather(*futs)
        assert all(r.result == RESULT_OK for r in resps)
        ids = {r.msg_id for r in resps}
        assert len(ids) == n
        parts = c.unpack_msg_id(resps[0].msg_id)
        assert parts.gateway_id == sim.config.gateway_id and 1 <= parts.month <= 12
        await _until(lambda: len(reports) >= n)
        got = {}
        for d in reports:
            assert d.registered_delivery == 1
            r = c.decode_report(d.msg_content, version)
            assert r.dest_terminal_id == d.src_terminal_id
            got[r.msg_id] = r
        assert set(got) == ids
        assert {r.stat for r in got.values()} <= set(sim.config.outcomes)
        await _until(lambda: sim.stats.receipts_pending == 0)
        assert sim.stats.submits == n and sim.stats.receipts_sent == n
    finally:
        await client.stop()
        await sim.stop()


async def test_wrong_secret_is_a_clear_error_and_retried_with_backoff_until_stopped() -> None:
    sim = CmppSimulator(config=SimulatorConfig(accounts={SP: SECRET}))
    port = await sim.start()
    client = _client(port, secret="wrong", reconnect_min=0.05, reconnect_max=0.2)
    await client.start()
    try:
        with pytest.raises(TimeoutError) as info:
            await client.wait_bound(0.6)
        assert isinstance(client.last_error, BindError)
        assert client.last_error.status == CONNECT_AUTH_FAILED
        assert "authentication failed" in str(client.last_error)
        assert "authentication failed" in str(info.value)
        assert sim.stats.bind_failures >= 2  # it kept trying
    finally:
        await client.stop()
    tries = sim.stats.bind_failures
    # a control client fails the same way meanwhile; after 5 attempts (its backoff alone spans more
    # than the stopped client's longest wait) every failure counted since must be the control's
    control = _client(port, secret="wrong", reconnect_min=0.05, reconnect_max=0.2)
    await control.start()
    try:
        await _until(
            lambda: control.failed_attempts >= 5 and sim.stats.bind_failures - tries == control.failed_attempts
        )
    finally:
        await control.stop()
    unknown = _client(port, sp="999999", reconnect_min=5)
    await unknown.start()
    await _until(lambda: unknown.last_error is not None)
    assert isinstance(unknown.last_error, BindError) and unknown.last_error.status == CONNECT_BAD_SOURCE_ADDR
    await unknown.stop()
    ok = _client(port)
    await ok.start()
    await ok.wait_bound(5)
    await ok.stop()
    await sim.stop()


async def test_version_too_high_and_forged_gateway_are_refused() -> None:
    sim = CmppSimulator(config=SimulatorConfig(versions=(VERSION_20,)))
    port = await sim.start()
    client = _client(port, version=VERSION_30, reconnect_min=5)
    await client.start()
    await _until(lambda: client.last_error is not None)
    assert isinstance(client.last_error, BindError) and client.last_error.status == CONNECT_VERSION_TOO_HIGH
    assert "version too high" in str(client.last_error)
    await client.stop()
    await sim.stop()

    # a "gateway" that accepts anyone but does not know the secret: AuthenticatorISMG does not match
    impostor = CmppServer("127.0.0.1", 0, lambda sp: "another secret", lambda s, p: None)
    port = await impostor.start()
    original = impostor._connect

    def forge(session: Session, pdu: c.Connect) -> c.ConnectResp:
        # accept whatever authenticator is sent, answer with the impostor's own secret
        pdu.authenticator = c.cmpp_authenticator_source(pdu.source_addr, "another secret", f"{pdu.timestamp:010d}")
        return original(session, pdu)

    impostor._connect = forge  # type: ignore[method-assign]
    client = _client(port, reconnect_min=5)
    await client.start()
    await _until(lambda: client.last_error is not None)
    assert isinstance(client.last_error, BindError) and "AuthenticatorISMG does not match" in str(client.last_error)
    assert not client.bound
    await client.stop()
    await impostor.stop()


async def test_flow_control_pauses_and_resubmits_succeed() -> None:
    sim = CmppSimulator(config=SimulatorConfig(throttle_tps=200, receipts=False), seed=2)
    port = await sim.start()
    client = _client(port, window=64)
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
                if r.result == RESULT_FLOW_CONTROL:
                    todo.append(i)
                else:
                    assert r.result == RESULT_OK
                    accepted += 1
        assert accepted == 600
        assert client.throttled > 0
        assert sim.stats.submit_resps[RESULT_FLOW_CONTROL] == client.throttled
        assert rounds < 50
    finally:
        await client.stop()
        await sim.stop()


async def test_drop_mid_window_reconnects_and_queued_reports_arrive() -> None:
    sim = CmppSimulator(config=SimulatorConfig(receipt_delay=(0.3, 0.4)), seed=3)
    port = await sim.start()
    reports: list[Deliver] = []
    states: list[bool] = []
    client = _client(port, reconnect_min=0.5, on_deliver=reports.append, on_state=states.append)
    await client.start()
    try:
        await client.wait_bound(5)
        futs = [await client.submit(_sm(i)) for i in range(50)]
        resps = await asyncio.gather(*futs)
        ids = {r.msg_id for r in resps}
        # more submits in flight when the connection drops: each either answered or SessionClosed
        more = [await client.submit(_sm(100 + i)) for i in range(16)]
        sim.drop_connections()
        results = await asyncio.gather(*more, return_exceptions=True)
        assert all(isinstance(r, SessionClosed) or r.result == RESULT_OK for r in results)  # type: ignore[union-attr]
        ids |= {r.msg_id for r in results if not isinstance(r, BaseException)}
        await _until(lambda: not client.bound, 2)
        # reports fall due while the client is away (reconnect waits >= 0.25 s): kept for the SP
        await client.wait_bound(5)
        await _until(lambda: len(reports) >= len(ids))
        assert {c.decode_report(d.msg_content).msg_id for d in reports} == ids
        assert client.binds == 2
        assert states[:3] == [True, False, True]
        r = await (await client.submit(_sm(99)))
        assert r.result == RESULT_OK
    finally:
        await client.stop()
        await sim.stop()


async def test_never_answer_times_out_and_recovers() -> None:
    sim = CmppSimulator(config=SimulatorConfig(receipts=False, never_answer=True))
    port = await sim.start()
    client = _client(port, request_timeout=0.3, heartbeat_interval=0.1)
    await client.start()
    try:
        await client.wait_bound(5)
        futs = [await client.submit(_sm(i)) for i in range(5)]
        results = await asyncio.gather(*futs, return_exceptions=True)
        assert all(isinstance(r, RequestTimeout) for r in results)
        assert client.timeouts == 5 and sim.stats.unanswered == 5
        assert client.bound  # ACTIVE_TEST still answered: the link itself is fine
        sim.config.never_answer = False
        r = await (await client.submit(_sm(9)))
        assert r.result == RESULT_OK and client.binds == 1
    finally:
        await client.stop()
        await sim.stop()


async def test_dead_gateway_detected_by_active_test_and_reconnected() -> None:
    sim = CmppSimulator(config=SimulatorConfig(receipts=False))
    port = await sim.start()
    client = _client(port, request_timeout=0.2, heartbeat_interval=0.1, heartbeat_retries=2, reconnect_min=0.05)
    await client.start()
    try:
        await client.wait_bound(5)
        (server_session,) = sim.server.sessions
        server_session.transport.pause_reading()  # type: ignore[union-attr]  # gateway hangs
        await _until(lambda: client.binds == 2, 5)
        r = await (await client.submit(_sm(1)))
        assert r.result == RESULT_OK
    finally:
        await client.stop()
        await sim.stop()


@pytest.mark.parametrize("client_hb, server_hb", [(0.1, 30.0), (30.0, 0.1)], ids=["sp", "ismg"])
async def test_active_test_keepalive_and_mo(client_hb: float, server_hb: float) -> None:
    sim = CmppSimulator(config=SimulatorConfig(heartbeat_interval=server_hb))
    port = await sim.start()
    got: list[Deliver] = []
    client = _client(port, heartbeat_interval=client_hb, on_deliver=got.append)
    await client.start()
    try:
        await client.wait_bound(5)
        mine, theirs = client.session, next(iter(sim.server.sessions))
        assert mine is not None
        sender, receiver = (mine, theirs) if client_hb < server_hb else (theirs, mine)
        # idle: the side with the short interval sends ACTIVE_TEST, the other side sees and answers it
        await _until(lambda: receiver.keepalives_received >= 3 and sender.keepalives_answered >= 3)
        assert client.bound and client.binds == 1
        await sim.send_mo("13800138000", "106580012", "TD")
        await sim.send_mo("13800138000", "106580012", "退订")
        await _until(lambda: len(got) == 2)
        assert got[0].msg_content == b"TD" and got[0].msg_fmt == 0 and got[0].registered_delivery == 0
        assert got[1].msg_fmt == 8 and decode_content(8, got[1].msg_content, False)[0] == "退订"
        assert got[0].src_terminal_id == "13800138000" and got[0].dest_id == "106580012"
        await _until(lambda: sim.stats.mo_sent == 2)  # acknowledged just after the client saw it
    finally:
        await client.stop()
        await sim.stop()


async def test_deliver_acknowledged_only_when_the_receiver_future_resolves() -> None:
    sim = CmppSimulator(config=FAST)
    port = await sim.start()
    loop = asyncio.get_running_loop()
    pending: list[asyncio.Future[None]] = []
    seen: list[int] = []

    def store(d: Deliver) -> asyncio.Future[None]:
        seen.append(c.decode_report(d.msg_content).msg_id)
        f: asyncio.Future[None] = loop.create_future()
        pending.append(f)
        return f

    client = _client(port, on_deliver=store)
    await client.start()
    try:
        await client.wait_bound(5)
        r = await (await client.submit(_sm(1)))
        await _until(lambda: len(pending) == 1)
        # an ACTIVE_TEST round trip on the same connection: an answer sent before it has arrived by now
        s = client.session
        assert s is not None
        await (await s.request(s.codec.heartbeat()))
        assert sim.stats.receipts_pending == 1  # not acknowledged yet
        pending[0].set_exception(RuntimeError("database down"))  # -> Result 9, redelivered
        await _until(lambda: len(pending) == 2)
        pending[1].set_result(None)
        await _until(lambda: sim.stats.receipts_pending == 0)
        assert seen == [r.msg_id, r.msg_id] and sim.stats.redeliveries == 1
    finally:
        await client.stop()
        await sim.stop()


async def test_reports_wait_for_the_same_sp_to_connect_again() -> None:
    sim = CmppSimulator(config=SimulatorConfig(receipt_delay=(0.05, 0.1)), seed=4)
    port = await sim.start()
    c1 = _client(port)
    await c1.start()
    await c1.wait_bound(5)
    futs = [await c1.submit(_sm(i)) for i in range(20)]
    ids = {r.msg_id for r in await asyncio.gather(*futs)}
    await c1.stop()
    await _until(lambda: sim.queued(SP) == 20)  # all due, none delivered: nobody to take them
    assert sim.stats.receipts_pending == 20 and sim.stats.receipts_sent == 0
    other: list[Deliver] = []
    c_other = _client(port, sp="905555", on_deliver=other.append)
    reports: list[Deliver] = []
    c2 = _client(port, version=VERSION_20, on_deliver=reports.append)  # comes back speaking 2.0
    await c_other.start()
    await c2.start()
    try:
        await c2.wait_bound(5)
        await _until(lambda: len(reports) >= 20)
        assert {c.decode_report(d.msg_content, VERSION_20).msg_id for d in reports} == ids
        assert other == []
    finally:
        await c2.stop()
        await c_other.stop()
        await sim.stop()


async def test_server_answers_malformed_and_unknown_frames_sensibly() -> None:
    sim = CmppSimulator(config=SimulatorConfig(receipts=False))
    port = await sim.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def frame() -> bytes:
        head = await asyncio.wait_for(reader.readexactly(12), 5)
        return head + await reader.readexactly(int.from_bytes(head[:4], "big") - 12)

    try:
        # SUBMIT before CONNECT: Result 2
        writer.write(c.encode(_sm(1), 1))
        assert c.decode(await frame()) == c.SubmitResp(0, c.RESULT_BAD_COMMAND, 1)
        # unknown Command_Id: ignored, the session stays up; malformed SUBMIT: Result 1
        writer.write(bytes.fromhex("0000000C 00000099 00000002") + bytes.fromhex("00000010 00000004 00000003 00000000"))
        assert c.decode(await frame()) == c.SubmitResp(0, c.RESULT_BAD_STRUCTURE, 3)
        # CONNECT then a SUBMIT: accepted; ACTIVE_TEST answered by the engine
        ts = "0101120000"
        auth = c.cmpp_authenticator_source(SP, SECRET, ts)
        writer.write(c.encode(c.Connect(SP, auth, VERSION_30, int(ts)), 4))
        resp = c.decode(await frame())
        assert isinstance(resp, c.ConnectResp) and resp.status == 0
        assert resp.authenticator == c.cmpp_authenticator_ismg(0, auth, SECRET)
        writer.write(c.encode(_sm(2), 5) + c.encode(c.ActiveTest(), 6))
        r1, r2 = c.decode(await frame()), c.decode(await frame())
        assert isinstance(r1, c.SubmitResp) and r1.result == RESULT_OK and r1.sequence == 5
        assert r2 == c.ActiveTestResp(sequence=6)
        # TERMINATE: answered, then the gateway closes
        writer.write(c.encode(c.Terminate(), 7))
        assert c.decode(await frame()) == c.TerminateResp(sequence=7)
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()
        await sim.stop()
