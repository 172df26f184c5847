"""CMPP 2.0 / 3.0 (China Mobile Peer to Peer) wire format: bytes <-> PDU dataclasses.

Pure codec: no sockets, no business rules. All integers are big-endian (network order); fixed-length
octet strings are padded with NUL on encode and cut at the first NUL on decode (latin-1, so any byte
value survives a round trip).

Frame = 12-byte header (Total_Length, Command_Id, Sequence_Id) + body. ``decode(frame, version)``
takes one whole frame; ``encode(pdu, sequence, version)`` returns one. The two versions share the PDU
classes; the version only changes the byte layout:

==========================  ==========  ============================================
field                       CMPP 2.0    CMPP 3.0
==========================  ==========  ============================================
CONNECT_RESP Status         1 byte      4 bytes
SUBMIT/DELIVER terminal id  21 bytes    32 bytes (+ 1-byte terminal type after it)
SUBMIT trailer              Reserve 8   LinkID 20
DELIVER trailer             Reserved 8  LinkID 20
SUBMIT_RESP/DELIVER_RESP    Result 1    Result 4
CANCEL_RESP Success_Id      1 byte      4 bytes
report Dest_terminal_Id     21 bytes    32 bytes (report body 60 / 71 bytes)
==========================  ==========  ============================================

Fields that exist in only one version (``fee_terminal_type``, ``dest_terminal_type``,
``src_terminal_type``, ``link_id`` for 3.0; ``reserve`` for 2.0) must keep their default when encoding
the other version, otherwise ``encode`` raises ``ProtocolError`` rather than silently dropping them.

Decoders raise only ``ProtocolError`` (a ``PduError``/``ValueError``). Tolerated deviations, each a
known behaviour of deployed gateways: CONNECT_RESP is decoded by its body length (18 bytes = 2.0
layout, 21 = 3.0 layout) whatever version was asked for, because a gateway answers a version mismatch
in its own layout; ACTIVE_TEST_RESP is accepted with an empty body (the Reserved byte missing).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from qixin.protocols.errors import PduError
from qixin.protocols.fields import RESPONSE_BIT as RESPONSE_BIT  # re-exported: it was defined here
from qixin.protocols.fields import (
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
    "CANCEL",
    "CANCEL_RESP",
    "CMPP20",
    "CMPP30",
    "CONNECT",
    "CONNECT_RESP",
    "DELIVER",
    "DELIVER_RESP",
    "HEADER_SIZE",
    "HEARTBEAT_ID",
    "MAX_FRAME_SIZE",
    "QUERY",
    "QUERY_RESP",
    "RESPONSE_OF",
    "SUBMIT",
    "SUBMIT_RESP",
    "TERMINATE",
    "TERMINATE_ID",
    "TERMINATE_RESP",
    "VERSION_20",
    "VERSION_30",
    "ActiveTest",
    "ActiveTestResp",
    "Cancel",
    "CancelResp",
    "CmppCodec",
    "Connect",
    "ConnectResp",
    "Deliver",
    "DeliverResp",
    "MsgIdParts",
    "Pdu",
    "ProtocolError",
    "Query",
    "QueryResp",
    "Report",
    "Submit",
    "SubmitResp",
    "Terminate",
    "TerminateResp",
    "cmpp_authenticator_ismg",
    "cmpp_authenticator_source",
    "cmpp_timestamp",
    "decode",
    "decode_report",
    "encode",
    "encode_report",
    "pack_msg_id",
    "read_header",
    "response_to",
    "unpack_msg_id",
]

# --------------------------------------------------------------------------------------------------
# Constants

VERSION_20 = 0x20
VERSION_30 = 0x30

CONNECT = 0x00000001
CONNECT_RESP = 0x80000001
TERMINATE = 0x00000002
TERMINATE_RESP = 0x80000002
SUBMIT = 0x00000004
SUBMIT_RESP = 0x80000004
DELIVER = 0x00000005
DELIVER_RESP = 0x80000005
QUERY = 0x00000006
QUERY_RESP = 0x80000006
CANCEL = 0x00000007
CANCEL_RESP = 0x80000007
ACTIVE_TEST = 0x00000008
ACTIVE_TEST_RESP = 0x80000008

RESPONSE_OF: dict[int, int] = {
    CONNECT: CONNECT_RESP,
    TERMINATE: TERMINATE_RESP,
    SUBMIT: SUBMIT_RESP,
    DELIVER: DELIVER_RESP,
    QUERY: QUERY_RESP,
    CANCEL: CANCEL_RESP,
    ACTIVE_TEST: ACTIVE_TEST_RESP,
}
HEARTBEAT_ID = ACTIVE_TEST
TERMINATE_ID = TERMINATE

HEADER_SIZE = 12
# 3.0 SUBMIT to 100 numbers with a 255-byte content is 12 + 151 + 3200 + 255 = 3618 bytes.
MAX_FRAME_SIZE = 8192
MAX_DEST_USERS = 100

# CONNECT_RESP Status
CONNECT_OK = 0
CONNECT_BAD_STRUCTURE = 1
CONNECT_BAD_SOURCE_ADDR = 2
CONNECT_AUTH_FAILED = 3
CONNECT_VERSION_TOO_HIGH = 4
CONNECT_OTHER_ERROR = 5

# SUBMIT_RESP / DELIVER_RESP Result
RESULT_OK = 0
RESULT_BAD_STRUCTURE = 1
RESULT_BAD_COMMAND = 2
RESULT_DUPLICATE_SEQUENCE = 3
RESULT_BAD_MSG_LENGTH = 4
RESULT_BAD_FEE_CODE = 5
RESULT_MSG_TOO_LONG = 6
RESULT_BAD_SERVICE_ID = 7
RESULT_FLOW_CONTROL = 8  # throttling: resubmit later
RESULT_NOT_SERVED_FEE_NUMBER = 9  # 3.0: this gateway does not serve the charged number
RESULT_BAD_SRC_ID = 10  # 3.0
RESULT_BAD_MSG_SRC = 11  # 3.0
RESULT_BAD_FEE_TERMINAL_ID = 12  # 3.0
RESULT_BAD_DEST_TERMINAL_ID = 13  # 3.0
RESULT_OTHER_ERROR = 9  # "9~ other error" (2.0 tables, DELIVER_RESP of both versions)

# Msg_Fmt
MSG_FMT_ASCII = 0
MSG_FMT_BINARY = 4
MSG_FMT_UCS2 = 8
MSG_FMT_GB = 15

# Registered_Delivery in DELIVER: 1 = Msg_Content is a status report
DELIVER_IS_REPORT = 1

# Report Stat values
STAT_DELIVERED = "DELIVRD"
STAT_EXPIRED = "EXPIRED"
STAT_DELETED = "DELETED"
STAT_UNDELIVERABLE = "UNDELIV"
STAT_ACCEPTED = "ACCEPTD"
STAT_UNKNOWN = "UNKNOWN"
STAT_REJECTED = "REJECTD"


class ProtocolError(PduError):
    """Malformed CMPP input (or a PDU that cannot be encoded). The only exception decoders raise."""


# --------------------------------------------------------------------------------------------------
# Precompiled layouts

_HEADER = struct.Struct(">III")
_CONNECT = struct.Struct(">6s16sBI")  # 27
_CONNECT_RESP_20 = struct.Struct(">B16sB")  # 18
_CONNECT_RESP_30 = struct.Struct(">I16sB")  # 21
_SUBMIT_HEAD_20 = struct.Struct(">QBBBB10sB21sBBB6s2s6s17s17s21sB")  # 117
_SUBMIT_HEAD_30 = struct.Struct(">QBBBB10sB32sBBBB6s2s6s17s17s21sB")  # 129
_RESP_20 = struct.Struct(">QB")  # 9   SUBMIT_RESP, DELIVER_RESP
_RESP_30 = struct.Struct(">QI")  # 12
_DELIVER_HEAD_20 = struct.Struct(">Q21s10sBBB21sBB")  # 65
_DELIVER_HEAD_30 = struct.Struct(">Q21s10sBBB32sBBB")  # 77
_QUERY = struct.Struct(">8sB10s8s")  # 27
_QUERY_RESP = struct.Struct(">8sB10sIIIIIIII")  # 51
_CANCEL = struct.Struct(">Q")  # 8
_U8 = struct.Struct(">B")
_U32 = struct.Struct(">I")
_REPORT_20 = struct.Struct(">Q7s10s10s21sI")  # 60
_REPORT_30 = struct.Struct(">Q7s10s10s32sI")  # 71

REPORT_SIZE_20 = _REPORT_20.size
REPORT_SIZE_30 = _REPORT_30.size


# --------------------------------------------------------------------------------------------------
# Octet string helpers


octets = octets_encoder(ProtocolError)  # text(raw) reads one back (qixin.protocols.fields)
_check_len = length_checker(ProtocolError)
_FRAMING = Framing(
    error=ProtocolError,
    protocol="CMPP",
    length_field="Total_Length",
    id_field="Command_Id",
    header_size=HEADER_SIZE,
    max_frame_size=MAX_FRAME_SIZE,
    bad_structure=RESULT_BAD_STRUCTURE,
    bad_command=RESULT_BAD_COMMAND,
)


def _version(version: int) -> bool:
    """True for 3.0, False for 2.0."""
    if version == VERSION_30:
        return True
    if version == VERSION_20:
        return False
    raise ProtocolError(f"unsupported CMPP version 0x{version:02X} (expected 0x20 or 0x30)")


# --------------------------------------------------------------------------------------------------
# PDUs


@dataclass(slots=True)
class Connect:
    command_id: ClassVar[int] = CONNECT
    source_addr: str = ""  # SP enterprise code, 6
    authenticator: bytes = b"\0" * 16  # AuthenticatorSource
    version: int = VERSION_30
    timestamp: int = 0  # MMDDHHMMSS as a decimal number
    sequence: int = 0


@dataclass(slots=True)
class ConnectResp:
    command_id: ClassVar[int] = CONNECT_RESP
    status: int = CONNECT_OK
    authenticator: bytes = b"\0" * 16  # AuthenticatorISMG
    version: int = VERSION_30
    sequence: int = 0


@dataclass(slots=True)
class Terminate:
    command_id: ClassVar[int] = TERMINATE
    sequence: int = 0


@dataclass(slots=True)
class TerminateResp:
    command_id: ClassVar[int] = TERMINATE_RESP
    sequence: int = 0


@dataclass(slots=True)
class ActiveTest:
    command_id: ClassVar[int] = ACTIVE_TEST
    sequence: int = 0


@dataclass(slots=True)
class ActiveTestResp:
    command_id: ClassVar[int] = ACTIVE_TEST_RESP
    reserved: int = 0
    sequence: int = 0


@dataclass(slots=True)
class Submit:
    command_id: ClassVar[int] = SUBMIT
    msg_id: int = 0
    pk_total: int = 1
    pk_number: int = 1
    registered_delivery: int = 0
    msg_level: int = 0
    service_id: str = ""  # 10
    fee_user_type: int = 0
    fee_terminal_id: str = ""  # 21 / 32
    fee_terminal_type: int = 0  # 3.0 only
    tp_pid: int = 0
    tp_udhi: int = 0
    msg_fmt: int = MSG_FMT_ASCII
    msg_src: str = ""  # 6
    fee_type: str = ""  # 2
    fee_code: str = ""  # 6
    valid_time: str = ""  # ValId_Time 17
    at_time: str = ""  # 17
    src_id: str = ""  # 21
    dest_terminal_ids: tuple[str, ...] = ()  # DestUsr_tl x 21 / 32
    dest_terminal_type: int = 0  # 3.0 only
    msg_content: bytes = b""  # Msg_Length 1 byte
    link_id: str = ""  # 3.0 only, 20
    reserve: str = ""  # 2.0 only, 8
    sequence: int = 0


@dataclass(slots=True)
class SubmitResp:
    command_id: ClassVar[int] = SUBMIT_RESP
    msg_id: int = 0
    result: int = RESULT_OK
    sequence: int = 0


@dataclass(slots=True)
class Deliver:
    command_id: ClassVar[int] = DELIVER
    msg_id: int = 0
    dest_id: str = ""  # 21
    service_id: str = ""  # 10
    tp_pid: int = 0
    tp_udhi: int = 0
    msg_fmt: int = MSG_FMT_ASCII
    src_terminal_id: str = ""  # 21 / 32
    src_terminal_type: int = 0  # 3.0 only
    registered_delivery: int = 0  # 1 = msg_content is a status report (see decode_report)
    msg_content: bytes = b""
    link_id: str = ""  # 3.0 only, 20
    reserved: str = ""  # 2.0 only, 8
    sequence: int = 0


@dataclass(slots=True)
class DeliverResp:
    command_id: ClassVar[int] = DELIVER_RESP
    msg_id: int = 0
    result: int = RESULT_OK
    sequence: int = 0


@dataclass(slots=True)
class Query:
    command_id: ClassVar[int] = QUERY
    time: str = ""  # YYYYMMDD, 8
    query_type: int = 0  # 0 totals, 1 by service
    query_code: str = ""  # 10
    reserve: str = ""  # 8
    sequence: int = 0


@dataclass(slots=True)
class QueryResp:
    command_id: ClassVar[int] = QUERY_RESP
    time: str = ""
    query_type: int = 0
    query_code: str = ""
    mt_tl_msg: int = 0
    mt_tl_usr: int = 0
    mt_scs: int = 0
    mt_wt: int = 0
    mt_fl: int = 0
    mo_scs: int = 0
    mo_wt: int = 0
    mo_fl: int = 0
    sequence: int = 0


@dataclass(slots=True)
class Cancel:
    command_id: ClassVar[int] = CANCEL
    msg_id: int = 0
    sequence: int = 0


@dataclass(slots=True)
class CancelResp:
    command_id: ClassVar[int] = CANCEL_RESP
    success_id: int = 0  # 0 success, 1 failure
    sequence: int = 0


Pdu = (
    Connect
    | ConnectResp
    | Terminate
    | TerminateResp
    | ActiveTest
    | ActiveTestResp
    | Submit
    | SubmitResp
    | Deliver
    | DeliverResp
    | Query
    | QueryResp
    | Cancel
    | CancelResp
)


@dataclass(slots=True)
class Report:
    """The status report carried in DELIVER's Msg_Content when Registered_Delivery = 1."""

    msg_id: int = 0  # Msg_Id of the SUBMIT (as in SUBMIT_RESP)
    stat: str = STAT_DELIVERED  # 7
    submit_time: str = ""  # YYMMDDHHMM, 10
    done_time: str = ""  # YYMMDDHHMM, 10
    dest_terminal_id: str = ""  # 21 / 32
    smsc_sequence: int = 0


# --------------------------------------------------------------------------------------------------
# Header


# ``(total_length, command_id, sequence)`` of the frame starting at ``buf[0]``; rejects a Total_Length below
# the header size or above ``MAX_FRAME_SIZE`` (framing cannot resync).
read_header = _FRAMING.read_header


# --------------------------------------------------------------------------------------------------
# Body decoders (body = frame without header)


def _d_connect(b: bytes, v30: bool) -> Connect:
    _check_len("CONNECT", b, _CONNECT.size)
    src, auth, ver, ts = _CONNECT.unpack(b)
    return Connect(text(src), auth, ver, ts)


def _d_connect_resp(b: bytes, v30: bool) -> ConnectResp:
    # Decoded by length: the gateway may answer in the other version's layout (see module doc).
    if len(b) == _CONNECT_RESP_30.size:
        status, auth, ver = _CONNECT_RESP_30.unpack(b)
    elif len(b) == _CONNECT_RESP_20.size:
        status, auth, ver = _CONNECT_RESP_20.unpack(b)
    else:
        raise ProtocolError(f"CONNECT_RESP: body is {len(b)} bytes, the layout requires 18 (2.0) or 21 (3.0)")
    return ConnectResp(status, auth, ver)


def _d_empty(cls: Any, name: str) -> Any:
    def dec(b: bytes, v30: bool) -> Any:
        _check_len(name, b, 0)
        return cls()

    return dec


def _d_active_test_resp(b: bytes, v30: bool) -> ActiveTestResp:
    if len(b) == 0:  # tolerated: Reserved byte missing
        return ActiveTestResp()
    _check_len("ACTIVE_TEST_RESP", b, 1)
    return ActiveTestResp(b[0])


def _d_submit(b: bytes, v30: bool) -> Submit:
    head = _SUBMIT_HEAD_30 if v30 else _SUBMIT_HEAD_20
    id_size = 32 if v30 else 21
    n = len(b)
    if n < head.size:
        raise ProtocolError(f"SUBMIT: body is {n} bytes, shorter than the {head.size}-byte fixed part")
    f = head.unpack_from(b)
    if v30:
        (
            msg_id,
            pk_total,
            pk_number,
            reg,
            level,
            service_id,
            fee_user_type,
            fee_tid,
            fee_ttype,
            pid,
            udhi,
            fmt,
            msg_src,
            fee_type,
            fee_code,
            valid,
            at,
            src_id,
            count,
        ) = f
    else:
        (
            msg_id,
            pk_total,
            pk_number,
            reg,
            level,
            service_id,
            fee_user_type,
            fee_tid,
            pid,
            udhi,
            fmt,
            msg_src,
            fee_type,
            fee_code,
            valid,
            at,
            src_id,
            count,
        ) = f
        fee_ttype = 0
    if count > MAX_DEST_USERS:
        raise ProtocolError(f"SUBMIT: DestUsr_tl {count} exceeds {MAX_DEST_USERS}")
    pos = head.size
    ids_end = pos + count * id_size
    len_pos = ids_end + (1 if v30 else 0)  # Dest_terminal_type in 3.0
    if len_pos + 1 > n:
        raise ProtocolError(f"SUBMIT: truncated within the {count} destination terminal ids")
    dests = tuple(text(b[i : i + id_size]) for i in range(pos, ids_end, id_size))
    dest_type = b[ids_end] if v30 else 0
    msg_len = b[len_pos]
    content_pos = len_pos + 1
    trailer = 20 if v30 else 8
    expected = content_pos + msg_len + trailer
    if n != expected:
        raise ProtocolError(f"SUBMIT: body is {n} bytes but Msg_Length {msg_len} implies {expected}")
    content = b[content_pos : content_pos + msg_len]
    tail = text(b[content_pos + msg_len :])
    return Submit(
        msg_id,
        pk_total,
        pk_number,
        reg,
        level,
        text(service_id),
        fee_user_type,
        text(fee_tid),
        fee_ttype,
        pid,
        udhi,
        fmt,
        text(msg_src),
        text(fee_type),
        text(fee_code),
        text(valid),
        text(at),
        text(src_id),
        dests,
        dest_type,
        content,
        tail if v30 else "",
        "" if v30 else tail,
    )


def _d_resp(cls: Any, name: str) -> Any:
    def dec(b: bytes, v30: bool) -> Any:
        layout = _RESP_30 if v30 else _RESP_20
        _check_len(name, b, layout.size)
        msg_id, result = layout.unpack(b)
        return cls(msg_id, result)

    return dec


def _d_deliver(b: bytes, v30: bool) -> Deliver:
    head = _DELIVER_HEAD_30 if v30 else _DELIVER_HEAD_20
    n = len(b)
    if n < head.size:
        raise ProtocolError(f"DELIVER: body is {n} bytes, shorter than the {head.size}-byte fixed part")
    if v30:
        msg_id, dest_id, service_id, pid, udhi, fmt, src, src_type, reg, msg_len = head.unpack_from(b)
    else:
        msg_id, dest_id, service_id, pid, udhi, fmt, src, reg, msg_len = head.unpack_from(b)
        src_type = 0
    trailer = 20 if v30 else 8
    expected = head.size + msg_len + trailer
    if n != expected:
        raise ProtocolError(f"DELIVER: body is {n} bytes but Msg_Length {msg_len} implies {expected}")
    content = b[head.size : head.size + msg_len]
    tail = text(b[head.size + msg_len :])
    return Deliver(
        msg_id,
        text(dest_id),
        text(service_id),
        pid,
        udhi,
        fmt,
        text(src),
        src_type,
        reg,
        content,
        tail if v30 else "",
        "" if v30 else tail,
    )


def _d_query(b: bytes, v30: bool) -> Query:
    _check_len("QUERY", b, _QUERY.size)
    t, qtype, code, reserve = _QUERY.unpack(b)
    return Query(text(t), qtype, text(code), text(reserve))


def _d_query_resp(b: bytes, v30: bool) -> QueryResp:
    _check_len("QUERY_RESP", b, _QUERY_RESP.size)
    t, qtype, code, *counts = _QUERY_RESP.unpack(b)
    return QueryResp(text(t), qtype, text(code), *counts)


def _d_cancel(b: bytes, v30: bool) -> Cancel:
    _check_len("CANCEL", b, _CANCEL.size)
    return Cancel(_CANCEL.unpack(b)[0])


def _d_cancel_resp(b: bytes, v30: bool) -> CancelResp:
    layout = _U32 if v30 else _U8
    _check_len("CANCEL_RESP", b, layout.size)
    return CancelResp(layout.unpack(b)[0])


_DECODERS: dict[int, Any] = {
    CONNECT: _d_connect,
    CONNECT_RESP: _d_connect_resp,
    TERMINATE: _d_empty(Terminate, "TERMINATE"),
    TERMINATE_RESP: _d_empty(TerminateResp, "TERMINATE_RESP"),
    ACTIVE_TEST: _d_empty(ActiveTest, "ACTIVE_TEST"),
    ACTIVE_TEST_RESP: _d_active_test_resp,
    SUBMIT: _d_submit,
    SUBMIT_RESP: _d_resp(SubmitResp, "SUBMIT_RESP"),
    DELIVER: _d_deliver,
    DELIVER_RESP: _d_resp(DeliverResp, "DELIVER_RESP"),
    QUERY: _d_query,
    QUERY_RESP: _d_query_resp,
    CANCEL: _d_cancel,
    CANCEL_RESP: _d_cancel_resp,
}


def decode(frame: bytes | bytearray | memoryview, version: int = VERSION_30) -> Pdu:
    """Decode one whole frame (header included). Raises only ``ProtocolError``.

    The returned PDU's ``sequence`` is the header's Sequence_Id.
    """
    v30 = _version(version)
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
        pdu: Pdu = decoder(frame[HEADER_SIZE:], v30)
    except ProtocolError as exc:
        _FRAMING.annotate(exc, command_id, sequence)
        raise
    except (struct.error, ValueError, IndexError) as exc:  # defensive: never leak another exception
        raise _FRAMING.malformed(exc, command_id, sequence) from exc
    pdu.sequence = sequence
    return pdu


# --------------------------------------------------------------------------------------------------
# Body encoders


def _only_in(name: str, value: object, default: object, version: str) -> None:
    if value != default:
        raise ProtocolError(f"{name} exists only in CMPP {version}; leave it at its default")


def _e_connect(p: Connect, v30: bool) -> bytes:
    if len(p.authenticator) != 16:
        raise ProtocolError("CONNECT: AuthenticatorSource must be 16 bytes")
    return _CONNECT.pack(octets(p.source_addr, 6, "Source_Addr"), p.authenticator, p.version, p.timestamp)


def _e_connect_resp(p: ConnectResp, v30: bool) -> bytes:
    if len(p.authenticator) != 16:
        raise ProtocolError("CONNECT_RESP: AuthenticatorISMG must be 16 bytes")
    layout = _CONNECT_RESP_30 if v30 else _CONNECT_RESP_20
    return layout.pack(p.status, p.authenticator, p.version)


def _e_empty(p: Any, v30: bool) -> bytes:
    return b""


def _e_active_test_resp(p: ActiveTestResp, v30: bool) -> bytes:
    return _U8.pack(p.reserved)


def _e_submit(p: Submit, v30: bool) -> bytes:
    id_size = 32 if v30 else 21
    if len(p.dest_terminal_ids) > MAX_DEST_USERS:
        raise ProtocolError(f"SUBMIT: {len(p.dest_terminal_ids)} destinations exceed {MAX_DEST_USERS}")
    if len(p.msg_content) > 255:
        raise ProtocolError(f"SUBMIT: Msg_Content of {len(p.msg_content)} bytes exceeds 255")
    common = (
        p.msg_id,
        p.pk_total,
        p.pk_number,
        p.registered_delivery,
        p.msg_level,
        octets(p.service_id, 10, "Service_Id"),
        p.fee_user_type,
        octets(p.fee_terminal_id, id_size, "Fee_terminal_Id"),
    )
    rest = (
        p.tp_pid,
        p.tp_udhi,
        p.msg_fmt,
        octets(p.msg_src, 6, "Msg_src"),
        octets(p.fee_type, 2, "FeeType"),
        octets(p.fee_code, 6, "FeeCode"),
        octets(p.valid_time, 17, "ValId_Time"),
        octets(p.at_time, 17, "At_Time"),
        octets(p.src_id, 21, "Src_Id"),
        len(p.dest_terminal_ids),
    )
    parts: list[bytes]
    if v30:
        _only_in("SUBMIT.reserve", p.reserve, "", "2.0")
        parts = [_SUBMIT_HEAD_30.pack(*common, p.fee_terminal_type, *rest)]
    else:
        _only_in("SUBMIT.fee_terminal_type", p.fee_terminal_type, 0, "3.0")
        _only_in("SUBMIT.dest_terminal_type", p.dest_terminal_type, 0, "3.0")
        _only_in("SUBMIT.link_id", p.link_id, "", "3.0")
        parts = [_SUBMIT_HEAD_20.pack(*common, *rest)]
    for number in p.dest_terminal_ids:
        parts.append(octets(number, id_size, "Dest_terminal_Id").ljust(id_size, b"\0"))
    if v30:
        parts.append(_U8.pack(p.dest_terminal_type))
    parts.append(_U8.pack(len(p.msg_content)))
    parts.append(p.msg_content)
    if v30:
        parts.append(octets(p.link_id, 20, "LinkID").ljust(20, b"\0"))
    else:
        parts.append(octets(p.reserve, 8, "Reserve").ljust(8, b"\0"))
    return b"".join(parts)


def _e_resp(p: SubmitResp | DeliverResp, v30: bool) -> bytes:
    return (_RESP_30 if v30 else _RESP_20).pack(p.msg_id, p.result)


def _e_deliver(p: Deliver, v30: bool) -> bytes:
    if len(p.msg_content) > 255:
        raise ProtocolError(f"DELIVER: Msg_Content of {len(p.msg_content)} bytes exceeds 255")
    dest_id = octets(p.dest_id, 21, "Dest_Id")
    service_id = octets(p.service_id, 10, "Service_Id")
    if v30:
        _only_in("DELIVER.reserved", p.reserved, "", "2.0")
        head = _DELIVER_HEAD_30.pack(
            p.msg_id,
            dest_id,
            service_id,
            p.tp_pid,
            p.tp_udhi,
            p.msg_fmt,
            octets(p.src_terminal_id, 32, "Src_terminal_Id"),
            p.src_terminal_type,
            p.registered_delivery,
            len(p.msg_content),
        )
        tail = octets(p.link_id, 20, "LinkID").ljust(20, b"\0")
    else:
        _only_in("DELIVER.src_terminal_type", p.src_terminal_type, 0, "3.0")
        _only_in("DELIVER.link_id", p.link_id, "", "3.0")
        head = _DELIVER_HEAD_20.pack(
            p.msg_id,
            dest_id,
            service_id,
            p.tp_pid,
            p.tp_udhi,
            p.msg_fmt,
            octets(p.src_terminal_id, 21, "Src_terminal_Id"),
            p.registered_delivery,
            len(p.msg_content),
        )
        tail = octets(p.reserved, 8, "Reserved").ljust(8, b"\0")
    return head + p.msg_content + tail


def _e_query(p: Query, v30: bool) -> bytes:
    return _QUERY.pack(
        octets(p.time, 8, "Time"),
        p.query_type,
        octets(p.query_code, 10, "Query_Code"),
        octets(p.reserve, 8, "Reserve"),
    )


def _e_query_resp(p: QueryResp, v30: bool) -> bytes:
    return _QUERY_RESP.pack(
        octets(p.time, 8, "Time"),
        p.query_type,
        octets(p.query_code, 10, "Query_Code"),
        p.mt_tl_msg,
        p.mt_tl_usr,
        p.mt_scs,
        p.mt_wt,
        p.mt_fl,
        p.mo_scs,
        p.mo_wt,
        p.mo_fl,
    )


def _e_cancel(p: Cancel, v30: bool) -> bytes:
    return _CANCEL.pack(p.msg_id)


def _e_cancel_resp(p: CancelResp, v30: bool) -> bytes:
    return (_U32 if v30 else _U8).pack(p.success_id)


_ENCODERS: dict[type, Any] = {
    Connect: _e_connect,
    ConnectResp: _e_connect_resp,
    Terminate: _e_empty,
    TerminateResp: _e_empty,
    ActiveTest: _e_empty,
    ActiveTestResp: _e_active_test_resp,
    Submit: _e_submit,
    SubmitResp: _e_resp,
    Deliver: _e_deliver,
    DeliverResp: _e_resp,
    Query: _e_query,
    QueryResp: _e_query_resp,
    Cancel: _e_cancel,
    CancelResp: _e_cancel_resp,
}


def encode(pdu: Pdu, sequence: int | None = None, version: int = VERSION_30) -> bytes:
    """One whole frame for ``pdu``; ``sequence`` defaults to ``pdu.sequence``.

    Raises ``ProtocolError`` when a field does not fit its layout (too long, out of range, or a field
    the chosen version does not have).
    """
    v30 = _version(version)
    encoder = _ENCODERS.get(type(pdu))
    if encoder is None:
        raise ProtocolError(f"not a CMPP PDU: {type(pdu).__name__}")
    seq = pdu.sequence if sequence is None else sequence
    try:
        body: bytes = encoder(pdu, v30)
        return _HEADER.pack(HEADER_SIZE + len(body), pdu.command_id, seq) + body
    except struct.error as exc:
        raise ProtocolError(f"{type(pdu).__name__}: field out of range: {exc}") from exc


# --------------------------------------------------------------------------------------------------
# Status report body (DELIVER Msg_Content when Registered_Delivery = 1)


def encode_report(report: Report, version: int = VERSION_30) -> bytes:
    v30 = _version(version)
    layout = _REPORT_30 if v30 else _REPORT_20
    try:
        return layout.pack(
            report.msg_id,
            octets(report.stat, 7, "Stat"),
            octets(report.submit_time, 10, "Submit_time"),
            octets(report.done_time, 10, "Done_time"),
            octets(report.dest_terminal_id, 32 if v30 else 21, "Dest_terminal_Id"),
            report.smsc_sequence,
        )
    except struct.error as exc:
        raise ProtocolError(f"report: field out of range: {exc}") from exc


def decode_report(content: bytes, version: int = VERSION_30) -> Report:
    v30 = _version(version)
    layout = _REPORT_30 if v30 else _REPORT_20
    if len(content) != layout.size:
        raise ProtocolError(
            f"status report: Msg_Content is {len(content)} bytes, CMPP {'3.0' if v30 else '2.0'} requires {layout.size}"
        )
    msg_id, stat, submit_time, done_time, dest, smsc_seq = layout.unpack(content)
    return Report(msg_id, text(stat), text(submit_time), text(done_time), text(dest), smsc_seq)


# --------------------------------------------------------------------------------------------------
# Msg_Id (64 bits): month 4 | day 5 | hour 5 | minute 6 | second 6 | gateway id 22 | sequence 16


class MsgIdParts(NamedTuple):
    month: int
    day: int
    hour: int
    minute: int
    second: int
    gateway_id: int
    sequence: int


_MSG_ID_RANGES = (
    ("month", 1, 12),
    ("day", 1, 31),
    ("hour", 0, 23),
    ("minute", 0, 59),
    ("second", 0, 59),
    ("gateway_id", 0, (1 << 22) - 1),
    ("sequence", 0, 0xFFFF),
)


def pack_msg_id(month: int, day: int, hour: int, minute: int, second: int, gateway_id: int, sequence: int) -> int:
    """The 64-bit Msg_Id as an unsigned integer (it travels as a big-endian uint64)."""
    values = (month, day, hour, minute, second, gateway_id, sequence)
    for (name, lo, hi), value in zip(_MSG_ID_RANGES, values, strict=True):
        if not lo <= value <= hi:
            raise ProtocolError(f"Msg_Id {name} {value} outside {lo}..{hi}")
    return (month << 60) | (day << 55) | (hour << 50) | (minute << 44) | (second << 38) | (gateway_id << 16) | sequence


def unpack_msg_id(msg_id: int) -> MsgIdParts:
    if not 0 <= msg_id < 1 << 64:
        raise ProtocolError(f"Msg_Id {msg_id} is not a 64-bit unsigned integer")
    return MsgIdParts(
        (msg_id >> 60) & 0xF,
        (msg_id >> 55) & 0x1F,
        (msg_id >> 50) & 0x1F,
        (msg_id >> 44) & 0x3F,
        (msg_id >> 38) & 0x3F,
        (msg_id >> 16) & 0x3FFFFF,
        msg_id & 0xFFFF,
    )


# --------------------------------------------------------------------------------------------------
# Authenticators


cmpp_timestamp = decimal_timestamp  # the CONNECT Timestamp: MMDDHHMMSS read as a decimal number


def cmpp_authenticator_source(source_addr: str, secret: str | bytes, timestamp: int | str) -> bytes:
    """AuthenticatorSource = MD5(Source_Addr + 9 zero bytes + shared secret + timestamp "MMDDHHMMSS")."""
    return login_authenticator(source_addr, 9, secret, timestamp)


def cmpp_authenticator_ismg(status: int, auth_source: bytes, secret: str | bytes, version: int = VERSION_30) -> bytes:
    """AuthenticatorISMG = MD5(Status + AuthenticatorSource + shared secret).

    Status is 1 byte in CMPP 2.0 and a 4-byte big-endian integer in 3.0, as in CONNECT_RESP.
    """
    return status_authenticator((_U32 if _version(version) else _U8).pack(status), auth_source, secret)


# --------------------------------------------------------------------------------------------------
# A codec object per version, for callers that want one namespace (decode/encode bound to a version)


_EMPTY_REQUESTS: dict[int, Any] = {
    CONNECT: Connect,
    TERMINATE: Terminate,
    SUBMIT: Submit,
    DELIVER: Deliver,
    QUERY: Query,
    CANCEL: Cancel,
    ACTIVE_TEST: ActiveTest,
}


class CmppCodec(TypedResponseCodec):
    """``decode``/``encode`` bound to one CMPP version, plus the protocol constants.

    It is also the CMPP half of a ``qixin.protocols.session.Session`` (the engine's ``Codec``
    protocol): ACTIVE_TEST is the heartbeat, TERMINATE the unbind, and every request has a typed
    response (CMPP has no generic NACK):

    * ``error_response`` answers SUBMIT / DELIVER with ``Result = status``, CONNECT with
      ``Status = status`` (clamped to the CONNECT table, 5 "other error" beyond it), CANCEL with
      Success_Id 1 and QUERY with zero counters.
    * ``status_system_error`` is 9: "9~ other error" in the 2.0 Result table and in both versions'
      DELIVER_RESP table. (CMPP 3.0 gives SUBMIT_RESP 9 a specific meaning, "this gateway does not
      serve the charged number"; no 3.0 code means "system error", so 9 is kept for both.)
    * ``error_for_frame``: a request whose body does not match its layout gets its typed response
      with Result 1 (bad structure). A frame with an unknown Command_Id, or a malformed response, is
      not answered (the engine logs it): there is no PDU to answer an unknown command with, and
      closing a session over one stray frame would throw away the whole window.
    """

    HEADER_SIZE = HEADER_SIZE
    MAX_FRAME_SIZE = MAX_FRAME_SIZE
    RESPONSE_OF = RESPONSE_OF
    HEARTBEAT_ID = HEARTBEAT_ID
    TERMINATE_ID = TERMINATE_ID
    ProtocolError = ProtocolError

    # session engine Codec protocol
    header_size = HEADER_SIZE
    max_frame_size = MAX_FRAME_SIZE
    status_system_error = RESULT_OTHER_ERROR

    def __init__(self, version: int) -> None:
        _version(version)
        self.version = version

    def __repr__(self) -> str:
        return f"CmppCodec(0x{self.version:02X})"

    read_header = staticmethod(read_header)

    def decode(self, frame: bytes | bytearray | memoryview) -> Pdu:
        return decode(frame, self.version)

    def encode(self, pdu: Pdu, sequence: int | None = None) -> bytes:
        return encode(pdu, sequence, self.version)

    def encode_report(self, report: Report) -> bytes:
        return encode_report(report, self.version)

    def decode_report(self, content: bytes) -> Report:
        return decode_report(content, self.version)

    # -- session engine Codec protocol (the methods themselves: qixin.protocols.fields) -----------
    heartbeat_class = ActiveTest
    unbind_class = Terminate
    request_classes = _EMPTY_REQUESTS
    status_bad_structure = RESULT_BAD_STRUCTURE

    def respond(self, request: Any, status: int) -> Any:
        return response_to(request, status, self.version)


def response_to(request: Any, status: int = 0, version: int = VERSION_30) -> Any:
    """The typed response to a CMPP request (same sequence) telling the peer ``status``.

    SUBMIT_RESP carries Msg_Id 0 (the caller sets the real one on success); DELIVER_RESP echoes the
    DELIVER's Msg_Id, as the specification asks.
    """
    cid = request.command_id
    seq = request.sequence
    if cid == SUBMIT:
        return SubmitResp(0, status, seq)
    if cid == DELIVER:
        return DeliverResp(request.msg_id, status, seq)
    if cid == ACTIVE_TEST:
        return ActiveTestResp(0, seq)
    if cid == TERMINATE:
        return TerminateResp(seq)
    if cid == CONNECT:
        st = status if 0 <= status <= CONNECT_OTHER_ERROR else CONNECT_OTHER_ERROR
        return ConnectResp(st, b"\0" * 16, version, seq)
    if cid == QUERY:
        return QueryResp(request.time, request.query_type, request.query_code, sequence=seq)
    if cid == CANCEL:
        return CancelResp(1 if status else 0, seq)
    raise ProtocolError(f"no response PDU for Command_Id 0x{cid:08X}", command_id=cid, sequence=seq)


CMPP20 = CmppCodec(VERSION_20)
CMPP30 = CmppCodec(VERSION_30)
