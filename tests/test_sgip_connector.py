"""SGIP channel connector against the China Unicom simulator over loopback TCP, with a recording sink."""

from __future__ import annotations

import asyncio

from conftest import free_port

import qixin.gateway.connectors  # noqa: F401  (registers the protocol factories)
from qixin.domain.text import decode_payload
from qixin.gateway.channel import FACTORIES, ChannelConnector
from qixin.gateway.sgip_connector import SgipConnector, report_stat, sgip_parts
from qixin.gateway.simulators.sgip import SgipSimulator, SgipSimulatorConfig
from qixin.gateway.simulators.smpp import SimulatorConfig as SmppConfig
from qixin.gateway.simulators.smpp import SmppSimulator
from qixin.protocols.sgip import codec as c
from qixin.services.channels import Channel
from qixin.services.dispatch import Outgoing, Router
from qixin.services.receipts import Failed, Receipt, Submitted

NODE = 3010012345


class Sink:
    """A tiny in-memory Sink: records everything; receipts are 'stored' at once."""

    def __init__(self) -> None:
        self.done: list[Submitted] = []
        self.fails: list[Failed] = []
        self.dropped: list[int] = []
        self.receipts: list[Receipt] = []

    def submitted(self, item: Submitted) -> None:
        self.done.append(item)

    def failed(self, item: Failed) -> None:
        self.fails.append(item)

    def abandoned(self, message_id: int) -> None:
        self.dropped.append(message_id)

    def receipt(self, item: Receipt) -> asyncio.Future[None]:
        self.receipts.append(item)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


async def _until(cond, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def _msg(mid: int, content: str, number: str = "13012345678") -> Outgoing:
    return Outgoing(message_id=mid, number=number, carrier="unicom", content=content, type="notification", account_id=1)


async def _setup(config: SgipSimulatorConfig, **kw) -> tuple[SgipSimulator, SgipConnector, Sink]:
    sim = SgipSimulator(config=config, seed=7)
    port = await sim.start()
    conn = SgipConnector(
        "unicom-1",
        "127.0.0.1",
        port,
        "sp1",
        "pw",
        node_id=NODE,
        sp_number="1065500001",
        corp_id="12345",
        service_type="QXTZ",
        **kw,
    )
    sink = Sink()
    await conn.start(sink)
    sim.register_sp("sp1", "127.0.0.1", conn.listen_port)
    return sim, conn, sink


def test_parts_and_stats_mapping() -> None:
    assert sgip_parts("hello", 0) == (c.CODING_ASCII, [b"hello"], False)
    coding, parts, udhi = sgip_parts("a" * 200, 7)
    assert coding == c.CODING_ASCII and udhi and len(parts) == 2
    assert parts[0][:6] == bytes((5, 0, 3, 7, 2, 1)) and parts[0][6:] == b"a" * 153
    assert parts[1][:6] == bytes((5, 0, 3, 7, 2, 2)) and parts[1][6:] == b"a" * 47
    coding, parts, udhi = sgip_parts("café", 0)  # GSM-7 but not ASCII: UCS-2 on SGIP
    assert coding == c.CODING_UCS2 and parts == ["café".encode("utf-16-be")] and not udhi
    coding, parts, udhi = sgip_parts("验" * 100, 9)
    assert coding == 8 and udhi and [len(p) for p in parts] == [6 + 134, 6 + 66]
    assert "".join(decode_payload(8, p, True)[0] for p in parts) == "验" * 100
    assert report_stat(0, 0) == "DELIVRD"
    assert report_stat(2, 29) == "UNDELIV"
    assert report_stat(1, 0) is None


async def test_long_message_two_parts_one_submitted_receipts_matched():
    cfg = SgipSimulatorConfig(receipt_delay=(0.0, 0.02), outcomes={"DELIVRD": 1.0}, record_submits=True)
    sim, conn, sink = await _setup(cfg)
    try:
        text = "【企信】" + "您的订单已发货，请注意查收。" * 6  # > 70 UCS-2 units: 2 parts
        conn.submit(_msg(1, text))
        conn.submit(_msg(2, "Your code is 123456", number="13112345678"))
        await _until(lambda: len(sink.done) == 2)
        by_id = {s.message_id: s for s in sink.done}
        long_, short = by_id[1], by_id[2]
        assert long_.channel == "unicom-1" and len(long_.carrier_ids) == 2 and len(short.carrier_ids) == 1
        for cid in long_.carrier_ids + short.carrier_ids:
            node, ts, _counter = c.parse_sequence(cid)
            assert node == NODE and 101000000 <= ts <= 1231235959
        # what the simulator received
        subs = sim.submitted
        assert len(subs) == 3
        parts = [s for s in subs if s.user_numbers == ("8613012345678",)]
        assert len(parts) == 2
        assert all(p.tp_udhi == 1 and p.message_coding == 8 and p.report_flag == 1 for p in parts)
        udh = [p.message_content[:6] for p in parts]
        ref = udh[0][3]
        assert udh == [bytes((5, 0, 3, ref, 2, 1)), bytes((5, 0, 3, ref, 2, 2))]
        assert "".join(decode_payload(8, p.message_content, True)[0] for p in parts) == text
        assert [c.format_sequence(c.sequence_of(p)) for p in parts] == long_.carrier_ids
        one = next(s for s in subs if s.user_numbers == ("8613112345678",))
        assert one.tp_udhi == 0 and one.message_coding == 0 and one.message_content == b"Your code is 123456"
        assert (one.sp_number, one.corp_id, one.service_type, one.charge_number) == (
            "1065500001",
            "12345",
            "QXTZ",
            "0" * 21,
        )
        # receipts: one per part, matched by the carrier ids
        await _until(lambda: len(sink.receipts) == 3)
        assert {r.carrier_id for r in sink.receipts} == set(long_.carrier_ids + short.carrier_ids)
        assert {(r.channel, r.stat, r.err) for r in sink.receipts} == {("unicom-1", "DELIVRD", "")}  # no error: ""
        await _until(lambda: sim.stats.receipts_pending == 0)
    finally:
        await conn.stop()
        await sim.stop()


async def test_failures_throttling_and_mo():
    mo: list[tuple[str, str, str]] = []
    cfg = SgipSimulatorConfig(receipt_delay=(0.0, 0.02), outcomes={"UNDELIV": 1.0}, throttle_tps=50)
    sim, conn, sink = await _setup(cfg, on_mo=lambda u, sp, t: mo.append((u, sp, t)))
    try:
        for i in range(120):
            conn.submit(_msg(i, f"notice {i}", number=f"130{i:08d}"))
        await _until(lambda: len(sink.done) == 120, 20)
        assert sink.fails == [] and sink.dropped == []
        assert conn.stats["retries"] > 0 and sim.stats.submit_results[c.RESULT_NODE_BUSY] > 0
        await _until(lambda: len(sink.receipts) == 120)
        assert {r.stat for r in sink.receipts} == {"UNDELIV"}
        assert all(len(r.err) == 3 and r.err.isdigit() and r.err != "000" for r in sink.receipts)
        await sim.send_mo("13012345678", "106550000199", "退订")
        await _until(lambda: len(mo) == 1)
        assert mo == [("13012345678", "106550000199", "退订")]
    finally:
        await conn.stop()
        await sim.stop()


async def test_rejected_submit_fails_and_unanswered_is_retried_then_abandoned():
    cfg = SgipSimulatorConfig(receipts=False, submit_error_rate=1.0)
    sim, conn, sink = await _setup(cfg, retries=1)
    conn.client.request_timeout = 0.2
    try:
        conn.submit(_msg(1, "hi"))
        await _until(lambda: len(sink.fails) == 1)
        assert sink.fails[0].code == "SUBMIT_REJECTED" and "32" in sink.fails[0].detail
        sim.config.submit_error_rate = 0.0
        sim.config.never_answer = True
        conn.client.drop()  # the next session gets the short request timeout
        conn.submit(_msg(2, "hi"))
        await _until(lambda: sink.dropped == [2], 10)
        assert sim.stats.unanswered == 2  # first try + one retry
        sim.config.never_answer = False
        conn.submit(_msg(3, "hi"))
        await _until(lambda: [s.message_id for s in sink.done] == [3], 10)
    finally:
        await conn.stop()
        await sim.stop()


def _channel(
    name: str, protocol: str, port: int, *, carriers: str = "", priority: int = 100, **options: object
) -> Channel:
    return Channel(
        id=hash(name) & 0xFFFF, name=name, protocol=protocol, host="127.0.0.1", port=port, username="sp1",
        secret="pw", service_code="1065500001", options=dict(options), tps=0, window=16, connections=1,
        carriers=frozenset(x for x in carriers.split(",") if x), msg_types=frozenset(), accounts=frozenset(),
        priority=priority, weight=1, enabled=True, embedded=False, version=1,
    )  # fmt: skip


async def test_idle_close_by_the_smg_keeps_the_channel_up_and_traffic_on_sgip():
    """The SMG unbinds an idle SP connection (as real ones do after 30-40 s; 0.3 s here). The channel
    must stay up, the next 联通 message must reopen the connection and go out over SGIP, not over the
    SMPP fallback."""
    sgip_sim = SgipSimulator(config=SgipSimulatorConfig(receipt_delay=(0.0, 0.01), idle_timeout=0.3), seed=3)
    smpp_sim = SmppSimulator(config=SmppConfig(receipt_delay=(0.0, 0.01)), seed=3)
    sgip_port, smpp_port = await sgip_sim.start(), await smpp_sim.start()
    unicom = ChannelConnector(
        _channel("unicom", "sgip", sgip_port, carriers="cucc", node_id=NODE, smg_login_name="smg"), FACTORIES["sgip"]
    )
    fallback = ChannelConnector(_channel("fallback", "smpp", smpp_port, priority=200), FACTORIES["smpp"])
    router = Router([unicom, fallback])
    sink = Sink()
    await unicom.start(sink)
    await fallback.start(sink)
    client = unicom.connections[0].client  # type: ignore[attr-defined]
    sgip_sim.register_sp("sp1", "127.0.0.1", client.listen_port)
    try:

        async def send(mid: int) -> Submitted:
            item = Outgoing(mid, "13012345678", "cucc", f"联通 {mid}", "notification", 1)
            picked = router.pick(item)
            assert picked is not None
            picked.submit(item)
            await _until(lambda: any(s.message_id == mid for s in sink.done))
            return next(s for s in sink.done if s.message_id == mid)

        await _until(lambda: unicom.up and fallback.up)
        assert (await send(1)).channel == "unicom"
        await _until(lambda: len(sink.receipts) == 1)
        # the SMG closes the idle connection with Unbind: normal for SGIP, not an outage
        await _until(lambda: not client.bound and client.binds == 1)
        assert client.available
        health = unicom.health()
        assert health["up"] and health["bound"] == 0 and health["idle"] == 1
        # the next message reopens the connection and goes out over SGIP, twice over
        for mid in (2, 3):
            assert (await send(mid)).channel == "unicom"
            await _until(lambda n=mid: not client.bound and client.binds == n)  # idle-closed again
            assert unicom.up
        assert sgip_sim.stats.submits == 3 and smpp_sim.stats.submits == 0
        # a receipt per submit; a Report whose answer was cut by the idle unbind is sent again (at least
        # once, as SGIP does: the platform drops the repeat), so count distinct carrier ids
        submitted = {cid for s in sink.done for cid in s.carrier_ids}
        await _until(lambda: {r.carrier_id for r in sink.receipts} == submitted)
        assert len(submitted) == 3 and sgip_sim.stats.receipts_sent == 3
        assert not sink.fails and not sink.dropped
    finally:
        await unicom.stop()
        await fallback.stop()
        await sgip_sim.stop()
        await smpp_sim.stop()


async def test_sgip_channel_that_cannot_connect_is_down():
    """Idle is not down, and down is still down: a channel whose SMG is unreachable is not up."""
    dead = free_port()  # nothing listens there
    unicom = ChannelConnector(_channel("unicom", "sgip", dead, carriers="cucc", node_id=NODE), FACTORIES["sgip"])
    sink = Sink()
    await unicom.start(sink)
    client = unicom.connections[0].client  # type: ignore[attr-defined]
    try:
        await _until(lambda: client.last_error is not None)
        assert not client.available and not unicom.up and unicom.health()["idle"] == 0
    finally:
        await unicom.stop()
