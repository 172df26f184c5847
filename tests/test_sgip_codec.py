"""SGIP 1.2 codec: hand-built byte vectors from the published layouts, round trips, fuzzing."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qixin.protocols.errors import PduError
from qixin.protocols.sgip import codec as s

NODE, TS = 3000012345, 1123102030


def z(v: bytes | str, n: int) -> bytes:
    raw = v.encode() if isinstance(v, str) else v
    assert len(raw) <= n
    return raw + b"\x00" * (n - len(raw))


def frame(command_id: int, counter: int, body: bytes, node: int = NODE, ts: int = TS) -> bytes:
    return struct.pack(">IIIII", 20 + len(body), command_id, node, ts, counter) + body


# --------------------------------------------------------------------------------------------------
# Byte vectors


def test_bind_vector() -> None:
    expected = (
        bytes.fromhex("0000003D")  # Message Length 61 = 20 + 41
        + bytes.fromhex("00000001")  # SGIP_BIND
        + NODE.to_bytes(4, "big")  # sequence: node id
        + TS.to_bytes(4, "big")  # sequence: MMDDhhmmss
        + bytes.fromhex("00000001")  # sequence: counter
        + b"\x01"  # Login Type: SP -> SMG
        + z("sp0001", 16)
        + z("secret", 16)
        + z("", 8)
    )
    pdu = s.Bind(login_type=1, login_name="sp0001", login_password="secret")
    assert s.encode(pdu, s.SgipSeq(NODE, TS, 1)) == expected
    decoded = s.decode(expected)
    assert decoded == s.Bind(1, "sp0001", "secret", "", NODE, TS, 1)
    assert s.sequence_of(decoded) == (NODE, TS, 1)
    assert s.read_header(expected) == (61, 1, s.SgipSeq(NODE, TS, 1))


def test_bind_resp_and_unbind_vectors() -> None:
    resp = frame(0x80000001, 1, b"\x00" + z("", 8))
    assert len(resp) == 29
    assert s.encode(s.BindResp(0), (NODE, TS, 1)) == resp
    assert s.decode(resp) == s.BindResp(0, "", NODE, TS, 1)
    assert s.encode(s.Unbind(NODE, TS, 9)) == frame(0x2, 9, b"")
    assert s.encode(s.UnbindResp(), s.SgipSeq(NODE, TS, 9)) == frame(0x80000002, 9, b"")


def test_submit_vector_one_user() -> None:
    content = "验证码1234".encode("utf-16-be")
    body = (
        z("1065502", 21)  # SPNumber
        + z("000000000000000000000", 21)  # ChargeNumber (21 zeros: the SP pays)
        + b"\x01"  # UserCount
        + z("8613012345678", 21)  # UserNumber
        + z("12345", 5)  # CorpId
        + z("QX", 10)  # ServiceType
        + b"\x01"  # FeeType
        + z("0", 6)  # FeeValue
        + z("0", 6)  # GivenValue
        + b"\x00"  # AgentFlag
        + b"\x02"  # MorelatetoMTFlag
        + b"\x00"  # Priority
        + z("", 16)  # ExpireTime
        + z("", 16)  # ScheduleTime
        + b"\x01"  # ReportFlag
        + b"\x00"  # TP_pid
        + b"\x00"  # TP_udhi
        + b"\x08"  # MessageCoding UCS2
        + b"\x00"  # MessageType
        + struct.pack(">I", len(content))  # MessageLength (4 bytes)
        + content
        + z("", 8)  # Reserve
    )
    assert len(body) == 123 + 21 + len(content)
    expected = frame(0x3, 77, body)
    pdu = s.Submit(
        sp_number="1065502",
        charge_number="0" * 21,
        user_numbers=("8613012345678",),
        corp_id="12345",
        service_type="QX",
        fee_type=1,
        fee_value="0",
        given_value="0",
        morelateto_mt_flag=2,
        report_flag=1,
        message_coding=8,
        message_content=content,
    )
    assert s.encode(pdu, s.SgipSeq(NODE, TS, 77)) == expected
    assert s.decode(expected) == dataclasses.replace(pdu, node_id=NODE, timestamp=TS, sequence=77)


def test_deliver_vector() -> None:
    body = (
        z("8613012345678", 21)
        + z("10655021", 21)
        + b"\x00\x00\x0f"  # TP_pid, TP_udhi, MessageCoding GBK
        + struct.pack(">I", 4)
        + "退订".encode("gbk")
        + z("", 8)
    )
    expected = frame(0x4, 2, body)
    pdu = s.Deliver("8613012345678", "10655021", 0, 0, 15, "退订".encode("gbk"), "", NODE, TS, 2)
    assert s.encode(pdu) == expected
    assert s.decode(expected) == pdu


def test_report_vector() -> None:
    body = (
        struct.pack(">III", NODE, TS, 77)  # SubmitSequenceNumber (12)
        + b"\x00"  # ReportType: report on a Submit
        + z("8613012345678", 21)
        + b"\x02"  # State: failed
        + b"\x1d"  # ErrorCode 29: unknown user
        + z("", 8)
    )
    assert len(body) == 44
    expected = frame(0x5, 3, body, node=2000012345)
    pdu = s.Report(s.SgipSeq(NODE, TS, 77), 0, "8613012345678", s.STATE_FAILED, s.RESULT_UNKNOWN_USER)
    assert s.encode(pdu, s.SgipSeq(2000012345, TS, 3)) == expected
    assert s.decode(expected) == dataclasses.replace(pdu, node_id=2000012345, timestamp=TS, sequence=3)


def test_userrpt_vector() -> None:
    body = z("10655021", 21) + z("8613012345678", 21) + b"\x00" + z("", 8)
    assert len(body) == 51
    expected = frame(0x11, 4, body)
    pdu = s.Userrpt("10655021", "8613012345678", 0, "", NODE, TS, 4)
    assert s.encode(pdu) == expected
    assert s.decode(expected) == pdu
    assert s.decode(frame(0x80000011, 4, b"\x00" + z("", 8))) == s.UserrptResp(0, "", NODE, TS, 4)


def test_constants_and_helpers() -> None:
    assert s.HEADER_SIZE == 20
    assert s.HEARTBEAT_ID is None  # SGIP has no active test
    assert s.TERMINATE_ID == 0x2
    assert s.RESPONSE_OF[s.USERRPT] == 0x80000011
    for req, resp in s.RESPONSE_OF.items():
        assert resp == req | 0x80000000
    assert issubclass(s.ProtocolError, PduError)
    assert s.sgip_timestamp(11, 23, 10, 20, 30) == TS
    assert s.add_country_code("13012345678") == "8613012345678"
    assert s.add_country_code("8613012345678") == "8613012345678"
    assert s.strip_country_code("8613012345678") == "13012345678"
    assert s.strip_country_code("10655021") == "10655021"
    # responses of different commands never compare equal
    assert s.SubmitResp() != s.DeliverResp()


# --------------------------------------------------------------------------------------------------
# Malformed input


def test_length_mismatch_is_rejected_clearly() -> None:
    good = s.encode(s.Unbind(), 1)
    with pytest.raises(s.ProtocolError, match="declared Message Length 21 does not match the frame size 20"):
        s.decode(struct.pack(">I", 21) + good[4:])


def test_bad_bodies() -> None:
    with pytest.raises(s.ProtocolError, match="Bind: body is 40 bytes, the layout requires 41") as info:
        s.decode(frame(0x1, 5, b"\x01" + b"\x00" * 39))
    assert (info.value.command_id, info.value.sequence) == (s.BIND, 5)
    with pytest.raises(s.ProtocolError, match="UserCount 101 exceeds 100"):
        s.decode(frame(0x3, 1, b"\x00" * 42 + b"\x65" + b"\x00" * 3000))
    deliver = bytearray(s.encode(s.Deliver(message_content=b"abc"), 1))
    deliver[20 + 45 : 20 + 49] = struct.pack(">I", 0xFFFFFFFF)
    with pytest.raises(s.ProtocolError, match="MessageLength 4294967295"):
        s.decode(bytes(deliver))
    with pytest.raises(s.ProtocolError, match="unknown SGIP Command ID 0x00001000"):
        s.decode(frame(0x1000, 1, b""))


def test_read_header_rejects_insane_lengths() -> None:
    with pytest.raises(s.ProtocolError, match="Message Length 12 outside 20"):
        s.read_header(struct.pack(">IIIII", 12, 1, 0, 0, 0))
    with pytest.raises(s.ProtocolError, match="need 20 bytes"):
        s.read_header(b"\x00" * 19)


def test_encode_rejects_what_does_not_fit() -> None:
    with pytest.raises(s.ProtocolError, match="exceed 100"):
        s.encode(s.Submit(user_numbers=("8613012345678",) * 101), 1)
    with pytest.raises(s.ProtocolError, match="Login Name"):
        s.encode(s.Bind(login_name="x" * 17), 1)
    with pytest.raises(s.ProtocolError, match="out of range"):
        s.encode(s.Bind(login_type=256), 1)


# --------------------------------------------------------------------------------------------------
# Properties


def octet(n: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=n)


u8 = st.integers(0, 0xFF)
u32 = st.integers(0, 0xFFFFFFFF)
seqs = {"node_id": u32, "timestamp": u32, "sequence": u32}


def resp(cls: type) -> st.SearchStrategy[s.Pdu]:
    return st.builds(cls, result=u8, reserve=octet(8), **seqs)


pdus: st.SearchStrategy[s.Pdu] = st.one_of(
    st.builds(s.Bind, login_type=u8, login_name=octet(16), login_password=octet(16), reserve=octet(8), **seqs),
    resp(s.BindResp),
    st.builds(s.Unbind, **seqs),
    st.builds(s.UnbindResp, **seqs),
    st.builds(
        s.Submit,
        sp_number=octet(21),
        charge_number=octet(21),
        user_numbers=st.lists(octet(21), max_size=5).map(tuple),
        corp_id=octet(5),
        service_type=octet(10),
        fee_type=u8,
        fee_value=octet(6),
        given_value=octet(6),
        agent_flag=u8,
        morelateto_mt_flag=u8,
        priority=u8,
        expire_time=octet(16),
        schedule_time=octet(16),
        report_flag=u8,
        tp_pid=u8,
        tp_udhi=u8,
        message_coding=u8,
        message_type=u8,
        message_content=st.binary(max_size=300),
        reserve=octet(8),
        **seqs,
    ),
    resp(s.SubmitResp),
    st.builds(
        s.Deliver,
        user_number=octet(21),
        sp_number=octet(21),
        tp_pid=u8,
        tp_udhi=u8,
        message_coding=u8,
        message_content=st.binary(max_size=300),
        reserve=octet(8),
        **seqs,
    ),
    resp(s.DeliverResp),
    st.builds(
        s.Report,
        submit_sequence=st.builds(s.SgipSeq, u32, u32, u32),
        report_type=u8,
        user_number=octet(21),
        state=u8,
        error_code=u8,
        reserve=octet(8),
        **seqs,
    ),
    resp(s.ReportResp),
    st.builds(s.Userrpt, sp_number=octet(21), user_number=octet(21), user_condition=u8, reserve=octet(8), **seqs),
    resp(s.UserrptResp),
)


@given(pdus)
@settings(max_examples=300)
def test_round_trip(pdu: s.Pdu) -> None:
    assert s.decode(s.encode(pdu)) == pdu


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_random_bytes_raise_only_protocol_error(data: bytes) -> None:
    try:
        s.decode(data)
    except s.ProtocolError:
        pass


@given(st.sampled_from(sorted(s.RESPONSE_OF) + sorted(s.RESPONSE_OF.values())), st.binary(max_size=400))
@settings(max_examples=300)
def test_random_bodies_with_valid_header_raise_only_protocol_error(command_id: int, body: bytes) -> None:
    try:
        s.decode(frame(command_id, 1, body))
    except s.ProtocolError:
        pass


@given(pdus, st.data())
@settings(max_examples=200)
def test_truncated_frames_are_rejected(pdu: s.Pdu, data: st.DataObject) -> None:
    raw = s.encode(pdu)
    if len(raw) > 20:
        cut = data.draw(st.integers(20, len(raw) - 1))
        with pytest.raises(s.ProtocolError):
            s.decode(struct.pack(">I", cut) + raw[4:cut])
    with pytest.raises(s.ProtocolError):
        s.decode(struct.pack(">I", len(raw) + 1) + raw[4:] + b"\x00")
