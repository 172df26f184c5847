"""SMGP 3.0 codec: hand-built byte vectors from the published layouts, round trips, fuzzing."""

from __future__ import annotations

import dataclasses
import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qixin.protocols.errors import PduError
from qixin.protocols.smgp import codec as g


def z(v: bytes | str, n: int) -> bytes:
    raw = v.encode() if isinstance(v, str) else v
    assert len(raw) <= n
    return raw + b"\x00" * (n - len(raw))


def frame(request_id: int, seq: int, body: bytes) -> bytes:
    return struct.pack(">III", 12 + len(body), request_id, seq) + body


# SMGW code 123456, 11-23 10:20, sequence 7 -> digits 123456 11231020 000007
MSG_ID = bytes.fromhex("12345611231020000007")


# --------------------------------------------------------------------------------------------------
# Byte vectors


def test_login_vector() -> None:
    auth = hashlib.md5(b"12345678" + b"\x00" * 7 + b"pass" + b"1123102030").digest()
    expected = (
        bytes.fromhex("0000002A")  # PacketLength 42 = 12 + 30
        + bytes.fromhex("00000001")  # Login
        + bytes.fromhex("00000001")  # SequenceID
        + b"12345678"  # ClientID 8
        + auth  # AuthenticatorClient 16
        + b"\x02"  # LoginMode: transmit
        + (1123102030).to_bytes(4, "big")  # TimeStamp
        + b"\x30"  # ClientVersion
    )
    assert g.smgp_authenticator_client("12345678", "pass", 1123102030) == auth
    assert g.smgp_timestamp(11, 23, 10, 20, 30) == 1123102030
    pdu = g.Login("12345678", auth, g.LOGIN_MODE_TRANSMIT, 1123102030, 0x30)
    assert g.encode(pdu, 1) == expected
    assert g.decode(expected) == dataclasses.replace(pdu, sequence=1)


def test_login_resp_vector() -> None:
    auth_client = hashlib.md5(b"12345678" + b"\x00" * 7 + b"pass" + b"1123102030").digest()
    server = hashlib.md5(b"\x00\x00\x00\x00" + auth_client + b"pass").digest()
    assert g.smgp_authenticator_server(0, auth_client, "pass") == server
    expected = bytes.fromhex("00000021 80000001 00000001 00000000") + server + b"\x30"
    assert g.encode(g.LoginResp(0, server, 0x30), 1) == expected
    assert g.decode(expected) == g.LoginResp(0, server, 0x30, sequence=1)


def test_submit_vector_one_number_with_tlvs() -> None:
    content = b"Your code is 1234"
    body = (
        b"\x06"  # MsgType MT
        + b"\x01"  # NeedReport
        + b"\x00"  # Priority
        + z("QXTZ", 10)  # ServiceID
        + b"00"  # FeeType 2
        + z("000000", 6)  # FeeCode
        + z("000000", 6)  # FixedFee
        + b"\x00"  # MsgFormat ASCII
        + z("", 17)  # ValidTime
        + z("", 17)  # AtTime
        + z("10659001", 21)  # SrcTermID
        + z("", 21)  # ChargeTermID
        + b"\x01"  # DestTermIDCount
        + z("13312345678", 21)  # DestTermID
        + bytes([len(content)])  # MsgLength 1 byte
        + content
        + z("", 8)  # Reserve
        + bytes.fromhex("0001 0001 00")  # TLV TP_pid = 0
        + bytes.fromhex("0002 0001 00")  # TLV TP_udhi = 0
        + bytes.fromhex("0009 0001 01")  # TLV PkTotal = 1
        + bytes.fromhex("000A 0001 01")  # TLV PkNumber = 1
        + bytes.fromhex("0003 0014")
        + z("LINK1", 20)  # TLV LinkID, 20 bytes
    )
    expected = frame(0x2, 99, body)
    pdu = g.Submit(
        msg_type=6,
        need_report=1,
        priority=0,
        service_id="QXTZ",
        fee_type="00",
        fee_code="000000",
        fixed_fee="000000",
        msg_format=0,
        src_term_id="10659001",
        dest_term_ids=("13312345678",),
        msg_content=content,
        tlvs=(
            g.tlv_u8(g.TAG_TP_PID, 0),
            g.tlv_u8(g.TAG_TP_UDHI, 0),
            g.tlv_u8(g.TAG_PK_TOTAL, 1),
            g.tlv_u8(g.TAG_PK_NUMBER, 1),
            g.tlv_str(g.TAG_LINK_ID, "LINK1"),
        ),
    )
    assert g.encode(pdu, 99) == expected
    decoded = g.decode(expected)
    assert decoded == dataclasses.replace(pdu, sequence=99)
    assert isinstance(decoded, g.Submit)
    assert g.get_tlv_int(decoded.tlvs, g.TAG_PK_TOTAL) == 1
    assert g.get_tlv_str(decoded.tlvs, g.TAG_LINK_ID) == "LINK1"
    assert g.get_tlv(decoded.tlvs, g.TAG_MSG_SRC) is None


def test_submit_resp_vector() -> None:
    expected = bytes.fromhex("0000001A 80000002 00000063") + MSG_ID + bytes.fromhex("00000000")
    assert g.encode(g.SubmitResp(MSG_ID, 0), 99) == expected
    assert g.decode(expected) == g.SubmitResp(MSG_ID, 0, sequence=99)


def test_deliver_report_vector() -> None:
    report_text = (
        b"id:"
        + MSG_ID
        + b" sub:001 dlvrd:001 Submit date:2311231020 done date:2311231021 Stat:DELIVRD err:000 Txt:Your code"
    )
    body = (
        bytes.fromhex("00000000000000000001")  # MsgID of the Deliver
        + b"\x01"  # IsReport
        + b"\x00"  # MsgFormat
        + b"20231123102100"  # RecvTime 14
        + z("13312345678", 21)  # SrcTermID
        + z("10659001", 21)  # DestTermID
        + bytes([len(report_text)])
        + report_text
        + z("", 8)
    )
    expected = frame(0x3, 5, body)
    report = g.Report(MSG_ID, "001", "001", "2311231020", "2311231021", "DELIVRD", "000", b"Your code")
    assert g.encode_report(report) == report_text
    pdu = g.Deliver(
        msg_id=bytes.fromhex("00000000000000000001"),
        is_report=1,
        recv_time="20231123102100",
        src_term_id="13312345678",
        dest_term_id="10659001",
        msg_content=report_text,
    )
    assert g.encode(pdu, 5) == expected
    decoded = g.decode(expected)
    assert isinstance(decoded, g.Deliver)
    assert decoded == dataclasses.replace(pdu, sequence=5)
    assert g.decode_report(decoded.msg_content) == report


def test_report_parser_tolerates_variants() -> None:
    variants = [
        b"id:" + MSG_ID + b" sub:001 dlvrd:001 Submit_date:2311231020 done_date:2311231021 Stat:DELIVRD err:000 Txt:",
        b"Id:" + MSG_ID + b" Sub:001 Dlvrd:001 submit date:2311231020 done date:2311231021 stat:DELIVRD Err:000 Text:",
        b"id:" + MSG_ID + b" sub:001 dlvrd:001 Submit_date:2311231020 done_date:2311231021 Stat:DELIVRD err:000",
        b"id:12345611231020000007 sub:001 dlvrd:001 Submit date:2311231020 done date:2311231021 Stat:DELIVRD "
        b"err:000 Txt:",
    ]
    for raw in variants:
        r = g.decode_report(raw)
        assert (r.msg_id, r.stat, r.err, r.submit_date, r.done_date) == (
            MSG_ID,
            "DELIVRD",
            "000",
            "2311231020",
            "2311231021",
        ), raw
    with pytest.raises(g.ProtocolError, match="does not start with 'id:'"):
        g.decode_report(b"hello")
    with pytest.raises(g.ProtocolError, match="unrecognised layout"):
        g.decode_report(b"id:" + MSG_ID + b" something else")


def test_msg_id_bcd() -> None:
    assert g.pack_msg_id(123456, 11, 23, 10, 20, 7) == MSG_ID
    assert g.unpack_msg_id(MSG_ID) == (123456, 11, 23, 10, 20, 7)
    assert g.msg_id_hex(MSG_ID) == "12345611231020000007"
    with pytest.raises(g.ProtocolError, match="not BCD"):
        g.unpack_msg_id(bytes.fromhex("1234561123102000000A"))
    with pytest.raises(g.ProtocolError, match="10 bytes"):
        g.unpack_msg_id(b"\x00" * 9)
    with pytest.raises(g.ProtocolError, match="smgw_code"):
        g.pack_msg_id(1_000_000, 1, 1, 0, 0, 0)


@given(
    st.tuples(
        st.integers(0, 999999),
        st.integers(1, 12),
        st.integers(1, 31),
        st.integers(0, 23),
        st.integers(0, 59),
        st.integers(0, 999999),
    )
)
@settings(max_examples=200)
def test_msg_id_round_trip(parts: tuple[int, int, int, int, int, int]) -> None:
    assert g.unpack_msg_id(g.pack_msg_id(*parts)) == parts


def test_small_pdus_and_constants() -> None:
    assert g.encode(g.ActiveTest(), 1) == bytes.fromhex("0000000C 00000004 00000001")
    assert g.encode(g.ActiveTestResp(), 1) == bytes.fromhex("0000000C 80000004 00000001")
    assert g.encode(g.Exit(), 2) == bytes.fromhex("0000000C 00000006 00000002")
    assert g.encode(g.ExitResp(), 2) == bytes.fromhex("0000000C 80000006 00000002")
    assert g.encode(g.DeliverResp(MSG_ID, 0), 3) == bytes.fromhex("0000001A 80000003 00000003") + MSG_ID + bytes(4)
    assert g.HEADER_SIZE == 12
    assert g.HEARTBEAT_ID == 0x4
    assert g.TERMINATE_ID == 0x6
    for req, resp in g.RESPONSE_OF.items():
        assert resp == req | 0x80000000
    assert issubclass(g.ProtocolError, PduError)
    assert g.TLV_SIZES[g.TAG_LINK_ID] == 20
    assert g.TLV_SIZES[g.TAG_MSG_SRC] == 8
    assert g.TLV_SIZES[g.TAG_MSERVICE_ID] == 21


# --------------------------------------------------------------------------------------------------
# Malformed input


def test_length_mismatch_is_rejected_clearly() -> None:
    good = g.encode(g.Exit(), 1)
    with pytest.raises(g.ProtocolError, match="declared PacketLength 13 does not match the frame size 12"):
        g.decode(struct.pack(">I", 13) + good[4:])


def test_bad_bodies() -> None:
    with pytest.raises(g.ProtocolError, match="Login: body is 29 bytes, the layout requires 30"):
        g.decode(frame(0x1, 1, b"\x00" * 29))
    submit = g.encode(g.Submit(dest_term_ids=("1",), tlvs=(g.tlv_u8(1, 0),)), 1)
    with pytest.raises(g.ProtocolError, match="trailing bytes are too short for a TLV header"):
        g.decode(struct.pack(">I", len(submit) + 2) + submit[4:] + b"\x00\x01")
    with pytest.raises(g.ProtocolError, match="TLV 0x0003 declares 20 bytes, only 2 remain"):
        g.decode(struct.pack(">I", len(submit) + 6) + submit[4:] + bytes.fromhex("0003 0014 4142"))
    with pytest.raises(g.ProtocolError, match="DestTermIDCount 200 exceeds 100"):
        g.decode(frame(0x2, 1, b"\x00" * 104 + b"\xc8" + b"\x00" * 10))
    with pytest.raises(g.ProtocolError, match="unknown SMGP RequestID 0x00000005"):
        g.decode(frame(0x5, 1, b""))


def test_read_header_rejects_insane_lengths() -> None:
    assert g.read_header(bytes.fromhex("0000002A 00000001 00000001")) == (42, 1, 1)
    with pytest.raises(g.ProtocolError, match="PacketLength 0 outside"):
        g.read_header(bytes(12))


def test_encode_rejects_what_does_not_fit() -> None:
    with pytest.raises(g.ProtocolError, match="MsgID must be 10 bytes"):
        g.encode(g.SubmitResp(b"\x00" * 9, 0), 1)
    with pytest.raises(g.ProtocolError, match="exceeds 255"):
        g.encode(g.Submit(msg_content=b"x" * 256), 1)
    with pytest.raises(g.ProtocolError, match="TLV 0x0003"):
        g.tlv_str(g.TAG_LINK_ID, "x" * 21)
    with pytest.raises(g.ProtocolError, match="one byte"):
        g.tlv_u8(g.TAG_PK_TOTAL, 256)


# --------------------------------------------------------------------------------------------------
# Properties


def octet(n: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=n)


u8 = st.integers(0, 0xFF)
u32 = st.integers(0, 0xFFFFFFFF)
msg_ids = st.binary(min_size=10, max_size=10)
tlvs = st.lists(st.builds(g.Tlv, st.integers(0, 0xFFFF), st.binary(max_size=30)), max_size=4).map(tuple)

pdus: st.SearchStrategy[g.Pdu] = st.one_of(
    st.builds(g.Login, octet(8), st.binary(min_size=16, max_size=16), u8, u32, u8, u32),
    st.builds(g.LoginResp, u32, st.binary(min_size=16, max_size=16), u8, u32),
    st.builds(
        g.Submit,
        msg_type=u8,
        need_report=u8,
        priority=u8,
        service_id=octet(10),
        fee_type=octet(2),
        fee_code=octet(6),
        fixed_fee=octet(6),
        msg_format=u8,
        valid_time=octet(17),
        at_time=octet(17),
        src_term_id=octet(21),
        charge_term_id=octet(21),
        dest_term_ids=st.lists(octet(21), max_size=5).map(tuple),
        msg_content=st.binary(max_size=255),
        reserve=octet(8),
        tlvs=tlvs,
        sequence=u32,
    ),
    st.builds(g.SubmitResp, msg_ids, u32, u32),
    st.builds(
        g.Deliver,
        msg_id=msg_ids,
        is_report=u8,
        msg_format=u8,
        recv_time=octet(14),
        src_term_id=octet(21),
        dest_term_id=octet(21),
        msg_content=st.binary(max_size=255),
        reserve=octet(8),
        tlvs=tlvs,
        sequence=u32,
    ),
    st.builds(g.DeliverResp, msg_ids, u32, u32),
    st.builds(g.ActiveTest, u32),
    st.builds(g.ActiveTestResp, u32),
    st.builds(g.Exit, u32),
    st.builds(g.ExitResp, u32),
)


@given(pdus)
@settings(max_examples=300)
def test_round_trip(pdu: g.Pdu) -> None:
    assert g.decode(g.encode(pdu)) == pdu


report_field = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=3)
reports = st.builds(
    g.Report,
    msg_id=msg_ids,
    sub=report_field,
    dlvrd=report_field,
    submit_date=st.text("0123456789", min_size=10, max_size=10),
    done_date=st.text("0123456789", min_size=10, max_size=10),
    stat=st.sampled_from(["DELIVRD", "EXPIRED", "UNDELIV", "REJECTD", "MI:0013", "UNKNOWN"]),
    err=st.text("0123456789", min_size=3, max_size=3),
    txt=st.binary(max_size=20),
)


@given(reports)
@settings(max_examples=300)
def test_report_round_trip(report: g.Report) -> None:
    raw = g.encode_report(report)
    assert len(raw) <= 255
    assert g.decode_report(raw) == report


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_random_bytes_raise_only_protocol_error(data: bytes) -> None:
    try:
        g.decode(data)
    except g.ProtocolError:
        pass
    try:
        g.decode_report(data)
    except g.ProtocolError:
        pass


@given(st.sampled_from(sorted(g.RESPONSE_OF) + sorted(g.RESPONSE_OF.values())), st.binary(max_size=400))
@settings(max_examples=300)
def test_random_bodies_with_valid_header_raise_only_protocol_error(request_id: int, body: bytes) -> None:
    try:
        g.decode(frame(request_id, 1, body))
    except g.ProtocolError:
        pass


@given(pdus, st.data())
@settings(max_examples=200)
def test_truncated_frames_never_crash(pdu: g.Pdu, data: st.DataObject) -> None:
    raw = g.encode(pdu)
    if len(raw) > 12:
        cut = data.draw(st.integers(12, len(raw) - 1))
        try:
            g.decode(struct.pack(">I", cut) + raw[4:cut])
        except g.ProtocolError:
            pass
