"""SMGP 3.0 (China Telecom) wire format: bytes <-> PDU dataclasses.

Pure codec: no sockets, no business rules. Big-endian integers; fixed-length octet strings padded with
NUL on encode and cut at the first NUL on decode (latin-1).

Header, 12 bytes: PacketLength (4), RequestID (4), SequenceID (4). Submit and Deliver end with optional
TLVs (Tag 2, Length 2, Value). They are kept in wire order as a tuple of ``Tlv(tag, value)``, values as
raw bytes; ``tlv_u8`` / ``tlv_str`` build them and ``get_tlv*`` read them. Unknown tags and unexpected
lengths are kept as they are (the decoder only checks that every TLV fits the frame).

MsgID is 10 bytes of BCD: SMGW code (6 digits), MMDDHHMM (8 digits), sequence (6 digits); PDUs keep
it as the raw 10 bytes (``pack_msg_id`` / ``unpack_msg_id`` / ``msg_id_hex``). A status report is a
Deliver with IsReport = 1 whose MsgContent is text with the raw 10-byte MsgID after ``id:``
(``encode_report`` / ``decode_report``).

Decoders raise only ``ProtocolError`` (a ``PduError``/``ValueError``).
"""

from __future__ import annotations

import functools
import re
import struct
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from qixin.protocols.errors import PduError
from qixin.protocols.fields import (
    CodecNamespace,
    Framing,
    TypedResponseCodec,
    decimal_timestamp,
    length_checker,
    login_authenticator,
    octets_encoder,
    status_authenticator,
    text,
)

__all__ = [
    "ACTIVE_TEST",
    "ACTIVE_TEST_RESP",
    "DELIVER",
    "DELIVER_RESP",
    "EXIT",
    "EXIT_RESP",
    "HEADER_SIZE",
    "HEARTBEAT_ID",
    "LOGIN",
    "LOGIN_RESP",
    "MAX_FRAME_SIZE",
    "RESPONSE_OF",
    "SMGP30",
    "STATUS_NAMES",
    "SUBMIT",
    "SUBMIT_RESP",
    "TERMINATE_ID",
    "TLV_SIZES",
    "ActiveTest",
    "ActiveTestResp",
    "Deliver",
    "DeliverResp",
    "Exit",
    "ExitResp",
    "Login",
    "LoginResp",
    "MsgIdParts",
    "Pdu",
    "ProtocolError",
    "Report",
    "SmgpCodec",
    "Submit",
    "SubmitResp",
    "Tlv",
    "decode",
    "decode_report",
    "encode",
    "encode_report",
    "get_tlv",
    "get_tlv_int",
    "get_tlv_str",
    "msg_id_hex",
    "pack_msg_id",
    "read_header",
    "response_for",
    "smgp_authenticator_client",
    "smgp_authenticator_server",
    "smgp_timestamp",
    "status_name",
    "tlv_str",
    "tlv_u8",
    "unpack_msg_id",
]

# --------------------------------------------------------------------------------------------------
# Constants

VERSION_30 = 0x30

LOGIN = 0x00000001
LOGIN_RESP = 0x80000001
SUBMIT = 0x00000002
SUBMIT_RESP = 0x80000002
DELIVER = 0x00000003
DELIVER_RESP = 0x80000003
ACTIVE_TEST = 0x00000004
ACTIVE_TEST_RESP = 0x80000004
EXIT = 0x00000006
EXIT_RESP = 0x80000006
# Not implemented: FORWARD 0x5, QUERY 0x7, route updates 0x8 / 0x9 (SMGW <-> SMGW / management).

RESPONSE_OF: dict[int, int] = {
    LOGIN: LOGIN_RESP,
    SUBMIT: SUBMIT_RESP,
    DELIVER: DELIVER_RESP,
    ACTIVE_TEST: ACTIVE_TEST_RESP,
    EXIT: EXIT_RESP,
}
HEARTBEAT_ID = ACTIVE_TEST
TERMINATE_ID = EXIT

HEADER_SIZE = 12
MAX_FRAME_SIZE = 8192
MAX_DEST_TERMS = 100

# LoginMode
LOGIN_MODE_SEND = 0  # MT
LOGIN_MODE_RECEIVE = 1  # MO and reports
LOGIN_MODE_TRANSMIT = 2  # both

# MsgType
MSG_TYPE_MO = 0
MSG_TYPE_MT = 6
MSG_TYPE_P2P = 7

# MsgFormat
MSG_FORMAT_ASCII = 0
MSG_FORMAT_BINARY = 4
MSG_FORMAT_UCS2 = 8
MSG_FORMAT_GB = 15

# Status (responses)
STATUS_OK = 0
STATUS_SYSTEM_BUSY = 1  # treated as throttling
STATUS_TOO_MANY_CONNECTIONS = 2
STATUS_BAD_STRUCTURE = 10
STATUS_BAD_COMMAND = 11
STATUS_DUPLICATE_SEQUENCE = 12
STATUS_BAD_IP = 20
STATUS_AUTH_FAILED = 21
STATUS_VERSION_TOO_HIGH = 22
STATUS_BAD_MSG_TYPE = 30
STATUS_BAD_PRIORITY = 31
STATUS_BAD_FEE_TYPE = 32
STATUS_BAD_FEE_CODE = 33
STATUS_BAD_MSG_FORMAT = 34
STATUS_BAD_TIME_FORMAT = 35
STATUS_BAD_MSG_LENGTH = 36
STATUS_EXPIRED = 37
STATUS_BAD_QUERY_TYPE = 38
STATUS_ROUTE_ERROR = 39

# TLV tags
TAG_TP_PID = 0x0001
TAG_TP_UDHI = 0x0002
TAG_LINK_ID = 0x0003
TAG_CHARGE_USER_TYPE = 0x0004
TAG_CHARGE_TERM_TYPE = 0x0005
TAG_CHARGE_TERM_PSEUDO = 0x0006
TAG_DEST_TERM_TYPE = 0x0007
TAG_DEST_TERM_PSEUDO = 0x0008
TAG_PK_TOTAL = 0x0009
TAG_PK_NUMBER = 0x000A
TAG_SUBMIT_MSG_TYPE = 0x000B
TAG_SP_DEAL_RESULT = 0x000C
TAG_SRC_TERM_TYPE = 0x000D
TAG_SRC_TERM_PSEUDO = 0x000E
TAG_NODES_COUNT = 0x000F
TAG_MSG_SRC = 0x0010
TAG_SRC_TYPE = 0x0011
TAG_MSERVICE_ID = 0x0012

# Value size of each known tag; None = variable length (pseudo numbers).
TLV_SIZES: dict[int, int | None] = {
    TAG_TP_PID: 1,
    TAG_TP_UDHI: 1,
    TAG_LINK_ID: 20,
    TAG_CHARGE_USER_TYPE: 1,
    TAG_CHARGE_TERM_TYPE: 1,
    TAG_CHARGE_TERM_PSEUDO: None,
    TAG_DEST_TERM_TYPE: 1,
    TAG_DEST_TERM_PSEUDO: None,
    TAG_PK_TOTAL: 1,
    TAG_PK_NUMBER: 1,
    TAG_SUBMIT_MSG_TYPE: 1,
    TAG_SP_DEAL_RESULT: 1,
    TAG_SRC_TERM_TYPE: 1,
    TAG_SRC_TERM_PSEUDO: None,
    TAG_NODES_COUNT: 1,
    TAG_MSG_SRC: 8,
    TAG_SRC_TYPE: 1,
    TAG_MSERVICE_ID: 21,
}

STAT_DELIVERED = "DELIVRD"
STAT_EXPIRED = "EXPIRED"
STAT_DELETED = "DELETED"
STAT_UNDELIVERABLE = "UNDELIV"
STAT_ACCEPTED = "ACCEPTD"
STAT_UNKNOWN = "UNKNOWN"
STAT_REJECTED = "REJECTD"


class ProtocolError(PduError):
    """Malformed SMGP input (or a PDU that cannot be encoded). The only exception decoders raise."""


class Tlv(NamedTuple):
    tag: int
    value: bytes


# --------------------------------------------------------------------------------------------------
# Layouts

_HEADER = struct.Struct(">III")
_LOGIN = struct.Struct(">8s16sBIB")  # 30
_LOGIN_RESP = struct.Struct(">I16sB")  # 21
_SUBMIT_HEAD = struct.Struct(">BBB10s2s6s6sB17s17s21s21sB")  # 105, then DestTermID x n
_RESP = struct.Struct(">10sI")  # 14
_DELIVER_HEAD = struct.Struct(">10sBB14s21s21sB")  # 69, then MsgContent, Reserve 8, TLVs
_TLV = struct.Struct(">HH")
_U8 = struct.Struct(">B")
_U32 = struct.Struct(">I")


octets = octets_encoder(ProtocolError)  # text(raw) reads one back (qixin.protocols.fields)

# Fields that repeat from message to message (service code, fee fields, source number, times) go
# through small caches: the same bytes always give the same text, and hashing is cheaper than decoding.
_text_cached = functools.lru_cache(maxsize=1024)(text)
_octets_cached = functools.lru_cache(maxsize=1024)(octets)


_check_len = length_checker(ProtocolError)
_FRAMING = Framing(
    error=ProtocolError,
    protocol="SMGP",
    length_field="PacketLength",
    id_field="RequestID",
    header_size=HEADER_SIZE,
    max_frame_size=MAX_FRAME_SIZE,
    bad_structure=STATUS_BAD_STRUCTURE,
    bad_command=STATUS_BAD_COMMAND,
)


def _msg_id(value: bytes, name: str = "MsgID") -> bytes:
    if len(value) != 10:
        raise ProtocolError(f"{name} must be 10 bytes, got {len(value)}")
    return value


# --------------------------------------------------------------------------------------------------
# PDUs


@dataclass(slots=True)
class Login:
    command_id: ClassVar[int] = LOGIN
    client_id: str = ""  # 8
    authenticator: bytes = b"\0" * 16  # AuthenticatorClient
    login_mode: int = LOGIN_MODE_TRANSMIT
    timestamp: int = 0  # MMDDHHMMSS as a decimal number
    client_version: int = VERSION_30
    sequence: int = 0


@dataclass(slots=True)
class LoginResp:
    command_id: ClassVar[int] = LOGIN_RESP
    status: int = STATUS_OK
    authenticator: bytes = b"\0" * 16  # AuthenticatorServer
    server_version: int = VERSION_30
    sequence: int = 0


@dataclass(slots=True)
class Submit:
    command_id: ClassVar[int] = SUBMIT
    msg_type: int = MSG_TYPE_MT
    need_report: int = 1
    priority: int = 0
    service_id: str = ""  # 10
    fee_type: str = ""  # 2
    fee_code: str = ""  # 6
    fixed_fee: str = ""  # 6
    msg_format: int = MSG_FORMAT_ASCII
    valid_time: str = ""  # 17
    at_time: str = ""  # 17
    src_term_id: str = ""  # 21
    charge_term_id: str = ""  # 21
    dest_term_ids: tuple[str, ...] = ()  # DestTermIDCount (<= 100) x 21
    msg_content: bytes = b""  # MsgLength 1 byte
    reserve: str = ""  # 8
    tlvs: tuple[Tlv, ...] = ()
    sequence: int = 0


@dataclass(slots=True)
class SubmitResp:
    command_id: ClassVar[int] = SUBMIT_RESP
    msg_id: bytes = b"\0" * 10
    status: int = STATUS_OK
    sequence: int = 0


@dataclass(slots=True)
class Deliver:
    command_id: ClassVar[int] = DELIVER
    msg_id: bytes = b"\0" * 10
    is_report: int = 0
    msg_format: int = MSG_FORMAT_ASCII
    recv_time: str = ""  # YYYYMMDDHHMMSS, 14
    src_term_id: str = ""  # 21
    dest_term_id: str = ""  # 21
    msg_content: bytes = b""  # MsgLength 1 byte
    reserve: str = ""  # 8
    tlvs: tuple[Tlv, ...] = ()
    sequence: int = 0


@dataclass(slots=True)
class DeliverResp:
    command_id: ClassVar[int] = DELIVER_RESP
    msg_id: bytes = b"\0" * 10
    status: int = STATUS_OK
    sequence: int = 0


@dataclass(slots=True)
class ActiveTest:
    command_id: ClassVar[int] = ACTIVE_TEST
    sequence: int = 0


@dataclass(slots=True)
class ActiveTestResp:
    command_id: ClassVar[int] = ACTIVE_TEST_RESP
    sequence: int = 0


@dataclass(slots=True)
class Exit:
    command_id: ClassVar[int] = EXIT
    sequence: int = 0


@dataclass(slots=True)
class ExitResp:
    command_id: ClassVar[int] = EXIT_RESP
    sequence: int = 0


Pdu = Login | LoginResp | Submit | SubmitResp | Deliver | DeliverResp | ActiveTest | ActiveTestResp | Exit | ExitResp


# --------------------------------------------------------------------------------------------------
# TLVs


def tlv_u8(tag: int, value: int) -> Tlv:
    if not 0 <= value <= 0xFF:
        raise ProtocolError(f"TLV 0x{tag:04X}: {value} does not fit one byte")
    return Tlv(tag, bytes((value,)))


def tlv_str(tag: int, value: str) -> Tlv:
    """A string TLV; NUL-padded to the tag's fixed size (LinkID 20, MsgSrc 8, MServiceID 21)."""
    size = TLV_SIZES.get(tag)
    if size is None:
        raw = octets(value, 0xFFFF, f"TLV 0x{tag:04X}")
        return Tlv(tag, raw)
    return Tlv(tag, octets(value, size, f"TLV 0x{tag:04X}").ljust(size, b"\0"))


def get_tlv(tlvs: tuple[Tlv, ...], tag: int) -> bytes | None:
    """The value of the first TLV with ``tag``, or None."""
    for t in tlvs:
        if t.tag == tag:
            return t.value
    return None


def get_tlv_int(tlvs: tuple[Tlv, ...], tag: int, default: int | None = None) -> int | None:
    """A one-byte (or any big-endian) integer TLV value."""
    value = get_tlv(tlvs, tag)
    if not value:
        return default
    return int.from_bytes(value, "big")


def get_tlv_str(tlvs: tuple[Tlv, ...], tag: int, default: str | None = None) -> str | None:
    value = get_tlv(tlvs, tag)
    return default if value is None else text(value)


def _d_tlvs(b: bytes, pos: int, name: str) -> tuple[Tlv, ...]:
    out: list[Tlv] = []
    n = len(b)
    while pos < n:
        if pos + 4 > n:
            raise ProtocolError(f"{name}: {n - pos} trailing bytes are too short for a TLV header")
        tag, length = _TLV.unpack_from(b, pos)
        pos += 4
        if pos + length > n:
            raise ProtocolError(f"{name}: TLV 0x{tag:04X} declares {length} bytes, only {n - pos} remain")
        out.append(Tlv(tag, b[pos : pos + length]))
        pos += length
    return tuple(out)


def _e_tlvs(tlvs: tuple[Tlv, ...]) -> bytes:
    parts = []
    for tag, value in tlvs:
        if len(value) > 0xFFFF:
            raise ProtocolError(f"TLV 0x{tag:04X}: value of {len(value)} bytes is too long")
        parts.append(_TLV.pack(tag, len(value)))
        parts.append(value)
    return b"".join(parts)


# --------------------------------------------------------------------------------------------------
# Header


# ``(packet_length, request_id, sequence)`` of the frame starting at ``buf[0]``.
read_header = _FRAMING.read_header


# --------------------------------------------------------------------------------------------------
# Decoders


def _d_login(b: bytes) -> Login:
    _check_len("Login", b, _LOGIN.size)
    client_id, auth, mode, ts, version = _LOGIN.unpack(b)
    return Login(text(client_id), auth, mode, ts, version)


def _d_login_resp(b: bytes) -> LoginResp:
    _check_len("Login_Resp", b, _LOGIN_RESP.size)
    status, auth, version = _LOGIN_RESP.unpack(b)
    return LoginResp(status, auth, version)


def _d_submit(b: bytes) -> Submit:
    n = len(b)
    if n < _SUBMIT_HEAD.size:
        raise ProtocolError(f"Submit: body is {n} bytes, shorter than the {_SUBMIT_HEAD.size}-byte fixed part")
    (
        msg_type,
        need_report,
        priority,
        service_id,
        fee_type,
        fee_code,
        fixed_fee,
        fmt,
        valid,
        at,
        src,
        charge,
        count,
    ) = _SUBMIT_HEAD.unpack_from(b)
    if count > MAX_DEST_TERMS:
        raise ProtocolError(f"Submit: DestTermIDCount {count} exceeds {MAX_DEST_TERMS}")
    pos = _SUBMIT_HEAD.size
    ids_end = pos + 21 * count
    if ids_end + 1 > n:
        raise ProtocolError(f"Submit: truncated within the {count} DestTermIDs")
    dests = tuple(text(b[i : i + 21]) for i in range(pos, ids_end, 21))
    length = b[ids_end]
    content_pos = ids_end + 1
    tlv_pos = content_pos + length + 8
    if tlv_pos > n:
        raise ProtocolError(f"Submit: body is {n} bytes, MsgLength {length} needs at least {tlv_pos}")
    return Submit(
        msg_type,
        need_report,
        priority,
        _text_cached(service_id),
        _text_cached(fee_type),
        _text_cached(fee_code),
        _text_cached(fixed_fee),
        fmt,
        _text_cached(valid),
        _text_cached(at),
        _text_cached(src),
        _text_cached(charge),
        dests,
        b[content_pos : content_pos + length],
        text(b[content_pos + length : tlv_pos]),
        _d_tlvs(b, tlv_pos, "Submit"),
    )


def _d_resp(cls: Any, name: str) -> Any:
    def dec(b: bytes) -> Any:
        _check_len(name, b, _RESP.size)
        msg_id, status = _RESP.unpack(b)
        return cls(msg_id, status)

    return dec


def _d_deliver(b: bytes) -> Deliver:
    n = len(b)
    if n < _DELIVER_HEAD.size:
        raise ProtocolError(f"Deliver: body is {n} bytes, shorter than the {_DELIVER_HEAD.size}-byte fixed part")
    msg_id, is_report, fmt, recv_time, src, dest, length = _DELIVER_HEAD.unpack_from(b)
    pos = _DELIVER_HEAD.size
    tlv_pos = pos + length + 8
    if tlv_pos > n:
        raise ProtocolError(f"Deliver: body is {n} bytes, MsgLength {length} needs at least {tlv_pos}")
    return Deliver(
        msg_id,
        is_report,
        fmt,
        text(recv_time),
        text(src),
        text(dest),
        b[pos : pos + length],
        text(b[pos + length : tlv_pos]),
        _d_tlvs(b, tlv_pos, "Deliver"),
    )


def _d_empty(cls: Any, name: str) -> Any:
    def dec(b: bytes) -> Any:
        _check_len(name, b, 0)
        return cls()

    return dec


_DECODERS: dict[int, Any] = {
    LOGIN: _d_login,
    LOGIN_RESP: _d_login_resp,
    SUBMIT: _d_submit,
    SUBMIT_RESP: _d_resp(SubmitResp, "Submit_Resp"),
    DELIVER: _d_deliver,
    DELIVER_RESP: _d_resp(DeliverResp, "Deliver_Resp"),
    ACTIVE_TEST: _d_empty(ActiveTest, "Active_Test"),
    ACTIVE_TEST_RESP: _d_empty(ActiveTestResp, "Active_Test_Resp"),
    EXIT: _d_empty(Exit, "Exit"),
    EXIT_RESP: _d_empty(ExitResp, "Exit_Resp"),
}


def decode(frame: bytes | bytearray | memoryview) -> Pdu:
    """Decode one whole frame (header included). Raises only ``ProtocolError``."""
    if type(frame) is not bytes:
        frame = bytes(frame)
    n = len(frame)
    if n < HEADER_SIZE:
        raise _FRAMING.too_short(n)
    total, command_id, sequence = _HEADER.unpack_from(frame)
    if total != n:
        raise _FRAMING.length_mismatch(total, n, command_id, sequence)
    decoder = _DECODERS.get(command_id)
    if decoder is None:
        raise _FRAMING.unknown_command(command_id, sequence)
    try:
        pdu: Pdu = decoder(frame[HEADER_SIZE:])
    except ProtocolError as exc:
        _FRAMING.annotate(exc, command_id, sequence)
        raise
    except (struct.error, ValueError, IndexError) as exc:  # defensive: never leak another exception
        raise _FRAMING.malformed(exc, command_id, sequence) from exc
    pdu.sequence = sequence
    return pdu


# --------------------------------------------------------------------------------------------------
# Encoders


def _e_login(p: Login) -> bytes:
    if len(p.authenticator) != 16:
        raise ProtocolError("Login: AuthenticatorClient must be 16 bytes")
    return _LOGIN.pack(octets(p.client_id, 8, "ClientID"), p.authenticator, p.login_mode, p.timestamp, p.client_version)


def _e_login_resp(p: LoginResp) -> bytes:
    if len(p.authenticator) != 16:
        raise ProtocolError("Login_Resp: AuthenticatorServer must be 16 bytes")
    return _LOGIN_RESP.pack(p.status, p.authenticator, p.server_version)


def _e_submit(p: Submit) -> bytes:
    if len(p.dest_term_ids) > MAX_DEST_TERMS:
        raise ProtocolError(f"Submit: {len(p.dest_term_ids)} destinations exceed {MAX_DEST_TERMS}")
    if len(p.msg_content) > 255:
        raise ProtocolError(f"Submit: MsgContent of {len(p.msg_content)} bytes exceeds 255")
    parts = [
        _SUBMIT_HEAD.pack(
            p.msg_type,
            p.need_report,
            p.priority,
            _octets_cached(p.service_id, 10, "ServiceID"),
            _octets_cached(p.fee_type, 2, "FeeType"),
            _octets_cached(p.fee_code, 6, "FeeCode"),
            _octets_cached(p.fixed_fee, 6, "FixedFee"),
            p.msg_format,
            _octets_cached(p.valid_time, 17, "ValidTime"),
            _octets_cached(p.at_time, 17, "AtTime"),
            _octets_cached(p.src_term_id, 21, "SrcTermID"),
            _octets_cached(p.charge_term_id, 21, "ChargeTermID"),
            len(p.dest_term_ids),
        )
    ]
    parts.extend(octets(d, 21, "DestTermID").ljust(21, b"\0") for d in p.dest_term_ids)
    parts.append(_U8.pack(len(p.msg_content)))
    parts.append(p.msg_content)
    parts.append(octets(p.reserve, 8, "Reserve").ljust(8, b"\0"))
    parts.append(_e_tlvs(p.tlvs))
    return b"".join(parts)


def _e_resp(p: SubmitResp | DeliverResp) -> bytes:
    return _RESP.pack(_msg_id(p.msg_id), p.status)


def _e_deliver(p: Deliver) -> bytes:
    if len(p.msg_content) > 255:
        raise ProtocolError(f"Deliver: MsgContent of {len(p.msg_content)} bytes exceeds 255")
    head = _DELIVER_HEAD.pack(
        _msg_id(p.msg_id),
        p.is_report,
        p.msg_format,
        octets(p.recv_time, 14, "RecvTime"),
        octets(p.src_term_id, 21, "SrcTermID"),
        octets(p.dest_term_id, 21, "DestTermID"),
        len(p.msg_content),
    )
    return head + p.msg_content + octets(p.reserve, 8, "Reserve").ljust(8, b"\0") + _e_tlvs(p.tlvs)


def _e_empty(p: Any) -> bytes:
    return b""


_ENCODERS: dict[type, Any] = {
    Login: _e_login,
    LoginResp: _e_login_resp,
    Submit: _e_submit,
    SubmitResp: _e_resp,
    Deliver: _e_deliver,
    DeliverResp: _e_resp,
    ActiveTest: _e_empty,
    ActiveTestResp: _e_empty,
    Exit: _e_empty,
    ExitResp: _e_empty,
}


def encode(pdu: Pdu, sequence: int | None = None) -> bytes:
    """One whole frame for ``pdu``; ``sequence`` defaults to ``pdu.sequence``."""
    encoder = _ENCODERS.get(type(pdu))
    if encoder is None:
        raise ProtocolError(f"not an SMGP PDU: {type(pdu).__name__}")
    seq = pdu.sequence if sequence is None else sequence
    try:
        body: bytes = encoder(pdu)
        return _HEADER.pack(HEADER_SIZE + len(body), pdu.command_id, seq) + body
    except struct.error as exc:
        raise ProtocolError(f"{type(pdu).__name__}: field out of range: {exc}") from exc


# --------------------------------------------------------------------------------------------------
# MsgID: 10 bytes BCD = SMGW code (6 digits) + MMDDHHMM (8 digits) + sequence (6 digits)


class MsgIdParts(NamedTuple):
    smgw_code: int
    month: int
    day: int
    hour: int
    minute: int
    sequence: int


def pack_msg_id(smgw_code: int, month: int, day: int, hour: int, minute: int, sequence: int) -> bytes:
    checks = (
        ("smgw_code", smgw_code, 0, 999999),
        ("month", month, 1, 12),
        ("day", day, 1, 31),
        ("hour", hour, 0, 23),
        ("minute", minute, 0, 59),
        ("sequence", sequence, 0, 999999),
    )
    for name, value, lo, hi in checks:
        if not lo <= value <= hi:
            raise ProtocolError(f"MsgID {name} {value} outside {lo}..{hi}")
    return bytes.fromhex(f"{smgw_code:06d}{month:02d}{day:02d}{hour:02d}{minute:02d}{sequence:06d}")


def unpack_msg_id(msg_id: bytes) -> MsgIdParts:
    digits = _msg_id(msg_id).hex()
    if not digits.isdigit():
        raise ProtocolError(f"MsgID {digits} is not BCD")
    return MsgIdParts(
        int(digits[0:6]), int(digits[6:8]), int(digits[8:10]), int(digits[10:12]), int(digits[12:14]), int(digits[14:])
    )


def msg_id_hex(msg_id: bytes) -> str:
    """The MsgID as its 20 BCD digits (how it is stored and matched against reports)."""
    return msg_id.hex()


# --------------------------------------------------------------------------------------------------
# Text status report (Deliver with IsReport = 1)


@dataclass(slots=True)
class Report:
    msg_id: bytes = b"\0" * 10  # raw 10-byte MsgID of the Submit_Resp
    sub: str = "001"
    dlvrd: str = "001"
    submit_date: str = ""  # YYMMDDhhmm
    done_date: str = ""  # YYMMDDhhmm
    stat: str = STAT_DELIVERED  # 7
    err: str = "000"  # 3
    txt: bytes = b""  # first bytes of the message (up to 20)


_REPORT_REST = re.compile(
    rb"\s*sub:(?P<sub>\S*)\s+dlvrd:(?P<dlvrd>\S*)\s+submit[ _]date:(?P<submit>\S*)"
    rb"\s+done[ _]date:(?P<done>\S*)\s+stat:(?P<stat>\S*)\s+err:(?P<err>\S*)"
    rb"(?:\s+(?:txt|text):(?P<txt>.*))?\s*$",
    re.IGNORECASE | re.DOTALL,
)


_REPORT_FIELD = re.compile(r"[!-~]*")  # printable ASCII, no spaces


def encode_report(report: Report) -> bytes:
    """``id:<10 raw bytes> sub:001 dlvrd:001 Submit date:YYMMDDhhmm done date:YYMMDDhhmm Stat:DELIVRD
    err:000 Txt:...`` (one line)."""
    fields = (
        (report.sub, 3, "sub"),
        (report.dlvrd, 3, "dlvrd"),
        (report.submit_date, 10, "Submit date"),
        (report.done_date, 10, "done date"),
        (report.stat, 7, "Stat"),
        (report.err, 3, "err"),
    )
    for value, size, name in fields:
        if len(value) > size or _REPORT_FIELD.fullmatch(value) is None:
            raise ProtocolError(f"report {name}: {value!r} must be at most {size} printable ASCII characters")
    if len(report.txt) > 20:
        raise ProtocolError(f"report Txt: {len(report.txt)} bytes exceed 20")
    return (
        b"id:"
        + _msg_id(report.msg_id)
        + (
            f" sub:{report.sub} dlvrd:{report.dlvrd} Submit date:{report.submit_date} "
            f"done date:{report.done_date} Stat:{report.stat} err:{report.err} Txt:"
        ).encode("ascii")
        + report.txt
    )


def decode_report(content: bytes) -> Report:
    """Parse a report MsgContent. Tolerant of key case, ``Submit_date`` / ``Submit date``,
    ``Txt`` / ``Text``, and of an id sent as 20 BCD digits instead of 10 raw bytes."""
    content = bytes(content)
    if content[:3].lower() != b"id:":
        raise ProtocolError("status report does not start with 'id:'")
    rest = content[3:]
    msg_id = rest[:10]
    match = _REPORT_REST.match(rest, 10) if len(rest) >= 10 else None
    if match is None and len(rest) >= 20 and rest[:20].isdigit():  # id written as 20 BCD digits
        msg_id = bytes.fromhex(rest[:20].decode("ascii"))
        match = _REPORT_REST.match(rest, 20)
    if match is None:
        raise ProtocolError(f"status report: unrecognised layout {content[:120]!r}")
    sub, dlvrd, submit, done, stat, err = (
        match[k].decode("latin-1") for k in ("sub", "dlvrd", "submit", "done", "stat", "err")
    )
    return Report(msg_id, sub, dlvrd, submit, done, stat, err, match["txt"] or b"")


# --------------------------------------------------------------------------------------------------
# Authenticators


smgp_timestamp = decimal_timestamp  # the Login TimeStamp: MMDDHHMMSS read as a decimal number


def smgp_authenticator_client(client_id: str, secret: str | bytes, timestamp: int | str) -> bytes:
    """AuthenticatorClient = MD5(ClientID + 7 zero bytes + shared secret + timestamp "MMDDHHMMSS")."""
    return login_authenticator(client_id, 7, secret, timestamp)


def smgp_authenticator_server(status: int, auth_client: bytes, secret: str | bytes) -> bytes:
    """AuthenticatorServer = MD5(Status (4 bytes) + AuthenticatorClient + shared secret)."""
    return status_authenticator(_U32.pack(status), auth_client, secret)


SMGP30 = CodecNamespace(
    HEADER_SIZE=HEADER_SIZE,
    MAX_FRAME_SIZE=MAX_FRAME_SIZE,
    RESPONSE_OF=RESPONSE_OF,
    HEARTBEAT_ID=HEARTBEAT_ID,
    TERMINATE_ID=TERMINATE_ID,
    ProtocolError=ProtocolError,
    read_header=read_header,
    decode=decode,
    encode=encode,
)


# --------------------------------------------------------------------------------------------------
# Status names and the session-engine adapter

STATUS_NAMES: dict[int, str] = {
    STATUS_OK: "success",
    STATUS_SYSTEM_BUSY: "system busy",
    STATUS_TOO_MANY_CONNECTIONS: "too many connections",
    STATUS_BAD_STRUCTURE: "bad message structure",
    STATUS_BAD_COMMAND: "bad command id",
    STATUS_DUPLICATE_SEQUENCE: "duplicate sequence id",
    STATUS_BAD_IP: "IP address not allowed",
    STATUS_AUTH_FAILED: "authentication failed (wrong ClientID or shared secret)",
    STATUS_VERSION_TOO_HIGH: "version too high",
    STATUS_BAD_MSG_TYPE: "bad MsgType",
    STATUS_BAD_PRIORITY: "bad Priority",
    STATUS_BAD_FEE_TYPE: "bad FeeType",
    STATUS_BAD_FEE_CODE: "bad FeeCode",
    STATUS_BAD_MSG_FORMAT: "bad MsgFormat",
    STATUS_BAD_TIME_FORMAT: "bad time format",
    STATUS_BAD_MSG_LENGTH: "bad MsgLength",
    STATUS_EXPIRED: "validity period expired",
    STATUS_BAD_QUERY_TYPE: "bad query type",
    STATUS_ROUTE_ERROR: "routing error",
}


def status_name(status: int) -> str:
    """``"21 (authentication failed …)"``: the number and what it means, for logs and errors."""
    name = STATUS_NAMES.get(status)
    return f"{status} ({name})" if name else f"{status} (unknown status)"


def response_for(request: Any, status: int = STATUS_OK, sequence: int | None = None) -> Pdu:
    """The response PDU answering ``request`` (a request PDU object) with ``status``.

    Submit_Resp carries a zero MsgID (the caller sets the real one on success); Deliver_Resp echoes
    the Deliver's MsgID; Login_Resp has a zero AuthenticatorServer.
    """
    seq = request.sequence if sequence is None else sequence
    cid = request.command_id
    if cid == SUBMIT:
        return SubmitResp(status=status, sequence=seq)
    if cid == DELIVER:
        return DeliverResp(msg_id=request.msg_id, status=status, sequence=seq)
    if cid == LOGIN:
        return LoginResp(status=status, sequence=seq)
    if cid == ACTIVE_TEST:
        return ActiveTestResp(sequence=seq)
    if cid == EXIT:
        return ExitResp(sequence=seq)
    raise ProtocolError(f"no SMGP response for RequestID 0x{cid:08X}", command_id=cid, sequence=seq)


class SmgpCodec(TypedResponseCodec):
    """The SMGP 3.0 half of a ``qixin.protocols.session.Session``.

    Active_Test is the keepalive and Exit the unbind (both answered by the engine). A request whose
    body does not decode is answered with its own response type carrying the decoder's status (10,
    bad structure); a frame with an unknown RequestID cannot be answered in SMGP (there is no generic
    NACK) and is only logged. SMGP 3.0 has no generic "system error" status: a request the handler
    failed on is answered with 1 (system busy), which tells the peer to try again later.
    """

    header_size = HEADER_SIZE
    max_frame_size = MAX_FRAME_SIZE
    status_system_error = STATUS_SYSTEM_BUSY

    decode = staticmethod(decode)
    encode = staticmethod(encode)

    # the session-engine methods themselves: qixin.protocols.fields
    HEARTBEAT_ID = HEARTBEAT_ID
    TERMINATE_ID = TERMINATE_ID
    heartbeat_class = ActiveTest
    unbind_class = Exit
    request_classes: ClassVar[dict[int, Any]] = {
        LOGIN: Login,
        SUBMIT: Submit,
        DELIVER: Deliver,
        ACTIVE_TEST: ActiveTest,
        EXIT: Exit,
    }
    status_bad_structure = STATUS_BAD_STRUCTURE

    def respond(self, request: Any, status: int) -> Any:
        return response_for(request, status)
