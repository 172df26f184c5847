"""CmppConnector against the CMPP simulator over real loopback TCP, with an in-memory test sink."""

from __future__ import annotations

import asyncio

import pytest

from qixin.gateway.cmpp_connector import CmppConnector, carrier_id
from qixin.gateway.simulators.cmpp import CmppSimulator, SimulatorConfig
from qixin.protocols.cmpp.codec import (
    RESULT_BAD_SERVICE_ID,
    VERSION_20,
    VERSION_30,
    Submit,
    unpack_msg_id,
)
from qixin.protocols.cmpp.text import decode_content, encode_text
from qixin.services.dispatch import Outgoing
from qixin.services.receipts import Failed, Receipt, Submitted

SP = "901234"


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
        f: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        f.set_result(None)
        return f


async def _until(cond, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def _out(mid: int, content: str, number: str = "13800138000") -> Outgoing:
    return Outgoing(message_id=mid, number=number, carrier="cmcc", content=content, type="notice", account_id=1)


@pytest.mark.parametrize("version", [VERSION_30, VERSION_20])
async def test_long_message_parts_udh_and_receipts(version: int) -> None:
    sim = CmppSimulator(config=SimulatorConfig(receipt_delay=(0.0, 0.02), outcomes={"DELIVRD": 1.0}))
    seen: list[tuple[Submit, int]] = []
    sim.on_submit = lambda pdu, msg_id: seen.append((pdu, msg_id))
    port = await sim.start()
    sink = Sink()
    conn = CmppConnector(
        "cmpp-test", "127.0.0.1", port, SP, "secret", version=version, service_id="MJS0019905", src_id="1065800"
    )
    await conn.start(sink)
    try:
        long_text = "【企信】" + "您的验证码是123456，五分钟内有效，请勿告诉他人。" * 3  # > 70 UCS-2 units
        conn.submit(_out(1, long_text, "+8613800138000"))
        conn.submit(_out(2, "Your code is 123456 @ $ _ {ok}"))
        await _until(lambda: len(sink.submits) == 2)
        by_id = {s.message_id: s for s in sink.submits}
        assert len(by_id[1].carrier_ids) == 2 and len(by_id[2].carrier_ids) == 1
        assert all(s.channel == "cmpp-test" for s in sink.submits)

        # decode at the simulator side: UDH, Pk_total / Pk_number, Msg_Fmt, fields
        parts = sorted(
            (p for p, _ in seen if p.dest_terminal_ids == ("13800138000",) and p.pk_total == 2),
            key=lambda p: p.pk_number,
        )
        assert [p.pk_number for p in parts] == [1, 2]
        texts = []
        refs = set()
        for p in parts:
            assert p.tp_udhi == 1 and p.msg_fmt == 8 and p.registered_delivery == 1
            assert p.msg_content[:3] == bytes((5, 0, 3))  # 8-bit reference concatenation IE
            assert p.msg_content[4:6] == bytes((2, p.pk_number))
            refs.add(p.msg_content[3])
            assert p.msg_src == SP and p.src_id == "1065800" and p.service_id == "MJS0019905"
            text, concat = decode_content(p.msg_fmt, p.msg_content, True)
            assert concat is not None and (concat.total, concat.seq) == (2, p.pk_number)
            texts.append(text)
        assert len(refs) == 1 and "".join(texts) == long_text
        (short,) = [p for p, _ in seen if p.pk_total == 1]
        assert short.msg_fmt == 0 and short.tp_udhi == 0
        assert short.msg_content == b"Your code is 123456 @ $ _ {ok}"  # ASCII, not GSM-7 septets

        # carrier ids are the SUBMIT_RESP Msg_Ids in decimal, and every receipt matches one
        assert sorted(by_id[1].carrier_ids + by_id[2].carrier_ids) == sorted(carrier_id(m) for _, m in seen)
        await _until(lambda: len(sink.receipts) == 3)
        assert {r.carrier_id for r in sink.receipts} == set(by_id[1].carrier_ids + by_id[2].carrier_ids)
        assert {(r.channel, r.stat, r.err) for r in sink.receipts} == {("cmpp-test", "DELIVRD", "")}
        assert unpack_msg_id(int(sink.receipts[0].carrier_id)).gateway_id == sim.config.gateway_id
        await _until(lambda: sim.stats.receipts_pending == 0)
        assert sink.fails == [] and sink.abandons == []
    finally:
        await conn.stop()
        await sim.stop()


async def test_failure_stats_rejections_and_flow_control() -> None:
    sim = CmppSimulator(
        config=SimulatorConfig(receipt_delay=(0.0, 0.02), outcomes={"MK:0005": 1.0}, throttle_tps=100), seed=5
    )
    port = await sim.start()
    sink = Sink()
    conn = CmppConnector("cm", "127.0.0.1", port, SP, "secret", window=32)
    await conn.start(sink)
    try:
        for i in range(300):  # beyond the simulator's 100/s (burst and rate): flow control, retried
            conn.submit(_out(i, f"hello {i}", f"139{i:08d}"))
        await _until(lambda: len(sink.submits) == 300, 20)
        assert sim.stats.submit_resps[8] > 0 and conn.client.throttled > 0
        await _until(lambda: len(sink.receipts) == 300)
        assert {r.stat for r in sink.receipts} == {"MK:0005"}
        sim.config.throttle_tps = None
        sim.config.submit_error_rate = 1.0
        sim.config.submit_error_result = RESULT_BAD_SERVICE_ID
        conn.submit(_out(1000, "rejected"))
        await _until(lambda: len(sink.fails) == 1)
        assert sink.fails[0].message_id == 1000 and sink.fails[0].code == "SUBMIT_REJECTED"
        assert "7" in sink.fails[0].detail
    finally:
        await conn.stop()
        await sim.stop()


async def test_mo_decoded_reassembled_and_acknowledged_after_on_mo() -> None:
    sim = CmppSimulator(config=SimulatorConfig(receipts=False))
    port = await sim.start()
    got: list[tuple[str, str, str]] = []
    loop = asyncio.get_running_loop()

    def on_mo(dest: str, src: str, text: str) -> asyncio.Future[None]:
        got.append((dest, src, text))
        f: asyncio.Future[None] = loop.create_future()
        loop.call_later(0.05, f.set_result, None)
        return f

    conn = CmppConnector("cm", "127.0.0.1", port, SP, "secret", on_mo=on_mo)
    await conn.start(Sink())
    try:
        await conn.client.wait_bound(5)
        long_reply = "好的，收到，谢谢！" * 12  # 108 characters: 2 parts
        await sim.send_mo("13800138000", "10658001234", "TD")
        await sim.send_mo("13800138001", "10658001235", long_reply)
        await _until(lambda: len(got) == 2)
        assert got[0] == ("10658001234", "13800138000", "TD")
        assert got[1] == ("10658001235", "13800138001", long_reply)
        await _until(lambda: sim.stats.mo_pending == 0)
        assert sim.stats.mo_sent == 3 and conn.stats["mo"] == 2
    finally:
        await conn.stop()
        await sim.stop()


async def test_parts_lost_with_the_connection_are_resubmitted() -> None:
    sim = CmppSimulator(config=SimulatorConfig(receipts=False, never_answer=True))
    port = await sim.start()
    sink = Sink()
    conn = CmppConnector("cm", "127.0.0.1", port, SP, "secret", request_timeout=0.2, retries=10)
    await conn.start(sink)
    try:
        await conn.client.wait_bound(5)
        for i in range(10):
            conn.submit(_out(i, f"hello {i}"))
        await _until(lambda: sim.stats.unanswered >= 10)
        sim.config.never_answer = False
        sim.drop_connections()
        await _until(lambda: len(sink.submits) == 10, 15)
        assert sorted(s.message_id for s in sink.submits) == list(range(10))
        assert sink.abandons == [] and conn.stats["retries"] >= 10
    finally:
        await conn.stop()
        await sim.stop()


def test_encode_text_keeps_billed_parts_for_ascii() -> None:
    fmt, parts, udhi = encode_text("x" * 161, 3)
    assert (fmt, len(parts), udhi) == (0, 2, True)
    assert parts[0][:6] == bytes((5, 0, 3, 3, 2, 1)) and parts[0][6:] == b"x" * 153
