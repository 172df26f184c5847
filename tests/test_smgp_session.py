"""SMGP 3.0 client ⇄ China Telecom simulator over real loopback TCP; the codec adapter on raw sockets."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable

import pytest

from qixin.gateway.simulators.smgp import SimulatorConfig, SmgpSimulator
from qixin.protocols.errors import BindError, PduError, RequestTimeout, SessionClosed
from qixin.protocols.smgp import codec as g
from qixin.protocols.smgp.client import SmgpClient
from qixin.protocols.smgp.codec import Deliver, Submit
from qixin.protocols.smgp.server import SmgpServer, accounts_authenticator

FAST = SimulatorConfig(receipt_delay=(0.0, 0.02))
ACCOUNTS = {"acme0001": "s3cret"}


def _sm(i: int, *, need_report: int = 1) -> Submit:
    return Submit(
        need_report=need_report,
        service_id="SVC",
        src_term_id="10690001",
        dest_term_ids=(f"189{i:08d}",),
        msg_content=f"msg {i}".encode(),
    )


async def _until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def _report_ids(delivers: list[Deliver]) -> list[str]:
    return [g.msg_id_hex(g.decode_report(d.msg_content).msg_id) for d in delivers if d.is_report == 1]


# -- the codec adapter ------------------------------------------------------------------------------


def test_codec_adapter_roles() -> None:
    c = g.SmgpCodec()
    assert c.header_size == 12 and c.max_frame_size == 8192
    assert c.is_heartbeat(c.heartbeat()) and c.is_unbind(c.unbind())
    assert c.is_response(g.SubmitResp()) and not c.is_response(g.Submit())
    at = g.ActiveTest(sequence=7)
    assert c.response_to(at) == g.ActiveTestResp(sequence=7)
    assert c.response_to(g.Exit(sequence=8)) == g.ExitResp(sequence=8)
    d = g.Deliver(msg_id=b"\x12" * 10, sequence=9)
    assert c.error_response(d, 1) == g.DeliverResp(msg_id=b"\x12" * 10, status=1, sequence=9)
    assert c.error_response(g.Submit(sequence=3), 1) == g.SubmitResp(status=1, sequence=3)
    assert c.error_response(g.Login(sequence=4), 21) == g.LoginResp(status=21, sequence=4)
    # a Submit whose body is malformed is answered with Submit_Resp status 10; responses and
    # unknown commands are never answered
    bad = PduError("x", command_id=g.SUBMIT, sequence=5, status=g.STATUS_BAD_STRUCTURE)
    assert c.error_for_frame(bad) == g.SubmitResp(status=10, sequence=5)
    assert c.error_for_frame(PduError("x", command_id=g.SUBMIT_RESP, sequence=5)) is None
    assert c.error_for_frame(PduError("x", command_id=0x55, sequence=5)) is None
    assert "authentication failed" in g.status_name(21)


async def _raw_login(port: int, client_id: str, secret: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    ts = g.smgp_timestamp(1, 2, 3, 4, 5)
    auth = g.smgp_authenticator_client(client_id, secret, ts)
    writer.write(g.encode(g.Login(client_id=client_id, authenticator=auth, timestamp=ts, sequence=1)))
    resp = g.decode(await reader.readexactly(12 + 21))
    assert isinstance(resp, g.LoginResp) and resp.status == 0
    assert resp.authenticator == g.smgp_authenticator_server(0, auth, secret)
    return reader, writer


async def test_server_answers_malformed_submit_and_keeps_the_session() -> None:
    sim = SmgpSimulator(config=SimulatorConfig(accounts=ACCOUNTS, receipts=False))
    port = await sim.start()
    reader, writer = await _raw_login(port, "acme0001", "s3cret")
    try:
        good = g.encode(_sm(1), sequence=2)
        # declare MsgLength 200 in a frame that does not hold it
        body = bytearray(good[12:])
        body[105 + 21] = 200
        writer.write(struct.pack(">III", 12 + len(body), g.SUBMIT, 3) + bytes(body))
        resp = g.decode(await reader.readexactly(26))
        assert isinstance(resp, g.SubmitResp) and (resp.status, resp.sequence) == (g.STATUS_BAD_STRUCTURE, 3)
        writer.write(good)  # the session is still up
        resp = g.decode(await reader.readexactly(26))
        assert isinstance(resp, g.SubmitResp) and resp.status == 0 and resp.sequence == 2
        assert g.unpack_msg_id(resp.msg_id).smgw_code == sim.config.smgw_code
        writer.write(g.encode(g.ActiveTest(sequence=4)))
        assert g.decode(await reader.readexactly(12)) == g.ActiveTestResp(sequence=4)
        writer.write(g.encode(g.Exit(sequence=5)))
        assert g.decode(await reader.readexactly(12)) == g.ExitResp(sequence=5)
        assert await reader.read() == b""  # closed after Exit
    finally:
        writer.close()
        await sim.stop()


async def test_server_refuses_submit_before_login_and_on_receive_only_sessions() -> None:
    server = SmgpServer("127.0.0.1", 0, accounts_authenticator(None), lambda s, p: g.SubmitResp(sequence=p.sequence))
    port = await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(g.encode(_sm(1), sequence=1))
        resp = g.decode(await reader.readexactly(26))
        assert isinstance(resp, g.SubmitResp) and resp.status == g.STATUS_BAD_COMMAND
        writer.write(g.encode(g.Login(client_id="any", login_mode=g.LOGIN_MODE_RECEIVE, sequence=2)))
        login = g.decode(await reader.readexactly(33))
        assert isinstance(login, g.LoginResp) and login.status == 0 and login.authenticator == b"\0" * 16
        writer.write(g.encode(_sm(1), sequence=3))
        resp = g.decode(await reader.readexactly(26))
        assert isinstance(resp, g.SubmitResp) and resp.status == g.STATUS_BAD_COMMAND
    finally:
        writer.close()
        await server.stop()


# -- client and simulator ---------------------------------------------------------------------------


async def test_login_pipelined_submits_and_all_reports() -> None:
    sim = SmgpSimulator(config=SimulatorConfig(receipt_delay=(0.0, 0.02), accounts=ACCOUNTS), seed=1)
    port = await sim.start()
    got: list[Deliver] = []
    client = SmgpClient("127.0.0.1", port, "acme0001", "s3cret", window=128, on_deliver=got.append)
    await client.start()
    try:
        await client.wait_bound(5)
        n = 2000
        futs = [await client.submit(_sm(i)) for i in range(n)]
        resps = await asyncio.gather(*futs)
        assert all(r.status == 0 for r in resps)
        ids = {g.msg_id_hex(r.msg_id) for r in resps}
        assert len(ids) == n and all(len(x) == 20 and x.isdigit() for x in ids)
        await _until(lambda: len(got) >= n)
        reports = [g.decode_report(d.msg_content) for d in got]
        assert {g.msg_id_hex(r.msg_id) for r in reports} == ids
        assert {r.stat for r in reports} <= {"DELIVRD", "UNDELIV", "EXPIRED"}
        assert all(g.encode_report(r) == d.msg_content for r, d in zip(reports, got, strict=True))  # exact layout
        assert all(r.txt.startswith(b"msg ") for r in reports)  # Txt: the start of the submitted text
        assert all(d.is_report == 1 and d.dest_term_id == "10690001" for d in got)
        await _until(lambda: sim.stats.receipts_pending == 0)
        assert sim.stats.submits == n and sim.stats.receipts_sent == n
        assert client.logins == 1
    finally:
        await client.stop()
        await sim.stop()


async def test_wrong_secret_is_a_clear_error_with_backoff_until_stopped() -> None:
    sim = SmgpSimulator(config=SimulatorConfig(accounts=ACCOUNTS))
    port = await sim.start()
    client = SmgpClient("127.0.0.1", port, "acme0001", "wrong", reconnect_min=0.05, reconnect_max=0.2)
    await client.start()
    try:
        with pytest.raises(TimeoutError) as info:
            await client.wait_bound(0.6)
        err = client.last_error
        assert isinstance(err, BindError) and err.status == g.STATUS_AUTH_FAILED
        assert "authentication failed" in str(err) and "authentication failed" in str(info.value)
        assert 2 <= sim.stats.login_failures < 15  # kept trying, with backoff
    finally:
        await client.stop()
    tries = sim.stats.login_failures
    # a control client fails the same way meanwhile; after 5 attempts (its backoff alone spans more
    # than the stopped client's longest wait) every failure counted since must be the control's
    control = SmgpClient("127.0.0.1", port, "acme0001", "wrong", reconnect_min=0.05, reconnect_max=0.2)
    await control.start()
    try:
        await _until(
            lambda: control.failed_attempts >= 5 and sim.stats.login_failures - tries == control.failed_attempts
        )
    finally:
        await control.stop()
    ok = SmgpClient("127.0.0.1", port, "acme0001", "s3cret")
    await ok.start()
    await ok.wait_bound(5)
    await ok.stop()
    await sim.stop()


async def test_gateway_with_a_wrong_authenticator_server_is_refused() -> None:
    def impostor(login: g.Login) -> tuple[int, str | bytes | None]:
        return 0, "not-the-secret"

    server = SmgpServer("127.0.0.1", 0, impostor, lambda s, p: None)
    port = await server.start()
    client = SmgpClient("127.0.0.1", port, "acme0001", "s3cret", reconnect_min=0.05)
    await client.start()
    try:
        with pytest.raises(TimeoutError):
            await client.wait_bound(0.3)
        assert isinstance(client.last_error, BindError)
        assert "AuthenticatorServer" in str(client.last_error)
    finally:
        await client.stop()
        await server.stop()


async def test_flow_control_is_honoured_and_resubmits_succeed() -> None:
    sim = SmgpSimulator(config=SimulatorConfig(throttle_tps=200, receipts=False), seed=2)
    port = await sim.start()
    client = SmgpClient("127.0.0.1", port, "acme0001", "pw", window=64)
    await client.start()
    try:
        await client.wait_bound(5)
        todo = list(range(600))
        accepted = rounds = 0
        while todo:
            rounds += 1
            futs = [(i, await client.submit(_sm(i))) for i in todo]
            todo = []
            for i, f in futs:
                r = await f
                if r.status == g.STATUS_SYSTEM_BUSY:
                    todo.append(i)
                else:
                    assert r.status == 0
                    accepted += 1
        assert accepted == 600
        assert client.throttled > 0
        assert sim.stats.submit_resps[g.STATUS_SYSTEM_BUSY] == client.throttled
        assert rounds < 50
    finally:
        await client.stop()
        await sim.stop()


async def test_drop_mid_window_recovers_and_pending_reports_arrive_after_reconnect() -> None:
    sim = SmgpSimulator(config=SimulatorConfig(receipt_delay=(0.3, 0.4)), seed=3)
    port = await sim.start()
    got: list[Deliver] = []
    states: list[bool] = []
    client = SmgpClient("127.0.0.1", port, "acme0001", "pw", window=32, on_deliver=got.append, on_state=states.append)
    await client.start()
    try:
        await client.wait_bound(5)
        futs = [await client.submit(_sm(i)) for i in range(50)]
        ids = {g.msg_id_hex(r.msg_id) for r in await asyncio.gather(*futs)}
        # a second batch is in flight when the connection drops
        inflight = [await client.submit(_sm(100 + i)) for i in range(32)]
        sim.drop_connections()
        results = await asyncio.gather(*inflight, return_exceptions=True)
        assert all(isinstance(r, SessionClosed) or (isinstance(r, g.SubmitResp) and r.status == 0) for r in results)
        ids |= {g.msg_id_hex(r.msg_id) for r in results if isinstance(r, g.SubmitResp)}
        await _until(lambda: not client.bound, 2)
        # reports fall due while the client is away (reconnect waits >= 0.25 s): kept for acme0001
        await client.wait_bound(5)
        await _until(lambda: set(_report_ids(got)) >= ids)
        assert client.logins == 2
        assert states[:3] == [True, False, True]
        r = await (await client.submit(_sm(999)))  # traffic flows on the new session
        assert r.status == 0
        await _until(lambda: sim.stats.receipts_pending == 0)
    finally:
        await client.stop()
        await sim.stop()


async def test_never_answer_times_out_then_recovers() -> None:
    sim = SmgpSimulator(config=SimulatorConfig(never_answer=True, receipts=False))
    port = await sim.start()
    client = SmgpClient("127.0.0.1", port, "acme0001", "pw", window=8, request_timeout=0.2)
    await client.start()
    try:
        await client.wait_bound(5)
        futs = [await client.submit(_sm(i)) for i in range(8)]
        results = await asyncio.gather(*futs, return_exceptions=True)
        assert all(isinstance(r, RequestTimeout) for r in results)
        assert client.timeouts == 8 and sim.stats.unanswered == 8
        sim.config.never_answer = False
        r = await (await client.submit(_sm(9)))
        assert r.status == 0 and client.bound and client.logins == 1
    finally:
        await client.stop()
        await sim.stop()


@pytest.mark.parametrize("client_hb, server_hb", [(0.1, 30.0), (30.0, 0.1)], ids=["sp", "smgw"])
async def test_active_test_keepalive_and_mo(client_hb: float, server_hb: float) -> None:
    sim = SmgpSimulator(config=SimulatorConfig(heartbeat_interval=server_hb))
    port = await sim.start()
    got: list[Deliver] = []
    client = SmgpClient("127.0.0.1", port, "acme0001", "pw", heartbeat_interval=client_hb, on_deliver=got.append)
    await client.start()
    try:
        await client.wait_bound(5)
        mine, theirs = client.session, next(iter(sim.server.sessions))
        assert mine is not None
        sender, receiver = (mine, theirs) if client_hb < server_hb else (theirs, mine)
        # idle: the side with the short interval sends Active_Test, the other side sees and answers it
        await _until(lambda: receiver.keepalives_received >= 3 and sender.keepalives_answered >= 3)
        assert client.bound and client.logins == 1
        await sim.send_mo("18900000001", "1069000188", "TD")
        await sim.send_mo("18900000001", "1069000188", "退订")
        await _until(lambda: len(got) == 2)
        assert got[0].is_report == 0 and got[0].msg_format == 0 and got[0].msg_content == b"TD"
        assert got[0].src_term_id == "18900000001" and got[0].dest_term_id == "1069000188"
        assert got[1].msg_format == 8 and got[1].msg_content.decode("utf-16-be") == "退订"
        await _until(lambda: sim.stats.mo_sent == 2)
    finally:
        await client.stop()
        await sim.stop()


async def test_deliver_acknowledged_only_when_the_receiver_future_resolves() -> None:
    sim = SmgpSimulator(config=FAST)
    port = await sim.start()
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[None]] = []
    seen: list[Deliver] = []

    def store(d: Deliver) -> asyncio.Future[None]:
        seen.append(d)
        fut: asyncio.Future[None] = loop.create_future()
        futures.append(fut)
        return fut

    client = SmgpClient("127.0.0.1", port, "acme0001", "pw", on_deliver=store)
    await client.start()
    try:
        await client.wait_bound(5)
        r = await (await client.submit(_sm(1)))
        await _until(lambda: len(futures) == 1)
        # an Active_Test round trip on the same connection: an answer sent before it has arrived by now
        s = client.session
        assert s is not None
        await (await s.request(s.codec.heartbeat()))
        assert sim.stats.receipts_pending == 1  # not acknowledged yet
        futures[0].set_exception(RuntimeError("database down"))  # -> Deliver_Resp status 1: redelivered
        await _until(lambda: len(futures) == 2)
        assert _report_ids(seen) == [g.msg_id_hex(r.msg_id)] * 2
        assert sim.stats.receipts_pending == 1
        futures[1].set_result(None)
        await _until(lambda: sim.stats.receipts_pending == 0)
        assert sim.stats.receipts_sent == 1
    finally:
        await client.stop()
        await sim.stop()


async def test_reports_wait_for_the_same_client_to_log_in_again() -> None:
    sim = SmgpSimulator(config=SimulatorConfig(receipt_delay=(0.05, 0.1)), seed=4)
    port = await sim.start()
    c1 = SmgpClient("127.0.0.1", port, "acme0001", "pw")
    await c1.start()
    await c1.wait_bound(5)
    futs = [await c1.submit(_sm(i)) for i in range(20)]
    ids = {g.msg_id_hex(r.msg_id) for r in await asyncio.gather(*futs)}
    await c1.stop()  # Exit
    await _until(lambda: sim.queued("acme0001") == 20)  # all due, none delivered: nobody to take them
    assert sim.stats.receipts_pending == 20 and sim.stats.receipts_sent == 0
    other: list[Deliver] = []
    c_other = SmgpClient("127.0.0.1", port, "other", "pw", on_deliver=other.append)
    got: list[Deliver] = []
    c2 = SmgpClient("127.0.0.1", port, "acme0001", "pw", on_deliver=got.append)
    await c_other.start()
    await c2.start()
    try:
        await c2.wait_bound(5)
        await _until(lambda: len(got) >= 20)
        assert set(_report_ids(got)) == ids
        assert other == []
    finally:
        await c2.stop()
        await c_other.stop()
        await sim.stop()
