"""SmgpConnector against the China Telecom simulator over loopback TCP, with an in-memory sink."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from qixin.domain.text import decode_payload, plan_text
from qixin.gateway.simulators.smgp import SimulatorConfig, SmgpSimulator
from qixin.gateway.smgp_connector import MoMessage, SmgpConnector, smgp_parts
from qixin.protocols.smgp import codec as g
from qixin.services.dispatch import Outgoing
from qixin.services.receipts import Failed, Receipt, Submitted


class Sink:
    def __init__(self) -> None:
        self.submits: list[Submitted] = []
        self.fails: list[Failed] = []
        self.abandons: list[int] = []
        self.receipts: list[Receipt] = []

    def submitted(self, item: Submitted) -> None:
        self.submits.append(item)

    def failed(self, item: Failed) -> None:
        self.fails.append(item)

    def abandoned(self, message_id: int) -> None:
        self.abandons.append(message_id)

    def receipt(self, item: Receipt) -> asyncio.Future[None]:
        self.receipts.append(item)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(fut.set_result, None)  # "stored"
        return fut


async def _until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def _out(mid: int, content: str, number: str = "18912345678") -> Outgoing:
    return Outgoing(mid, number, "telecom", content, "notice", 1)


LONG = "【企信】您的订单已发货，" + "物流单号 SF1234567890，预计明天送达，请保持电话畅通。" * 3  # > 70 UCS-2 units


def test_smgp_parts_formats_and_boundaries() -> None:
    fmt, parts, udhi = smgp_parts("Your code is 123456 {ok} @home_", 0)
    assert (fmt, udhi) == (g.MSG_FORMAT_ASCII, False)
    assert parts == [b"Your code is 123456 {ok} @home_"]
    text = "A" * 150 + "[x]" * 10  # 180 chars, 200 septets: billed 2 parts
    fmt, parts, udhi = smgp_parts(text, 7)
    assert fmt == g.MSG_FORMAT_ASCII and udhi and len(parts) == plan_text(text).parts == 2
    assert [p[:6] for p in parts] == [bytes((5, 0, 3, 7, 2, 1)), bytes((5, 0, 3, 7, 2, 2))]
    assert b"".join(p[6:] for p in parts).decode("ascii") == text
    fmt, parts, udhi = smgp_parts(LONG, 9)
    assert fmt == g.MSG_FORMAT_UCS2 and udhi and len(parts) == plan_text(LONG).parts
    assert "".join(decode_payload(8, p, True)[0] for p in parts) == LONG
    fmt, parts, udhi = smgp_parts("Café £5", 0)  # GSM-7 letters without an ASCII byte
    assert (fmt, udhi, parts) == (g.MSG_FORMAT_UCS2, False, ["Café £5".encode("utf-16-be")])


async def test_long_message_two_parts_receipts_matched_and_mo() -> None:
    assert plan_text(LONG).parts == 2
    sim = SmgpSimulator(
        config=SimulatorConfig(receipt_delay=(0.0, 0.05), accounts={"ct000001": "pw"}, record=100), seed=5
    )
    port = await sim.start()
    mos: list[MoMessage] = []
    conn = SmgpConnector(
        "ct-smgp",
        "127.0.0.1",
        port,
        "ct000001",
        "pw",
        service_id="QXTZ",
        src_term_id="1069000188",
        window=16,
        on_mo=mos.append,
    )
    sink = Sink()
    await conn.start(sink)
    try:
        await conn.client.wait_bound(5)
        conn.submit(_out(1, LONG, "+8618912345678"))
        conn.submit(_out(2, "Your code is 123456"))
        await _until(lambda: len(sink.submits) == 2)
        by_id = {s.message_id: s for s in sink.submits}
        assert len(by_id[1].carrier_ids) == 2 and len(by_id[2].carrier_ids) == 1
        assert all(len(c) == 20 and c.isdigit() for s in sink.submits for c in s.carrier_ids)
        assert by_id[1].channel == "ct-smgp"

        # what the simulator received
        subs = list(sim.submitted)
        assert len(subs) == 3
        p1, p2, short = subs
        for n, p in enumerate((p1, p2), 1):
            assert p.dest_term_ids == ("18912345678",) and p.src_term_id == "1069000188"
            assert p.service_id == "QXTZ" and p.need_report == 1 and p.msg_format == g.MSG_FORMAT_UCS2
            assert g.get_tlv_int(p.tlvs, g.TAG_TP_UDHI) == 1
            assert g.get_tlv_int(p.tlvs, g.TAG_PK_TOTAL) == 2 and g.get_tlv_int(p.tlvs, g.TAG_PK_NUMBER) == n
        ref = p1.msg_content[3]
        assert p1.msg_content[:6] == bytes((5, 0, 3, ref, 2, 1)) and p2.msg_content[:6] == bytes((5, 0, 3, ref, 2, 2))
        assert decode_payload(8, p1.msg_content, True)[0] + decode_payload(8, p2.msg_content, True)[0] == LONG
        assert short.msg_format == g.MSG_FORMAT_ASCII and short.msg_content == b"Your code is 123456"
        assert g.get_tlv_int(short.tlvs, g.TAG_TP_UDHI) is None
        assert g.get_tlv_int(short.tlvs, g.TAG_PK_TOTAL) == 1

        # every carrier id gets exactly its receipt, acknowledged once the sink stored it
        await _until(lambda: len(sink.receipts) == 3)
        assert sorted(r.carrier_id for r in sink.receipts) == sorted(by_id[1].carrier_ids + by_id[2].carrier_ids)
        assert all(r.channel == "ct-smgp" and r.stat in {"DELIVRD", "UNDELIV", "EXPIRED"} for r in sink.receipts)
        await _until(lambda: sim.stats.receipts_pending == 0)

        # MO to the channel's service code + extension
        await sim.send_mo("18912345678", "106900018801", "退订")
        await _until(lambda: len(mos) == 1)
        mo = mos[0]
        assert (mo.channel, mo.source, mo.destination, mo.text) == ("ct-smgp", "18912345678", "106900018801", "退订")
        assert sink.fails == [] and sink.abandons == []
    finally:
        await conn.stop()
        await sim.stop()


async def test_throttled_drop_and_rejections_reach_the_sink() -> None:
    sim = SmgpSimulator(config=SimulatorConfig(throttle_tps=100, receipt_delay=(0.0, 0.05)), seed=6)
    port = await sim.start()
    sink = Sink()
    conn = SmgpConnector("ct", "127.0.0.1", port, "ct000001", "pw", window=32, retries=8)
    await conn.start(sink)
    try:
        await conn.client.wait_bound(5)
        for i in range(300):
            conn.submit(_out(i, f"code {i}"))
        await _until(lambda: sim.stats.submits >= 50)
        sim.drop_connections()  # mid-window
        await _until(lambda: len(sink.submits) + len(sink.abandons) == 300, 20)
        assert sink.abandons == [] and sink.fails == []
        assert len({s.message_id for s in sink.submits}) == 300
        assert conn.client.throttled > 0 and conn.stats["retries"] > 0
        ids = {c for s in sink.submits for c in s.carrier_ids}
        await _until(lambda: {r.carrier_id for r in sink.receipts} >= ids, 20)
        # a permanent refusal is a failure, not a retry
        sim.config.throttle_tps = None
        sim.config.submit_error_rate = 1.0
        conn.submit(_out(1000, "refused"))
        await _until(lambda: len(sink.fails) == 1)
        assert sink.fails[0].message_id == 1000 and sink.fails[0].code == "SUBMIT_REJECTED"
        assert sink.fails[0].detail.startswith("39 ")
    finally:
        await conn.stop()
        await sim.stop()


async def test_never_answering_gateway_loses_nothing_once_it_recovers() -> None:
    sim = SmgpSimulator(config=SimulatorConfig(never_answer=True, receipt_delay=(0.0, 0.02)))
    port = await sim.start()
    sink = Sink()
    conn = SmgpConnector("ct", "127.0.0.1", port, "ct000001", "pw", window=8, retries=10, request_timeout=0.2)
    await conn.start(sink)
    try:
        await conn.client.wait_bound(5)
        for i in range(20):
            conn.submit(_out(i, f"code {i}"))
        await _until(lambda: conn.client.timeouts >= 8)
        assert sink.submits == [] and sink.abandons == []
        sim.config.never_answer = False
        await _until(lambda: len(sink.submits) == 20)
        assert sorted(s.message_id for s in sink.submits) == list(range(20)) and sink.abandons == []
        assert sim.stats.unanswered >= 8
        await _until(lambda: len(sink.receipts) == 20)
    finally:
        await conn.stop()
        await sim.stop()


@pytest.mark.parametrize("number", ["18912345678", "8618912345678", "+8618912345678"])
def test_dest_term_id_is_the_11_digit_number(number: str) -> None:
    from qixin.gateway.smgp_connector import _dest

    assert _dest(number) == "18912345678"
