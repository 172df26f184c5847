"""SMPP 3.4 codec: hand-written byte vectors from the spec layout, properties, receipt text."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qixin.protocols.smpp.codec import (
    _RECEIPT_STD,
    BIND_TRANSCEIVER,
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_RINVMSGLEN,
    ESME_RINVOPTPARSTREAM,
    ESME_RTHROTTLED,
    BindTransceiver,
    BindTransceiverResp,
    DeliverSm,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    PduError,
    SmppCodec,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    _parse_receipt_any,
    decode_pdu,
    encode_pdu,
    format_receipt,
    parse_receipt,
)

H = bytes.fromhex

# -- hand-written vectors ---------------------------------------------------------------------------

ENQUIRE_LINK = H("00000010 00000015 00000000 00000001")
ENQUIRE_LINK_RESP = H("00000010 80000015 00000000 00000001")
UNBIND = H("00000010 00000006 00000000 0000000c")
GENERIC_NACK = H("00000010 80000000 00000003 00000007")
BIND_TRX = H(
    "0000002a 00000009 00000000 00000001"
    "736d7070636c69656e743100"  # system_id "smppclient1"
    "70617373776f726400"  # password "password"
    "00"  # system_type ""
    "34 00 00"  # interface_version 3.4, addr_ton, addr_npi
    "00"  # address_range ""
)
BIND_TRX_RESP = H("00000016 80000009 00000000 00000001 736d73633100")  # system_id "smsc1"
SUBMIT_SM = H(
    "00000030 00000004 00000000 00000002"
    "00"  # service_type ""
    "01 01 313233343500"  # source ton/npi/"12345"
    "01 01 363738393000"  # dest ton/npi/"67890"
    "00 00 00"  # esm_class, protocol_id, priority_flag
    "00 00"  # schedule_delivery_time, validity_period
    "01 00 00 00"  # registered_delivery, replace_if_present, data_coding, sm_default_msg_id
    "05 68656c6c6f"  # sm_length 5, "hello"
)
SUBMIT_SM_RESP = H("00000014 80000004 00000000 00000002 61626300")  # message_id "abc"
THROTTLED_RESP = H("00000010 80000004 00000058 00000003")


def _receipt_frame() -> bytes:
    text = b"id:abc stat:DELIVRD"
    body = (
        H("00 0101 363738393000 0101 313233343500 04 00 00 00 00 01 00 00 00")
        + bytes([len(text)])
        + text
        + H("001e 0004 61626300")  # receipted_message_id "abc"
        + H("0427 0001 02")  # message_state DELIVERED
        + H("1501 0002 cafe")  # unknown vendor TLV
    )
    return struct.pack(">IIII", 16 + len(body), 5, 0, 9) + body


def test_enquire_link_vectors():
    assert EnquireLink(sequence=1).encode() == ENQUIRE_LINK
    assert decode_pdu(ENQUIRE_LINK) == EnquireLink(sequence=1)
    assert decode_pdu(ENQUIRE_LINK_RESP) == EnquireLinkResp(sequence=1)
    assert EnquireLink(sequence=1).response().encode() == ENQUIRE_LINK_RESP
    assert decode_pdu(UNBIND) == Unbind(sequence=12)
    assert decode_pdu(GENERIC_NACK) == GenericNack(sequence=7, command_status=ESME_RINVCMDID)


def test_bind_transceiver_vector():
    pdu = BindTransceiver(sequence=1, system_id="smppclient1", password="password")
    assert pdu.encode() == BIND_TRX
    assert decode_pdu(BIND_TRX) == pdu
    assert decode_pdu(BIND_TRX).command_id == BIND_TRANSCEIVER
    resp = decode_pdu(BIND_TRX_RESP)
    assert resp == BindTransceiverResp(sequence=1, system_id="smsc1")
    assert pdu.response(system_id="smsc1").encode() == BIND_TRX_RESP


def test_submit_sm_vector():
    pdu = SubmitSm(
        sequence=2,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="12345",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="67890",
        registered_delivery=1,
        short_message=b"hello",
    )
    assert pdu.encode() == SUBMIT_SM
    assert decode_pdu(SUBMIT_SM) == pdu
    assert decode_pdu(SUBMIT_SM_RESP) == SubmitSmResp(sequence=2, message_id="abc")
    assert SubmitSmResp(sequence=2, message_id="abc").encode() == SUBMIT_SM_RESP
    # an error response carries no body
    assert SubmitSmResp(sequence=3, command_status=ESME_RTHROTTLED).encode() == THROTTLED_RESP
    assert decode_pdu(THROTTLED_RESP).command_status == ESME_RTHROTTLED


def test_deliver_sm_receipt_with_tlvs():
    d = decode_pdu(_receipt_frame())
    assert isinstance(d, DeliverSm)
    assert d.is_receipt
    assert d.receipted_message_id == "abc"
    assert d.message_state == 2
    assert d.tlvs == ((0x1501, b"\xca\xfe"),)
    assert d.registered_delivery == 1
    info = d.receipt()
    assert info is not None and info["id"] == "abc" and info["stat"] == "DELIVRD"
    assert d.encode() == _receipt_frame()  # unknown TLV written back unchanged, same order


def test_sar_and_payload_tlvs_roundtrip():
    pdu = SubmitSm(
        sequence=5,
        destination_addr="1",
        sar_msg_ref_num=0x1234,
        sar_total_segments=3,
        sar_segment_seqnum=2,
        message_payload=b"x" * 1000,
        network_error_code=(3, 13),
    )
    raw = pdu.encode()
    assert H("020c 0002 1234") in raw and H("020e 0001 03") in raw and H("020f 0001 02") in raw
    assert H("0423 0003 03 000d") in raw and H("0424 03e8") in raw
    assert decode_pdu(raw) == pdu


@pytest.mark.parametrize(
    ("frame", "status"),
    [
        (H("0000000f 00000015 00000000 00000001"), ESME_RINVCMDLEN),  # length disagrees
        (H("00000010 00000015 00000000"), ESME_RINVCMDLEN),  # shorter than a header
        (H("00000010 000000ff 00000000 00000001"), ESME_RINVCMDID),  # unknown command
        (H("00000014 00000004 00000000 00000001 41424344"), ESME_RINVMSGLEN),  # no NUL
        (SUBMIT_SM[:-1], ESME_RINVCMDLEN),  # truncated frame
        (
            struct.pack(">IIII", 16 + len(SUBMIT_SM) - 16 + 3, 4, 0, 2) + SUBMIT_SM[16:] + H("0424 00"),
            ESME_RINVOPTPARSTREAM,
        ),  # truncated TLV
    ],
)
def test_malformed_input_raises_pdu_error(frame: bytes, status: int):
    with pytest.raises(PduError) as info:
        decode_pdu(frame)
    assert info.value.status == status
    assert str(info.value)


def test_truncated_short_message_and_tlv_value():
    body = bytearray(SUBMIT_SM[16:])
    body[-6] = 50  # sm_length beyond the frame
    frame = struct.pack(">IIII", 16 + len(body), 4, 0, 2) + bytes(body)
    with pytest.raises(PduError, match="sm_length"):
        decode_pdu(frame)
    bad_tlv = SUBMIT_SM[16:] + H("001e 0010 6162")
    with pytest.raises(PduError, match="TLV 0x001E"):
        decode_pdu(struct.pack(">IIII", 16 + len(bad_tlv), 4, 0, 2) + bad_tlv)


def test_codec_error_for_frame_answers_requests_only():
    codec = SmppCodec()
    with pytest.raises(PduError) as info:
        decode_pdu(H("00000010 00000077 00000000 00000009"))
    nack = codec.error_for_frame(info.value)
    assert nack == GenericNack(sequence=9, command_status=ESME_RINVCMDID)
    with pytest.raises(PduError) as info:
        decode_pdu(H("00000011 80000004 00000000 00000009 41"))
    assert codec.error_for_frame(info.value) is None


def test_encode_rejects_oversize_fields():
    with pytest.raises(PduError):
        encode_pdu(SubmitSm(destination_addr="1" * 21))
    with pytest.raises(PduError):
        encode_pdu(SubmitSm(short_message=b"x" * 255))
    with pytest.raises(PduError):
        encode_pdu(BindTransceiver(password="x" * 9))


# -- receipts ----------------------------------------------------------------------------------------


def test_format_and_parse_receipt():
    text = format_receipt("0a1b", "DELIVRD", 0, "2401021530", "2401021531", "hello world, this is long")
    assert text == (
        "id:0a1b sub:001 dlvrd:001 submit date:2401021530 done date:2401021531 "
        "stat:DELIVRD err:000 text:hello world, this is"
    )
    r = parse_receipt(text)
    assert r == {
        "id": "0a1b",
        "sub": "001",
        "dlvrd": "001",
        "submit_date": "2401021530",
        "done_date": "2401021531",
        "stat": "DELIVRD",
        "err": "000",
        "text": "hello world, this is",
    }
    assert format_receipt("x", "UNDELIV", "013", "2401021530", "2401021531").startswith("id:x sub:001 dlvrd:000")


def test_parse_receipt_tolerant():
    r = parse_receipt(b"ID:77 Stat:undeliv ERR:002 Text:")
    assert r["id"] == "77" and r["stat"] == "UNDELIV" and r["err"] == "002" and r["text"] == ""
    assert r["submit_date"] is None and r["sub"] is None
    assert parse_receipt("garbage")["id"] is None
    assert parse_receipt("id:9 submit_date:2401010000 stat:DELIVRD")["submit_date"] == "2401010000"


_RECEIPT_KEYS = ("id", "sub", "dlvrd", "submit date", "done date", "stat", "err", "text")
_receipt_value = st.one_of(
    st.text("0123456789abcdefABCDEF_", max_size=12),
    st.sampled_from(["", "text", "submit", "done", "date", "stat", "ID", "err", "x-err", "a:b", "t\u0130"]),
    st.text(max_size=6),
)


@given(
    st.lists(_receipt_value, min_size=7, max_size=7),
    st.one_of(st.none(), st.text(max_size=30)),
    st.sampled_from([" ", " ", " ", "  ", "\t"]),
    st.booleans(),
)
@settings(max_examples=400)
def test_parse_receipt_fast_path_agrees_with_the_scan(values, text, sep, upper):
    """The standard layout's one-match path gives exactly what the general scan gives, whatever the values."""
    keys = [k.upper() if upper and i == 2 else k for i, k in enumerate(_RECEIPT_KEYS)]
    fields = [f"{k}:{v}" for k, v in zip(keys, values, strict=False)]
    if text is not None:
        fields.append(f"text:{text}")
    receipt = sep.join(fields)
    assert parse_receipt(receipt) == _parse_receipt_any(receipt)


def test_parse_receipt_standard_layout_takes_one_match():
    text = format_receipt("0a1b", "delivrd", "000", "2401021530", "2401021531", " 你好 hello")
    assert _RECEIPT_STD.fullmatch(text) is not None
    assert parse_receipt(text) == _parse_receipt_any(text)
    assert parse_receipt(text)["stat"] == "DELIVRD" and parse_receipt(text)["text"] == "你好 hello"


# -- properties --------------------------------------------------------------------------------------


def _cstr(maxlen: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=maxlen - 1)


u8 = st.integers(0, 255)
opt = st.none

_sm_fields = dict(
    sequence=st.integers(0, 0x7FFFFFFF),
    service_type=_cstr(6),
    source_addr_ton=u8,
    source_addr_npi=u8,
    source_addr=_cstr(21),
    dest_addr_ton=u8,
    dest_addr_npi=u8,
    destination_addr=_cstr(21),
    esm_class=u8,
    protocol_id=u8,
    priority_flag=u8,
    schedule_delivery_time=_cstr(17),
    validity_period=_cstr(17),
    registered_delivery=u8,
    replace_if_present_flag=u8,
    data_coding=u8,
    sm_default_msg_id=u8,
    short_message=st.binary(max_size=254),
    sar_msg_ref_num=opt() | st.integers(0, 0xFFFF),
    sar_total_segments=opt() | u8,
    sar_segment_seqnum=opt() | u8,
    receipted_message_id=opt() | _cstr(65),
    message_state=opt() | u8,
    message_payload=opt() | st.binary(max_size=600),
    network_error_code=opt() | st.tuples(u8, st.integers(0, 0xFFFF)),
    tlvs=st.lists(st.tuples(st.integers(0x1400, 0x3FFF), st.binary(max_size=20)), max_size=3).map(tuple),
)

PROPS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(st.builds(SubmitSm, **_sm_fields))
def test_submit_sm_roundtrip(pdu: SubmitSm):
    assert decode_pdu(pdu.encode()) == pdu


@PROPS
@given(st.builds(DeliverSm, **_sm_fields))
def test_deliver_sm_roundtrip(pdu: DeliverSm):
    assert decode_pdu(pdu.encode()) == pdu


@PROPS
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_pdu_error(data: bytes):
    try:
        decode_pdu(data)
    except PduError:
        pass


_KNOWN_IDS = [0x80000000, 1, 2, 4, 5, 6, 9, 0x15, 0x103, 0x80000001, 0x80000004, 0x80000005, 0x80000009, 0x80000103]


@PROPS
@given(st.sampled_from(_KNOWN_IDS), st.integers(0, 0xFFFFFFFF), st.binary(max_size=200))
def test_random_bodies_with_valid_headers_raise_only_pdu_error(command_id: int, seq: int, body: bytes):
    frame = struct.pack(">IIII", 16 + len(body), command_id, 0, seq) + body
    try:
        decode_pdu(frame)
    except PduError as exc:
        assert exc.sequence == seq and exc.command_id == command_id


@PROPS
@given(st.builds(SubmitSm, **_sm_fields), st.data())
def test_mutated_frames_raise_only_pdu_error(pdu: SubmitSm, data: st.DataObject):
    raw = bytearray(pdu.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(16, max(16, len(raw) - 1)))
        if i < len(raw):
            raw[i] = data.draw(u8)
    cut = data.draw(st.integers(16, len(raw)))
    frame = struct.pack(">I", cut) + bytes(raw[4:cut])
    try:
        decode_pdu(frame)
    except PduError:
        pass
