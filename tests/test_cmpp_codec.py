"""CMPP 2.0 / 3.0 codec: hand-built byte vectors from the published layouts, round trips, fuzzing.

Expected frames are assembled field by field with ``struct``/literals here, independently of the codec.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qixin.protocols.cmpp import codec as c
from qixin.protocols.errors import PduError

V20, V30 = c.VERSION_20, c.VERSION_30


def z(s: bytes | str, n: int) -> bytes:
    """A NUL-padded fixed-length field, built independently of the codec."""
    raw = s.encode() if isinstance(s, str) else s
    assert len(raw) <= n
    return raw + b"\x00" * (n - len(raw))


def frame(command_id: int, seq: int, body: bytes) -> bytes:
    return struct.pack(">III", 12 + len(body), command_id, seq) + body


# --------------------------------------------------------------------------------------------------
# Byte vectors


def test_connect_vector() -> None:
    auth = hashlib.md5(b"901234" + b"\x00" * 9 + b"1234" + b"1123102030").digest()
    expected = (
        bytes.fromhex("00000027")  # Total_Length 39 = 12 + 6 + 16 + 1 + 4
        + bytes.fromhex("00000001")  # CMPP_CONNECT
        + bytes.fromhex("00000001")  # Sequence_Id
        + b"901234"
        + auth
        + b"\x30"
        + (1123102030).to_bytes(4, "big")
    )
    assert c.cmpp_authenticator_source("901234", "1234", 1123102030) == auth
    assert c.cmpp_authenticator_source("901234", b"1234", "1123102030") == auth
    pdu = c.Connect(source_addr="901234", authenticator=auth, version=0x30, timestamp=1123102030)
    assert c.encode(pdu, 1) == expected
    assert c.decode(expected) == c.Connect("901234", auth, 0x30, 1123102030, sequence=1)
    # the body layout does not depend on the version
    assert c.encode(pdu, 1, V20) == expected
    assert c.cmpp_timestamp(11, 23, 10, 20, 30) == 1123102030
    assert c.cmpp_timestamp(1, 2, 3, 4, 5) == 102030405


def test_authenticator_timestamp_is_zero_padded() -> None:
    want = hashlib.md5(b"901234" + b"\x00" * 9 + b"s" + b"0102030405").digest()
    assert c.cmpp_authenticator_source("901234", "s", 102030405) == want


def test_connect_resp_vectors() -> None:
    auth_src = hashlib.md5(b"901234" + b"\x00" * 9 + b"1234" + b"1123102030").digest()
    ismg30 = hashlib.md5(b"\x00\x00\x00\x00" + auth_src + b"1234").digest()
    ismg20 = hashlib.md5(b"\x00" + auth_src + b"1234").digest()
    assert c.cmpp_authenticator_ismg(0, auth_src, "1234") == ismg30
    assert c.cmpp_authenticator_ismg(0, auth_src, "1234", V20) == ismg20

    f30 = bytes.fromhex("00000021 80000001 00000007") + b"\x00\x00\x00\x00" + ismg30 + b"\x30"
    assert c.encode(c.ConnectResp(0, ismg30, 0x30), 7) == f30
    assert c.decode(f30) == c.ConnectResp(0, ismg30, 0x30, sequence=7)

    f20 = bytes.fromhex("0000001E 80000001 00000007") + b"\x00" + ismg20 + b"\x20"
    assert c.encode(c.ConnectResp(0, ismg20, 0x20), 7, V20) == f20
    assert c.decode(f20, V20) == c.ConnectResp(0, ismg20, 0x20, sequence=7)
    # tolerated: a 2.0-layout answer while speaking 3.0 (and vice versa) is read by its length
    assert c.decode(f20, V30) == c.ConnectResp(0, ismg20, 0x20, sequence=7)
    assert c.decode(f30, V20) == c.ConnectResp(0, ismg30, 0x30, sequence=7)


def _submit_fixture() -> c.Submit:
    return c.Submit(
        msg_id=0,
        pk_total=1,
        pk_number=1,
        registered_delivery=1,
        msg_level=0,
        service_id="MQX0010101",
        fee_user_type=2,
        fee_terminal_id="",
        tp_pid=0,
        tp_udhi=0,
        msg_fmt=8,
        msg_src="901234",
        fee_type="01",
        fee_code="000000",
        valid_time="",
        at_time="",
        src_id="10690001",
        dest_terminal_ids=("13800138000",),
        msg_content="你好".encode("utf-16-be"),
    )


def test_submit_30_vector_one_number() -> None:
    content = "你好".encode("utf-16-be")  # 4 bytes
    body = (
        b"\x00" * 8  # Msg_Id
        + b"\x01"  # Pk_total
        + b"\x01"  # Pk_number
        + b"\x01"  # Registered_Delivery
        + b"\x00"  # Msg_level
        + b"MQX0010101"  # Service_Id 10
        + b"\x02"  # Fee_UserType
        + z("", 32)  # Fee_terminal_Id 32
        + b"\x00"  # Fee_terminal_type
        + b"\x00"  # TP_pId
        + b"\x00"  # TP_udhi
        + b"\x08"  # Msg_Fmt UCS2
        + b"901234"  # Msg_src 6
        + b"01"  # FeeType 2
        + b"000000"  # FeeCode 6
        + z("", 17)  # ValId_Time
        + z("", 17)  # At_Time
        + z("10690001", 21)  # Src_Id
        + b"\x01"  # DestUsr_tl
        + z("13800138000", 32)  # Dest_terminal_Id 32
        + b"\x00"  # Dest_terminal_type
        + bytes([len(content)])  # Msg_Length
        + content
        + z("", 20)  # LinkID
    )
    assert len(body) == 183 + len(content)
    expected = frame(0x00000004, 0x12345678, body)
    assert c.encode(_submit_fixture(), 0x12345678) == expected
    decoded = c.decode(expected)
    assert isinstance(decoded, c.Submit)
    assert decoded.dest_terminal_ids == ("13800138000",)
    assert decoded.msg_content.decode("utf-16-be") == "你好"
    assert decoded.src_id == "10690001"
    assert decoded.sequence == 0x12345678


def test_submit_20_vector_one_number() -> None:
    content = b"hello"
    body = (
        b"\x00" * 8
        + b"\x01\x01\x01\x00"
        + b"MQX0010101"
        + b"\x02"
        + z("", 21)  # Fee_terminal_Id 21, no terminal type in 2.0
        + b"\x00\x00\x00"  # TP_pId, TP_udhi, Msg_Fmt
        + b"901234"
        + b"01"
        + b"000000"
        + z("", 17)
        + z("", 17)
        + z("10690001", 21)
        + b"\x01"
        + z("13800138000", 21)  # Dest_terminal_Id 21, no terminal type in 2.0
        + bytes([len(content)])
        + content
        + z("", 8)  # Reserve
    )
    assert len(body) == 147 + len(content)
    pdu = _submit_fixture()
    pdu.msg_fmt = 0
    pdu.msg_content = content
    expected = frame(4, 9, body)
    assert c.encode(pdu, 9, V20) == expected
    assert c.decode(expected, V20) == dataclasses.replace(pdu, sequence=9)


def test_submit_resp_vectors() -> None:
    msg_id = 0x0123456789ABCDEF
    f30 = bytes.fromhex("00000018 80000004 00000005 0123456789ABCDEF 00000008")
    assert c.encode(c.SubmitResp(msg_id, 8), 5) == f30
    assert c.decode(f30) == c.SubmitResp(msg_id, c.RESULT_FLOW_CONTROL, sequence=5)
    f20 = bytes.fromhex("00000015 80000004 00000005 0123456789ABCDEF 08")
    assert c.encode(c.SubmitResp(msg_id, 8), 5, V20) == f20
    assert c.decode(f20, V20) == c.SubmitResp(msg_id, 8, sequence=5)


def test_deliver_30_status_report_vector() -> None:
    msg_id = c.pack_msg_id(11, 23, 10, 20, 30, 123456, 1)
    report_body = (
        struct.pack(">Q", msg_id)
        + b"DELIVRD"
        + b"2311231020"
        + b"2311231021"
        + z("13800138000", 32)
        + struct.pack(">I", 42)
    )
    assert len(report_body) == 71
    body = (
        struct.pack(">Q", 0xAA)  # Msg_Id of the DELIVER itself
        + z("10690001", 21)  # Dest_Id
        + z("MQX0010101", 10)  # Service_Id
        + b"\x00\x00\x00"  # TP_pid, TP_udhi, Msg_Fmt
        + z("13800138000", 32)  # Src_terminal_Id
        + b"\x00"  # Src_terminal_type
        + b"\x01"  # Registered_Delivery = status report
        + bytes([71])  # Msg_Length
        + report_body
        + z("", 20)  # LinkID
    )
    expected = frame(0x00000005, 3, body)
    report = c.Report(msg_id, "DELIVRD", "2311231020", "2311231021", "13800138000", 42)
    assert c.encode_report(report) == report_body
    pdu = c.Deliver(
        msg_id=0xAA,
        dest_id="10690001",
        service_id="MQX0010101",
        src_terminal_id="13800138000",
        registered_delivery=1,
        msg_content=report_body,
    )
    assert c.encode(pdu, 3) == expected
    decoded = c.decode(expected)
    assert isinstance(decoded, c.Deliver)
    assert decoded.registered_delivery == c.DELIVER_IS_REPORT
    assert c.decode_report(decoded.msg_content) == report


def test_deliver_20_mo_vector() -> None:
    body = (
        struct.pack(">Q", 1)
        + z("1069000101", 21)
        + z("", 10)
        + b"\x00\x00\x0f"  # Msg_Fmt 15 (GB)
        + z("13800138000", 21)
        + b"\x00"  # Registered_Delivery
        + b"\x02"
        + "好".encode("gbk")
        + z("", 8)
    )
    expected = frame(5, 1, body)
    pdu = c.Deliver(1, "1069000101", "", 0, 0, 15, "13800138000", 0, 0, "好".encode("gbk"))
    assert c.encode(pdu, 1, V20) == expected
    assert c.decode(expected, V20) == dataclasses.replace(pdu, sequence=1)


def test_report_20_size() -> None:
    report = c.Report(1, "UNDELIV", "2311231020", "2311231021", "13800138000", 7)
    raw = c.encode_report(report, V20)
    assert len(raw) == 60
    assert raw[8:15] == b"UNDELIV"
    assert raw[35:56] == z("13800138000", 21)
    assert c.decode_report(raw, V20) == report
    with pytest.raises(c.ProtocolError, match="requires 60"):
        c.decode_report(raw + b"x", V20)


def test_small_pdus() -> None:
    assert c.encode(c.ActiveTest(), 2) == bytes.fromhex("0000000C 00000008 00000002")
    assert c.encode(c.ActiveTestResp(), 2) == bytes.fromhex("0000000D 80000008 00000002 00")
    assert c.encode(c.Terminate(), 3) == bytes.fromhex("0000000C 00000002 00000003")
    assert c.encode(c.TerminateResp(), 3) == bytes.fromhex("0000000C 80000002 00000003")
    assert c.decode(bytes.fromhex("0000000C 00000008 00000002")) == c.ActiveTest(sequence=2)
    # tolerated: ACTIVE_TEST_RESP without its Reserved byte
    assert c.decode(bytes.fromhex("0000000C 80000008 00000002")) == c.ActiveTestResp(sequence=2)
    assert c.encode(c.DeliverResp(5, 0), 4, V20) == bytes.fromhex("00000015 80000005 00000004 0000000000000005 00")
    assert c.encode(c.CancelResp(1), 4) == bytes.fromhex("00000010 80000007 00000004 00000001")
    assert c.encode(c.CancelResp(1), 4, V20) == bytes.fromhex("0000000D 80000007 00000004 01")


def test_constants() -> None:
    assert c.HEADER_SIZE == 12
    assert c.HEARTBEAT_ID == 0x00000008
    assert c.TERMINATE_ID == 0x00000002
    for req, resp in c.RESPONSE_OF.items():
        assert resp == req | 0x80000000
    assert issubclass(c.ProtocolError, ValueError)
    assert issubclass(c.ProtocolError, PduError)
    assert c.CMPP30.decode(c.CMPP30.encode(c.ActiveTest(), 1)) == c.ActiveTest(sequence=1)


# --------------------------------------------------------------------------------------------------
# Msg_Id


def test_msg_id_known_vector() -> None:
    # month 11, day 23, 10:20:30, gateway 123456, sequence 1 — bit string built by hand
    bits = f"{11:04b}{23:05b}{10:05b}{20:06b}{30:06b}{123456:022b}{1:016b}"
    assert len(bits) == 64
    assert int(bits, 2) == 0xBBA94781E2400001
    assert c.pack_msg_id(11, 23, 10, 20, 30, 123456, 1) == 0xBBA94781E2400001
    assert c.unpack_msg_id(0xBBA94781E2400001) == (11, 23, 10, 20, 30, 123456, 1)


@given(
    st.tuples(
        st.integers(1, 12),
        st.integers(1, 31),
        st.integers(0, 23),
        st.integers(0, 59),
        st.integers(0, 59),
        st.integers(0, (1 << 22) - 1),
        st.integers(0, 0xFFFF),
    )
)
@settings(max_examples=200)
def test_msg_id_round_trip(parts: tuple[int, int, int, int, int, int, int]) -> None:
    assert c.unpack_msg_id(c.pack_msg_id(*parts)) == parts


def test_msg_id_rejects_out_of_range() -> None:
    with pytest.raises(c.ProtocolError, match="month"):
        c.pack_msg_id(13, 1, 0, 0, 0, 0, 0)
    with pytest.raises(c.ProtocolError, match="gateway_id"):
        c.pack_msg_id(1, 1, 0, 0, 0, 1 << 22, 0)


# --------------------------------------------------------------------------------------------------
# Malformed input


def test_length_mismatch_is_rejected_clearly() -> None:
    good = c.encode(c.ActiveTest(), 1)
    bad = struct.pack(">I", 99) + good[4:]
    with pytest.raises(c.ProtocolError, match=r"declared Total_Length 99 does not match the frame size 12"):
        c.decode(bad)


def test_body_not_matching_layout() -> None:
    good = c.encode(c.SubmitResp(1, 0), 5)
    longer = struct.pack(">I", len(good) + 1) + good[4:] + b"\x00"
    with pytest.raises(c.ProtocolError, match="SUBMIT_RESP: body is 13 bytes, the layout requires 12") as info:
        c.decode(longer)
    assert info.value.command_id == c.SUBMIT_RESP
    assert info.value.sequence == 5
    sub = bytearray(c.encode(_submit_fixture(), 1))
    sub[len(sub) - 20 - 4 - 1] = 200  # Msg_Length (content 4 bytes, LinkID 20) now disagrees with the body
    with pytest.raises(c.ProtocolError, match="Msg_Length 200"):
        c.decode(bytes(sub))


def test_unknown_command_and_short_frames() -> None:
    with pytest.raises(c.ProtocolError, match="unknown CMPP Command_Id 0x00000099") as info:
        c.decode(frame(0x99, 1, b""))
    assert info.value.status == c.RESULT_BAD_COMMAND
    with pytest.raises(c.ProtocolError, match="shorter than the 12-byte"):
        c.decode(b"\x00\x00\x00")


def test_read_header() -> None:
    assert c.read_header(bytes.fromhex("00000027 00000001 00000009")) == (39, 1, 9)
    assert c.read_header(memoryview(bytes.fromhex("00000027 00000001 00000009 ff"))) == (39, 1, 9)
    with pytest.raises(c.ProtocolError, match="Total_Length 4 outside"):
        c.read_header(bytes.fromhex("00000004 00000001 00000009"))
    with pytest.raises(c.ProtocolError, match="outside"):
        c.read_header(bytes.fromhex("7FFFFFFF 00000001 00000009"))
    with pytest.raises(c.ProtocolError, match="need 12 bytes"):
        c.read_header(b"\x00" * 11)


def test_encode_rejects_what_does_not_fit() -> None:
    with pytest.raises(c.ProtocolError, match="Service_Id"):
        c.encode(c.Submit(service_id="X" * 11), 1)
    with pytest.raises(c.ProtocolError, match="Dest_terminal_Id"):
        c.encode(c.Submit(dest_terminal_ids=("1" * 22,)), 1, V20)
    c.encode(c.Submit(dest_terminal_ids=("1" * 32,)), 1, V30)
    with pytest.raises(c.ProtocolError, match=r"only in CMPP 3\.0"):
        c.encode(c.Submit(link_id="abc"), 1, V20)
    with pytest.raises(c.ProtocolError, match=r"only in CMPP 2\.0"):
        c.encode(c.Submit(reserve="abc"), 1, V30)
    with pytest.raises(c.ProtocolError, match="out of range"):
        c.encode(c.SubmitResp(1, 256), 1, V20)
    with pytest.raises(c.ProtocolError, match="exceed 100"):
        c.encode(c.Submit(dest_terminal_ids=("1",) * 101), 1)
    with pytest.raises(c.ProtocolError, match="not representable"):
        c.encode(c.Submit(src_id="号码"), 1)


# --------------------------------------------------------------------------------------------------
# Properties


def octet(n: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=n)


u8 = st.integers(0, 0xFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, (1 << 64) - 1)
seq = u32


def pdus(version: int) -> st.SearchStrategy[c.Pdu]:
    v30 = version == V30
    tid = 32 if v30 else 21
    only30 = u8 if v30 else st.just(0)
    link = octet(20) if v30 else st.just("")
    reserve = st.just("") if v30 else octet(8)
    status = u32 if v30 else u8
    content = st.binary(max_size=255)
    return st.one_of(
        st.builds(c.Connect, octet(6), st.binary(min_size=16, max_size=16), u8, u32, seq),
        st.builds(c.ConnectResp, status, st.binary(min_size=16, max_size=16), u8, seq),
        st.builds(c.Terminate, seq),
        st.builds(c.TerminateResp, seq),
        st.builds(c.ActiveTest, seq),
        st.builds(c.ActiveTestResp, u8, seq),
        st.builds(
            c.Submit,
            msg_id=u64,
            pk_total=u8,
            pk_number=u8,
            registered_delivery=u8,
            msg_level=u8,
            service_id=octet(10),
            fee_user_type=u8,
            fee_terminal_id=octet(tid),
            fee_terminal_type=only30,
            tp_pid=u8,
            tp_udhi=u8,
            msg_fmt=u8,
            msg_src=octet(6),
            fee_type=octet(2),
            fee_code=octet(6),
            valid_time=octet(17),
            at_time=octet(17),
            src_id=octet(21),
            dest_terminal_ids=st.lists(octet(tid), max_size=5).map(tuple),
            dest_terminal_type=only30,
            msg_content=content,
            link_id=link,
            reserve=reserve,
            sequence=seq,
        ),
        st.builds(c.SubmitResp, u64, status, seq),
        st.builds(
            c.Deliver,
            msg_id=u64,
            dest_id=octet(21),
            service_id=octet(10),
            tp_pid=u8,
            tp_udhi=u8,
            msg_fmt=u8,
            src_terminal_id=octet(tid),
            src_terminal_type=only30,
            registered_delivery=u8,
            msg_content=content,
            link_id=link,
            reserved=reserve,
            sequence=seq,
        ),
        st.builds(c.DeliverResp, u64, status, seq),
        st.builds(c.Query, octet(8), u8, octet(10), octet(8), seq),
        st.builds(c.QueryResp, octet(8), u8, octet(10), u32, u32, u32, u32, u32, u32, u32, u32, seq),
        st.builds(c.Cancel, u64, seq),
        st.builds(c.CancelResp, status, seq),
    )


@given(pdus(V30))
@settings(max_examples=300)
def test_round_trip_30(pdu: c.Pdu) -> None:
    assert c.decode(c.encode(pdu), V30) == pdu


@given(pdus(V20))
@settings(max_examples=300)
def test_round_trip_20(pdu: c.Pdu) -> None:
    assert c.decode(c.encode(pdu, version=V20), V20) == pdu


reports = st.sampled_from([V20, V30]).flatmap(
    lambda v: st.tuples(
        st.just(v), st.builds(c.Report, u64, octet(7), octet(10), octet(10), octet(32 if v == V30 else 21), u32)
    )
)


@given(reports)
@settings(max_examples=200)
def test_report_round_trip(case: tuple[int, c.Report]) -> None:
    version, report = case
    assert c.decode_report(c.encode_report(report, version), version) == report


@given(st.binary(max_size=300), st.sampled_from([V20, V30]))
@settings(max_examples=300)
def test_random_bytes_raise_only_protocol_error(data: bytes, version: int) -> None:
    try:
        c.decode(data, version)
    except c.ProtocolError:
        pass


@given(
    st.sampled_from(sorted(c.RESPONSE_OF) + sorted(c.RESPONSE_OF.values())),
    st.binary(max_size=400),
    st.sampled_from([V20, V30]),
)
@settings(max_examples=300)
def test_random_bodies_with_valid_header_raise_only_protocol_error(command_id: int, body: bytes, version: int) -> None:
    try:
        c.decode(frame(command_id, 1, body), version)
    except c.ProtocolError:
        pass


@given(pdus(V30), st.data())
@settings(max_examples=200)
def test_truncated_or_extended_frames_are_rejected(pdu: c.Pdu, data: st.DataObject) -> None:
    raw = c.encode(pdu)
    cut = data.draw(st.integers(12, len(raw) - 1)) if len(raw) > 12 else None
    if cut is not None:
        short = struct.pack(">I", cut) + raw[4:cut]
        try:
            c.decode(short)
        except c.ProtocolError:
            pass
    longer = struct.pack(">I", len(raw) + 1) + raw[4:] + b"\x01"
    if isinstance(pdu, c.Submit | c.Deliver):
        # The trailer of a variable PDU is fixed: one byte too many never decodes.
        with pytest.raises(c.ProtocolError):
            c.decode(longer)
