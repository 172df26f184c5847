"""SGIP 1.2 SP client ⇄ SMG simulator over real loopback TCP (both directions: the SMG connects back)."""

from __future__ import annotations

import asyncio

import pytest
from conftest import free_port

from qixin.gateway.simulators.sgip import SgipSimulator, SgipSimulatorConfig
from qixin.protocols.errors import BindError, RequestTimeout, SessionClosed
from qixin.protocols.sgip import codec as c
from qixin.protocols.sgip.adapter import NodeCounter, SgipSessionCodec, carrier_id, current_timestamp
from qixin.protocols.sgip.client import SgipClient

NODE = 3010012345
FAST = SgipSimulatorConfig(receipt_delay=(0.0, 0.02))


def _submit(i: int, users: int = 1) -> c.Submit:
    return c.Submit(
        sp_number="1065500001",
        charge_number="0" * 21,
        user_numbers=tuple(f"86130{(i * 100 + u):08d}" for u in range(users)),
        corp_id="12345",
        report_flag=1,
        message_content=f"msg {i}".encode(),
    )


async def _until(cond, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def _pair(config: SgipSimulatorConfig, seed: int = 1, **client_kw) -> tuple[SgipSimulator, SgipClient, list]:
    sim = SgipSimulator(config=config, seed=seed)
    port = await sim.start()
    got: list = client_kw.pop("got", [])
    client_kw.setdefault("on_deliver", got.append)
    client = SgipClient("127.0.0.1", port, "sp1", "pw", node_id=NODE, **client_kw)
    await client.start()
    sim.register_sp("sp1", "127.0.0.1", client.listen_port)
    return sim, client, got


# -- the codec adapter ------------------------------------------------------------------------------


def test_adapter_stamps_wire_sequences_and_matches_responses_as_a_tuple() -> None:
    codec = SgipSessionCodec(NODE, NodeCounter(start=41))
    pdu = _submit(1)
    pdu.sequence = 7  # what the engine allocated
    before = current_timestamp()
    frame = codec.encode(pdu)
    assert pdu.timestamp in (before, current_timestamp())
    assert c.read_header(frame)[2] == (NODE, pdu.timestamp, 41)
    assert c.sequence_of(pdu) == (NODE, pdu.timestamp, 41)
    assert carrier_id(pdu) == f"{NODE}-{pdu.timestamp:010d}-41"
    assert c.parse_sequence(carrier_id(pdu)) == c.sequence_of(pdu)
    # a response echoing another node or timestamp matches nothing (engine key 0)
    assert codec.decode(c.encode(c.SubmitResp(0), (NODE + 1, pdu.timestamp, 41))).sequence == 0
    assert codec.decode(c.encode(c.SubmitResp(0), (NODE, pdu.timestamp + 1, 41))).sequence == 0
    # the exact echo completes the engine's request 7
    resp = codec.decode(c.encode(c.SubmitResp(0), (NODE, pdu.timestamp, 41)))
    assert resp.sequence == 7 and resp.result == 0
    # ... once
    assert codec.decode(c.encode(c.SubmitResp(0), (NODE, pdu.timestamp, 41))).sequence == 0
    # an incoming request keeps the peer's sequence; responses echo all 12 bytes
    rep = codec.decode(c.encode(c.Report(c.SgipSeq(NODE, 1, 2)), (99, 1123000000, 5)))
    assert c.sequence_of(rep) == (99, 1123000000, 5)
    assert c.sequence_of(codec.response_to(rep)) == (99, 1123000000, 5)
    assert codec.error_response(rep, 32).result == 32
    assert isinstance(codec.response_to(c.Unbind(1, 2, 3)), c.UnbindResp)
    assert not codec.is_heartbeat(rep)


def test_adapter_answers_undecodable_requests_with_the_full_echo() -> None:
    codec = SgipSessionCodec(NODE)
    bad = c.encode(c.Report(), (77, 1123000000, 9))[:-1]
    bad = len(bad).to_bytes(4, "big") + bad[4:]
    with pytest.raises(c.ProtocolError) as info:
        codec.decode(bad)
    reply = codec.error_for_frame(info.value)
    assert isinstance(reply, c.ReportResp)
    assert c.sequence_of(reply) == (77, 1123000000, 9) and reply.result == c.RESULT_BAD_PARAMETER_FORMAT
    unknown = c.encode(c.Unbind(), (77, 1, 1))
    unknown = unknown[:4] + (0x1000).to_bytes(4, "big") + unknown[8:]
    with pytest.raises(c.ProtocolError) as info2:
        codec.decode(unknown)
    assert codec.error_for_frame(info2.value) is None  # SGIP has no generic NACK


def test_node_counter_wraps_and_skips_zero() -> None:
    n = NodeCounter(start=0xFFFFFFFF)
    assert [n.next(), n.next()] == [0xFFFFFFFF, 1]
    assert NodeCounter.for_node(5) is NodeCounter.for_node(5)


# -- sessions ---------------------------------------------------------------------------------------


async def test_bind_both_ways_pipelined_submits_and_reports_through_the_sp_listener():
    sim, client, reports = await _pair(FAST, window=64)
    try:
        await client.wait_bound(5)
        assert client.listen_port > 0
        n = 2000
        futs = []
        ids = []
        for i in range(n):
            pdu = _submit(i)
            futs.append(await client.submit(pdu))
            ids.append(carrier_id(pdu))
        resps = await asyncio.gather(*futs)
        assert all(r.result == c.RESULT_OK for r in resps)
        assert len(set(ids)) == n
        assert all(r.node_id == NODE for r in resps)  # the echo of our node id
        await _until(lambda: len(reports) >= n)
        assert all(isinstance(r, c.Report) for r in reports)
        assert {c.format_sequence(r.submit_sequence) for r in reports} == set(ids)
        assert {r.state for r in reports} <= {c.STATE_DELIVERED, c.STATE_FAILED}
        assert all(r.error_code == 0 for r in reports if r.state == c.STATE_DELIVERED)
        assert all(r.error_code != 0 for r in reports if r.state == c.STATE_FAILED)
        await _until(lambda: sim.stats.receipts_pending == 0)  # acknowledged just after the client saw it
        assert sim.stats.receipts_sent == n
        assert sim.stats.submits == n and client.binds == 1
        assert sim.stats.connect_backs >= 1 and client.smg_binds == sim.stats.connect_backs
        # the SMG's Reports carry its own node id in their header
        assert {r.node_id for r in reports} == {sim.config.node_id}
    finally:
        await client.stop()
        await sim.stop()


async def test_submit_with_many_user_numbers_gets_one_report_per_number():
    sim, client, reports = await _pair(FAST)
    try:
        await client.wait_bound(5)
        pdu = _submit(1, users=100)
        resp = await (await client.submit(pdu))
        assert resp.result == 0
        await _until(lambda: len(reports) >= 100)
        assert {r.user_number for r in reports} == set(pdu.user_numbers)
        assert {r.submit_sequence for r in reports} == {c.sequence_of(pdu)}
    finally:
        await client.stop()
        await sim.stop()


async def test_wrong_password_is_a_clear_error_with_backoff_until_stopped():
    sim = SgipSimulator(config=SgipSimulatorConfig(accounts={"sp1": "secret"}))
    port = await sim.start()
    client = SgipClient("127.0.0.1", port, "sp1", "wrong", node_id=NODE, reconnect_min=0.05, reconnect_max=0.2)
    await client.start()
    try:
        with pytest.raises(TimeoutError) as info:
            await client.wait_bound(0.6)
        assert isinstance(client.last_error, BindError)
        assert client.last_error.status == c.RESULT_ILLEGAL_LOGIN
        assert "wrong login name or password" in str(client.last_error)
        assert "Result 1" in str(info.value)
        assert 2 <= sim.stats.bind_failures <= 12  # it kept trying, with backoff
    finally:
        await client.stop()
    tries = sim.stats.bind_failures
    # a control client fails the same way meanwhile; after 5 attempts (its backoff alone spans more
    # than the stopped client's longest wait) every failure counted since must be the control's
    control = SgipClient("127.0.0.1", port, "sp1", "wrong", node_id=NODE, reconnect_min=0.05, reconnect_max=0.2)
    await control.start()
    try:
        await _until(
            lambda: control.failed_attempts >= 5 and sim.stats.bind_failures - tries == control.failed_attempts
        )
    finally:
        await control.stop()
    ok = SgipClient("127.0.0.1", port, "sp1", "secret", node_id=NODE)
    await ok.start()
    await ok.wait_bound(5)
    await ok.stop()
    await sim.stop()


async def test_node_busy_is_throttling_and_resubmits_succeed():
    sim, client, _ = await _pair(SgipSimulatorConfig(throttle_tps=200, receipts=False), window=64)
    try:
        await client.wait_bound(5)
        todo = list(range(600))
        accepted = rounds = 0
        while todo:
            rounds += 1
            futs = [(i, await client.submit(_submit(i))) for i in todo]
            todo = []
            for i, f in futs:
                r = await f
                if r.result == c.RESULT_NODE_BUSY:
                    todo.append(i)
                else:
                    assert r.result == c.RESULT_OK
                    accepted += 1
        assert accepted == 600
        assert client.throttled > 0
        assert sim.stats.submit_results[c.RESULT_NODE_BUSY] == client.throttled
        assert rounds < 50
    finally:
        await client.stop()
        await sim.stop()


async def test_drop_mid_window_recovers_and_pending_reports_arrive_later():
    cfg = SgipSimulatorConfig(receipt_delay=(0.3, 0.4))
    states: list[bool] = []
    sim, client, reports = await _pair(cfg, seed=3, reconnect_min=0.5, window=32, on_state=states.append)
    try:
        await client.wait_bound(5)
        pdus = [_submit(i) for i in range(300)]
        futs = [await client.submit(p) for p in pdus]
        sim.drop_connections()  # some submits are still in the window
        results = await asyncio.gather(*futs, return_exceptions=True)
        answered = {carrier_id(p) for p, r in zip(pdus, results, strict=True) if isinstance(r, c.SubmitResp)}
        lost = [p for p, r in zip(pdus, results, strict=True) if isinstance(r, SessionClosed)]
        assert len(answered) + len(lost) == 300
        await client.wait_bound(5)
        assert client.binds == 2 and states[:3] == [True, False, True]
        # resubmit what was lost with the connection: new sequences, new carrier ids
        refuts = [await client.submit(p) for p in lost]
        assert all(r.result == 0 for r in await asyncio.gather(*refuts))
        expected = answered | {carrier_id(p) for p in lost}
        await _until(lambda: {c.format_sequence(r.submit_sequence) for r in reports} >= expected)
        await _until(lambda: sim.stats.receipts_pending == 0)
        # a submit the SMG had accepted before the drop is reported even if we lost its answer
        assert len({c.format_sequence(r.submit_sequence) for r in reports}) == sim.stats.receipts_sent
    finally:
        await client.stop()
        await sim.stop()


async def test_never_answer_times_out_then_recovers():
    sim, client, _ = await _pair(SgipSimulatorConfig(never_answer=True, receipts=False), request_timeout=0.3)
    try:
        await client.wait_bound(5)
        futs = [await client.submit(_submit(i)) for i in range(5)]
        results = await asyncio.gather(*futs, return_exceptions=True)
        assert all(isinstance(r, RequestTimeout) for r in results)
        assert sim.stats.unanswered == 5
        sim.config.never_answer = False
        r = await (await client.submit(_submit(9)))
        assert r.result == 0 and client.bound and client.binds == 1
    finally:
        await client.stop()
        await sim.stop()


async def test_mo_deliver_ascii_and_ucs2():
    sim, client, got = await _pair(FAST)
    try:
        await client.wait_bound(5)
        await sim.send_mo("13012345678", "106550000123", "TD")
        await sim.send_mo("13012345678", "106550000123", "退订")
        await sim.send_mo("13012345678", "106550000123", "好的", coding=c.CODING_GBK)
        await _until(lambda: len(got) == 3)
        a, b, g = got
        assert isinstance(a, c.Deliver) and a.message_content == b"TD" and a.message_coding == 0
        assert a.user_number == "8613012345678" and a.sp_number == "106550000123"
        assert b.message_coding == 8 and b.message_content.decode("utf-16-be") == "退订"
        assert g.message_coding == 15 and g.message_content.decode("gbk") == "好的"
        await _until(lambda: sim.stats.mo_pending == 0)  # acknowledged just after the client saw it
        assert sim.stats.mo_sent == 3
    finally:
        await client.stop()
        await sim.stop()


async def test_reports_acknowledged_only_when_stored_and_redelivered_on_failure():
    loop = asyncio.get_running_loop()
    seen: list[c.Report] = []

    def store(r: c.Report) -> asyncio.Future[None]:
        seen.append(r)
        fut: asyncio.Future[None] = loop.create_future()
        if len(seen) == 1:
            loop.call_later(0.05, fut.set_exception, RuntimeError("database down"))
        else:
            loop.call_later(0.05, fut.set_result, None)
        return fut

    sim, client, _ = await _pair(FAST, on_deliver=store)
    try:
        await client.wait_bound(5)
        pdu = _submit(1)
        assert (await (await client.submit(pdu))).result == 0
        await _until(lambda: len(seen) >= 2)
        assert seen[0].submit_sequence == seen[1].submit_sequence == c.sequence_of(pdu)
        await _until(lambda: sim.stats.receipts_pending == 0)
        assert sim.stats.receipts_sent == 1
    finally:
        await client.stop()
        await sim.stop()


async def test_unreachable_sp_keeps_reports_and_retries():
    cfg = SgipSimulatorConfig(receipt_delay=(0.0, 0.01), reconnect_min=0.05, reconnect_max=0.2)
    sim = SgipSimulator(config=cfg, seed=5)
    port = await sim.start()
    listen = free_port()
    sim.register_sp("sp1", "127.0.0.1", listen)
    got: list = []
    # the SP's outgoing side runs, its listener does not (yet)
    c1 = SgipClient("127.0.0.1", port, "sp1", "pw", node_id=NODE, listen=False)
    await c1.start()
    try:
        await c1.wait_bound(5)
        pdus = [_submit(i) for i in range(20)]
        assert all(r.result == 0 for r in await asyncio.gather(*[await c1.submit(p) for p in pdus]))
        await _until(lambda: sim.stats.connect_back_failures >= 2)
        assert sim.stats.receipts_pending == 20
    finally:
        await c1.stop()
    # the SP comes back with its listener on the registered port
    c2 = SgipClient("127.0.0.1", port, "sp1", "pw", node_id=NODE, listen_port=listen, on_deliver=got.append)
    await c2.start()
    try:
        await _until(lambda: len(got) >= 20)
        assert {r.submit_sequence for r in got} == {c.sequence_of(p) for p in pdus}
        await _until(lambda: sim.stats.receipts_pending == 0)  # acknowledged just after on_deliver
    finally:
        await c2.stop()
        await sim.stop()


async def test_listener_refuses_wrong_smg_credentials():
    cfg = SgipSimulatorConfig(receipt_delay=(0.0, 0.01), reconnect_min=0.05, reconnect_max=0.1, smg_password="bad")
    sim, client, got = await _pair(cfg, smg_login_name="smg", smg_password="good")
    try:
        await client.wait_bound(5)
        pdu = _submit(1)
        assert (await (await client.submit(pdu))).result == 0
        await _until(lambda: client.smg_bind_failures >= 2)
        assert got == [] and sim.stats.receipts_pending == 1
        sim.register_sp("sp1", "127.0.0.1", client.listen_port, "good")
        await _until(lambda: len(got) == 1)
        assert got[0].submit_sequence == c.sequence_of(pdu)
    finally:
        await client.stop()
        await sim.stop()


async def test_idle_sessions_are_unbound_and_reopened_on_demand():
    # the client's own idle close is what is tested here (the SMG closing first is the connector test's):
    # the simulator's idle timeout is longer, so the two never race
    cfg = SgipSimulatorConfig(receipt_delay=(0.0, 0.01), idle_timeout=5.0)
    sim, client, got = await _pair(cfg, idle_timeout=0.2)
    try:
        await client.wait_bound(5)
        assert (await (await client.submit(_submit(1)))).result == 0
        await _until(lambda: len(got) == 1)
        await _until(lambda: not client.bound and not sim.server.outbound, 3)
        assert client.idle_closes == 1 and client.last_error is None
        # no demand: it stays closed (no connection at the SMG) and is parked, not down
        await _until(lambda: sim.server.gate.open == 0)
        assert client.binds == 1 and client.available and not client.bound
        assert (await (await client.submit(_submit(2)))).result == 0  # reopened by the submit
        assert client.binds == 2
        await _until(lambda: len(got) == 2)
        assert sim.stats.connect_backs == 2
    finally:
        await client.stop()
        await sim.stop()


async def test_smg_unbind_is_graceful_and_next_submit_reconnects():
    sim, client, _ = await _pair(SgipSimulatorConfig(receipts=False))
    try:
        await client.wait_bound(5)
        await asyncio.gather(*(s.close() for s in list(sim.server.sessions)))
        await _until(lambda: not client.bound and sim.server.gate.open == 0)
        assert client.binds == 1 and client.available  # parked until the next submit, not down
        assert (await (await client.submit(_submit(1)))).result == 0
        assert client.binds == 2
    finally:
        await client.stop()
        await sim.stop()
