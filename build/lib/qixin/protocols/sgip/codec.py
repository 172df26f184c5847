"""SGIP 1.2 (China Unicom) wire format: bytes <-> PDU dataclasses.

Pure codec: no sockets, no business rules. Big-endian integers; fixed-length octet strings padded with
NUL on encode and cut at the first NUL on decode (latin-1).

Header, 20 bytes: Message Length (4), Command ID (4), Sequence Number (12). The sequence number is
three uint32: the sender's node id, the time MMDDhhmmss read as a decimal number, and a counter. A
response echoes the request's 12 bytes. In the PDU classes the three parts are the fields ``node_id``,
``timestamp`` and ``sequence`` (the counter, the part the session engine allocates); ``read_header``
returns them as one ``SgipSeq``; ``encode(pdu, sequence)`` accepts an ``SgipSeq`` (all three parts) or
an int (the counter only).

SGIP has no link test PDU: ``HEARTBEAT_ID`` is ``None``. Connections are short-lived by design; an
idle connection is unbound / closed and reopened when there is traffic again. Note that the SMG
connects back to the SP (login type 2) to deliver MO and reports, so an SP runs a listener too.

Decoders raise only ``ProtocolError`` (a ``PduError``/``ValueError``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from qixin.protocols.errors import PduError
from qixin.protocols.fields import CodecNamespace, Framing, decimal_timestamp, length_checker, octets_encoder, text

__all__ = [
    "BIND",
    "BIND_RESP",
    "DELIVER",
    "DELIVER_RESP",
    "HEADER_SIZE",
    "HEARTBEAT_ID",
    "MAX_FRAME_SIZE",
    "REPORT",
    "REPORT_RESP",
    "RESPONSE_OF",
    "SGIP12",
    "SUBMIT",
    "SUBMIT_RESP",
    "TERMINATE_ID",
    "UNBIND",
    "UNBIND_RESP",
    "USERRPT",
    "USERRPT_RESP",
    "Bind",
    "BindResp",
    "Deliver",
    "DeliverResp",
    "Pdu",
    "ProtocolError",
    "Report",
    "ReportResp",
    "SgipSeq",
    "Submit",
    "SubmitResp",
    "Unbind",
    "UnbindResp",
    "Userrpt",
    "UserrptResp",
    "add_country_code",
    "decode",
    "encode",
    "format_sequence",
    "parse_sequence",
    "read_header",
    "response_for",
    "sequence_of",
    "sgip_timestamp",
    "strip_country_code",
]

# --------------------------------------------------------------------------------------------------
# Constants

BIND = 0x00000001
BIND_RESP = 0x80000001
UNBIND = 0x00000002
UNBIND_RESP = 0x80000002
SUBMIT = 0x00000003
SUBMIT_RESP = 0x80000003
DELIVER = 0x00000004
DELIVER_RESP = 0x80000004
REPORT = 0x00000005
REPORT_RESP = 0x80000005
USERRPT = 0x00000011
USERRPT_RESP = 0x80000011
# Not implemented (SMG <-> SMG / GNS management): ADDSP 0x6 .. CHECKUSER 0x10, TRACE 0x1000.

RESPONSE_OF: dict[int, int] = {
    BIND: BIND_RESP,
    UNBIND: UNBIND_RESP,
    SUBMIT: SUBMIT_RESP,
    DELIVER: DELIVER_RESP,
    REPORT: REPORT_RESP,
    USERRPT: USERRPT_RESP,
}
HEARTBEAT_ID: int | None = None  # SGIP has no active test
TERMINATE_ID = UNBIND

HEADER_SIZE = 20
MAX_FRAME_SIZE = 8192
MAX_USERS = 100

# Bind login types
LOGIN_SP_TO_SMG = 1
LOGIN_SMG_TO_SP = 2
LOGIN_SMG_TO_SMG = 3

# Result / ErrorCode (responses, Report.error_code)
RESULT_OK = 0
RESULT_ILLEGAL_LOGIN = 1  # wrong login name / password
RESULT_REPEATED_LOGIN = 2
RESULT_TOO_MANY_CONNECTIONS = 3
RESULT_BAD_LOGIN_TYPE = 4
RESULT_BAD_PARAMETER_FORMAT = 5
RESULT_ILLEGAL_NUMBER = 6
RESULT_BAD_MSG_ID = 7
RESULT_BAD_MSG_LENGTH = 8
RESULT_ILLEGAL_SEQUENCE = 9
RESULT_ILLEGAL_GNS_OPERATION = 10
RESULT_NODE_BUSY = 11  # treated as throttling
RESULT_DEST_UNREACHABLE = 21
RESULT_ROUTE_ERROR = 22
RESULT_NO_ROUTE = 23
RESULT_BAD_CHARGE_NUMBER = 24
RESULT_USER_CANNOT_COMMUNICATE = 25
RESULT_HANDSET_MEMORY_FULL = 26
RESULT_HANDSET_NO_SMS = 27
RESULT_HANDSET_RECEIVE_ERROR = 28
RESULT_UNKNOWN_USER = 29
RESULT_NO_SUCH_FUNCTION = 30
RESULT_ILLEGAL_DEVICE = 31
RESULT_SYSTEM_FAILURE = 32
RESULT_SMSC_QUEUE_FULL = 33

# Report
REPORT_TYPE_SUBMIT = 0  # report on an earlier Submit
REPORT_TYPE_DELIVER = 1  # report on an earlier forwarded Deliver
STATE_DELIVERED = 0
STATE_WAITING = 1
STATE_FAILED = 2

# Userrpt UserCondition
USER_CANCELLED = 0
USER_SUSPENDED = 1  # 欠费停机
USER_RESTORED = 2

# MessageCoding
CODING_ASCII = 0
CODING_BINARY = 4
CODING_UCS2 = 8
CODING_GBK = 15


class ProtocolError(PduError):
    """Malformed SGIP input (or a PDU that cannot be encoded). The only exception decoders raise."""


class SgipSeq(NamedTuple):
    """The 12-byte SGIP sequence number."""

    node_id: int
    timestamp: int  # MMDDhhmmss as a decimal number
    counter: int


_NO_SEQ = SgipSeq(0, 0, 0)

# --------------------------------------------------------------------------------------------------
# Layouts

_HEADER = struct.Struct(">IIIII")
_SEQ = struct.Struct(">III")
_BIND = struct.Struct(">B16s16s8s")  # 41
_RESP = struct.Struct(">B8s")  # 9
_SUBMIT_HEAD = struct.Struct(">21s21sB")  # 43, then UserNumber x n
_SUBMIT_MID = struct.Struct(">5s10sB6s6sBBB16s16sBBBBBI")  # 72, then MessageContent, Reserve 8
_SUBMIT_FIXED = struct.Struct(">5s10sB6s6sBBB16s16sBBBBB")  # the same without MessageLength (68)
_U32 = struct.Struct(">I")
_DELIVER_HEAD = struct.Struct(">21s21sBBBI")  # 49, then MessageContent, Reserve 8
_REPORT = struct.Struct(">IIIB21sBB8s")  # 44
_USERRPT = struct.Struct(">21s21sB8s")  # 51


octets = octets_encoder(ProtocolError)  # text(raw) reads one back (qixin.protocols.fields)
_check_len = length_checker(ProtocolError)
_FRAMING = Framing(
    error=ProtocolError,
    protocol="SGIP",
    length_field="Message Length",
    id_field="Command ID",
    header_size=HEADER_SIZE,
    max_frame_size=MAX_FRAME_SIZE,
    bad_structure=RESULT_BAD_PARAMETER_FORMAT,
    bad_command=RESULT_NO_SUCH_FUNCTION,
)


# --------------------------------------------------------------------------------------------------
# PDUs. Every PDU carries its header sequence as node_id / timestamp / sequence (the counter).


@dataclass(slots=True)
class Bind:
    command_id: ClassVar[int] = BIND
    login_type: int = LOGIN_SP_TO_SMG
    login_name: str = ""  # 16
    login_password: str = ""  # 16
    reserve: str = ""  # 8
    node_id: int = 0
    timestamp: int = 0
    sequence: int = 0


@dataclass(slots=True)
class _Resp:
    result: int = RESULT_OK
    reserve: str = ""  # 8
    node_id: int = 0
    timestamp: int = 0
    sequence: int = 0


@dataclass(slots=True)
class BindResp(_Resp):
    command_id: ClassVar[int] = BIND_RESP


@dataclass(slots=True)
class Unbind:
    command_id: ClassVar[int] = UNBIND
    node_id: int = 0
    timestamp: int = 0
    sequence: int = 0


@dataclass(slots=True)
class UnbindResp:
    command_id: ClassVar[int] = UNBIND_RESP
    node_id: int = 0
    timestamp: int = 0
    sequence: int = 0


@dataclass(slots=True)
class Submit:
    command_id: ClassVar[int] = SUBMIT
    sp_number: str = ""  # 21
    charge_number: str = ""  # 21; "000000000000000000000" = charge the SP
    user_numbers: tuple[str, ...] = ()  # UserCount (<= 100) x 21, with the "86" prefix
    corp_id: str = ""  # 5
    service_type: str = ""  # 10
    fee_type: int = 0
    fee_value: str = ""  # 6, in fen
    given_value: str = ""  # 6
    agent_flag: int = 0
    morelateto_mt_flag: int = 0
    priority: int = 0
    expire_time: str = ""  # 16, yymmddhhmmsstnnp
    schedule_time: str = ""  # 16
    report_flag: int = 1
    tp_pid: int = 0
    tp_udhi: int = 0
    message_coding: int = CODING_ASCII
    message_type: int = 0
    message_content: bytes = b""  # MessageLength 4 bytes
    reserve: str = ""  # 8
    node_id: int = 0
    timestamp: int = 0
    sequence: int = 0


@dataclass(slots=True)
class SubmitResp(_Resp):
    command_id: ClassVar[int] = SUBMIT_RESP


@dataclass(slots=True)
class Deliver:
    command_id: ClassVar[int] = DELIVER
    user_number: str = ""  # 21
    sp_number: str = ""  # 21
    tp_pid: int = 0
    tp_udhi: int = 0
    message_coding: int = CODING_ASCII
    message_content: bytes = b""  # MessageLength 4 bytes
    reserve: str = ""  # 8
    node_id: int = 0
    timestamp: int = 0
    sequence: int = 0


@dataclass(slots=True)
class DeliverResp(_Resp):
    command_id: ClassVar[int] = DELIVER_RESP


@dataclass(slots=True)
class Report:
    command_id: ClassVar[int] = REPORT
    submit_sequence: SgipSeq = _NO_SEQ  # the reported Submit's 12-byte sequence number
    report_type: int = REPORT_TYPE_SUBMIT
    user_number: str = ""  # 21
    state: int = STATE_DELIVERED
    error_code: int = RESULT_OK
    reserve: str = ""  # 8
    node_id: int = 0
    timestamp: int = 0
    sequence: int = 0


@dataclass(slots=True)
class ReportResp(_Resp):
    command_id: ClassVar[int] = REPORT_RESP


@dataclass(slots=True)
class Userrpt:
    command_id: ClassVar[int] = USERRPT
    sp_number: str = ""  # 21
    user_number: str = ""  # 21
    user_condition: int = USER_CANCELLED
    reserve: str = ""  # 8
    node_id: int = 0
    timestamp: int = 0
    sequence: int = 0


@dataclass(slots=True)
class UserrptResp(_Resp):
    command_id: ClassVar[int] = USERRPT_RESP


Pdu = (
    Bind
    | BindResp
    | Unbind
    | UnbindResp
    | Submit
    | SubmitResp
    | Deliver
    | DeliverResp
    | Report
    | ReportResp
    | Userrpt
    | UserrptResp
)


def sequence_of(pdu: Pdu) -> SgipSeq:
    """The PDU's full 12-byte sequence number."""
    return SgipSeq(pdu.node_id, pdu.timestamp, pdu.sequence)


# --------------------------------------------------------------------------------------------------
# Header


def read_header(buf: bytes | bytearray | memoryview) -> tuple[int, int, SgipSeq]:
    """``(message_length, command_id, SgipSeq)`` of the frame starting at ``buf[0]``."""
    if len(buf) < HEADER_SIZE:
        raise _FRAMING.header_too_short(len(buf))
    total, command_id, node, ts, counter = _HEADER.unpack_from(buf)
    if total < HEADER_SIZE or total > MAX_FRAME_SIZE:
        raise _FRAMING.out_of_range(total, command_id, counter)
    return total, command_id, SgipSeq(node, ts, counter)


# --------------------------------------------------------------------------------------------------
# Decoders (body = frame without header)


def _d_bind(b: bytes) -> Bind:
    _check_len("Bind", b, _BIND.size)
    login_type, name, password, reserve = _BIND.unpack(b)
    return Bind(login_type, text(name), text(password), text(reserve))


def _d_resp(cls: Any, name: str) -> Any:
    def dec(b: bytes) -> Any:
        _check_len(name, b, _RESP.size)
        result, reserve = _RESP.unpack(b)
        return cls(result, text(reserve))

    return dec


def _d_empty(cls: Any, name: str) -> Any:
    def dec(b: bytes) -> Any:
        _check_len(name, b, 0)
        return cls()

    return dec


_decode_cache: dict[bytes, tuple[Any, ...]] = {}  # the constant parts of a channel's Submits, decoded once


def _cached_fields(raw: bytes, conv: Any) -> tuple[Any, ...]:
    fields = _decode_cache.get(raw)
    if fields is None:
        fields = conv(raw)
        if len(_decode_cache) > 1024:
            _decode_cache.clear()
        _decode_cache[raw] = fields
    return fields


def _conv_head(raw: bytes) -> tuple[Any, ...]:
    return (text(raw[:21]), text(raw[21:42]))


def _conv_fixed(raw: bytes) -> tuple[Any, ...]:
    f = _SUBMIT_FIXED.unpack(raw)
    return (
        text(f[0]),
        text(f[1]),
        f[2],
        text(f[3]),
        text(f[4]),
        f[5],
        f[6],
        f[7],
        text(f[8]),
        text(f[9]),
        *f[10:],
    )


def _d_submit(b: bytes) -> Submit:
    n = len(b)
    if n < _SUBMIT_HEAD.size:
        raise ProtocolError(f"Submit: body is {n} bytes, shorter than the fixed part")
    count = b[42]
    if count > MAX_USERS:
        raise ProtocolError(f"Submit: UserCount {count} exceeds {MAX_USERS}")
    pos = _SUBMIT_HEAD.size
    mid = pos + 21 * count
    content_pos = mid + _SUBMIT_MID.size
    if content_pos > n:
        raise ProtocolError(f"Submit: body is {n} bytes, truncated before MessageContent")
    length = _U32.unpack_from(b, content_pos - 4)[0]
    expected = content_pos + length + 8
    if n != expected:
        raise ProtocolError(f"Submit: body is {n} bytes but MessageLength {length} implies {expected}")
    sp_number, charge_number = _cached_fields(b[:42], _conv_head)
    users = tuple(text(b[i : i + 21]) for i in range(pos, mid, 21))
    (corp_id, service_type, fee_type, fee_value, given_value, agent_flag, morelateto, priority, expire, schedule,
     report_flag, pid, udhi, coding, msg_type) = _cached_fields(b[mid : content_pos - 4], _conv_fixed)  # fmt: skip
    return Submit(
        sp_number,
        charge_number,
        users,
        corp_id,
        service_type,
        fee_type,
        fee_value,
        given_value,
        agent_flag,
        morelateto,
        priority,
        expire,
        schedule,
        report_flag,
        pid,
        udhi,
        coding,
        msg_type,
        b[content_pos : content_pos + length],
        text(b[content_pos + length :]),
    )


def _d_deliver(b: bytes) -> Deliver:
    n = len(b)
    if n < _DELIVER_HEAD.size:
        raise ProtocolError(f"Deliver: body is {n} bytes, shorter than the {_DELIVER_HEAD.size}-byte fixed part")
    user, sp, pid, udhi, coding, length = _DELIVER_HEAD.unpack_from(b)
    pos = _DELIVER_HEAD.size
    expected = pos + length + 8
    if n != expected:
        raise ProtocolError(f"Deliver: body is {n} bytes but MessageLength {length} implies {expected}")
    return Deliver(text(user), text(sp), pid, udhi, coding, b[pos : pos + length], text(b[pos + length :]))


def _d_report(b: bytes) -> Report:
    _check_len("Report", b, _REPORT.size)
    node, ts, counter, rtype, user, state, error, reserve = _REPORT.unpack(b)
    return Report(SgipSeq(node, ts, counter), rtype, text(user), state, error, text(reserve))


def _d_userrpt(b: bytes) -> Userrpt:
    _check_len("Userrpt", b, _USERRPT.size)
    sp, user, condition, reserve = _USERRPT.unpack(b)
    return Userrpt(text(sp), text(user), condition, text(reserve))


_DECODERS: dict[int, Any] = {
    BIND: _d_bind,
    BIND_RESP: _d_resp(BindResp, "Bind_Resp"),
    UNBIND: _d_empty(Unbind, "Unbind"),
    UNBIND_RESP: _d_empty(UnbindResp, "Unbind_Resp"),
    SUBMIT: _d_submit,
    SUBMIT_RESP: _d_resp(SubmitResp, "Submit_Resp"),
    DELIVER: _d_deliver,
    DELIVER_RESP: _d_resp(DeliverResp, "Deliver_Resp"),
    REPORT: _d_report,
    REPORT_RESP: _d_resp(ReportResp, "Report_Resp"),
    USERRPT: _d_userrpt,
    USERRPT_RESP: _d_resp(UserrptResp, "Userrpt_Resp"),
}


def decode(frame: bytes | bytearray | memoryview) -> Pdu:
    """Decode one whole frame (header included). Raises only ``ProtocolError``."""
    if type(frame) is not bytes:
        frame = bytes(frame)
    n = len(frame)
    if n < HEADER_SIZE:
        raise _FRAMING.too_short(n)
    total, command_id, node, ts, counter = _HEADER.unpack_from(frame)
    if total != n:
        raise _FRAMING.length_mismatch(total, n, command_id, counter)
    decoder = _DECODERS.get(command_id)
    if decoder is None:
        raise _FRAMING.unknown_command(command_id, counter)
    try:
        pdu: Pdu = decoder(frame[HEADER_SIZE:])
    except ProtocolError as exc:
        _FRAMING.annotate(exc, command_id, counter)
        raise
    except (struct.error, ValueError, IndexError) as exc:  # defensive: never leak another exception
        raise _FRAMING.malformed(exc, command_id, counter) from exc
    pdu.node_id, pdu.timestamp, pdu.sequence = node, ts, counter
    return pdu


# --------------------------------------------------------------------------------------------------
# Encoders


def _e_bind(p: Bind) -> bytes:
    return _BIND.pack(
        p.login_type,
        octets(p.login_name, 16, "Login Name"),
        octets(p.login_password, 16, "Login Password"),
        octets(p.reserve, 8, "Reserve"),
    )


def _e_resp(p: _Resp) -> bytes:
    return _RESP.pack(p.result, octets(p.reserve, 8, "Reserve") if p.reserve else b"")


def _e_empty(p: Any) -> bytes:
    return b""


_submit_cache: dict[tuple[Any, ...], bytes] = {}  # the constant parts of a channel's Submits, encoded once


def _submit_head(sp_number: str, charge_number: str) -> bytes:
    return octets(sp_number, 21, "SPNumber").ljust(21, b"\0") + octets(charge_number, 21, "ChargeNumber").ljust(
        21, b"\0"
    )


def _submit_fixed(p: Submit) -> bytes:
    return _SUBMIT_FIXED.pack(
        octets(p.corp_id, 5, "CorpId"),
        octets(p.service_type, 10, "ServiceType"),
        p.fee_type,
        octets(p.fee_value, 6, "FeeValue"),
        octets(p.given_value, 6, "GivenValue"),
        p.agent_flag,
        p.morelateto_mt_flag,
        p.priority,
        octets(p.expire_time, 16, "ExpireTime"),
        octets(p.schedule_time, 16, "ScheduleTime"),
        p.report_flag,
        p.tp_pid,
        p.tp_udhi,
        p.message_coding,
        p.message_type,
    )


def _user_number(u: str) -> bytes:
    raw = u.encode("latin-1") if u.isascii() else octets(u, 21, "UserNumber")
    if len(raw) > 21:
        raise ProtocolError(f"UserNumber: {len(raw)} bytes do not fit the 21-byte field")
    return raw.ljust(21, b"\0")


def _e_submit(p: Submit) -> bytes:
    users = p.user_numbers
    if len(users) > MAX_USERS:
        raise ProtocolError(f"Submit: {len(users)} user numbers exceed {MAX_USERS}")
    cache = _submit_cache
    hkey = (p.sp_number, p.charge_number)
    head = cache.get(hkey)
    if head is None:
        head = _submit_head(*hkey)
        if len(cache) > 1024:
            cache.clear()
        cache[hkey] = head
    fkey = (
        p.corp_id,
        p.service_type,
        p.fee_type,
        p.fee_value,
        p.given_value,
        p.agent_flag,
        p.morelateto_mt_flag,
        p.priority,
        p.expire_time,
        p.schedule_time,
        p.report_flag,
        p.tp_pid,
        p.tp_udhi,
        p.message_coding,
        p.message_type,
    )
    fixed = cache.get(fkey)
    if fixed is None:
        fixed = _submit_fixed(p)
        if len(cache) > 1024:
            cache.clear()
        cache[fkey] = fixed
    reserve = octets(p.reserve, 8, "Reserve").ljust(8, b"\0") if p.reserve else b"\0" * 8
    numbers = _user_number(users[0]) if len(users) == 1 else b"".join(_user_number(u) for u in users)
    return b"".join(
        (head, bytes((len(users),)), numbers, fixed, _U32.pack(len(p.message_content)), p.message_content, reserve)
    )


def _e_deliver(p: Deliver) -> bytes:
    head = _DELIVER_HEAD.pack(
        octets(p.user_number, 21, "UserNumber"),
        octets(p.sp_number, 21, "SPNumber"),
        p.tp_pid,
        p.tp_udhi,
        p.message_coding,
        len(p.message_content),
    )
    return head + p.message_content + octets(p.reserve, 8, "Reserve").ljust(8, b"\0")


def _e_report(p: Report) -> bytes:
    node, ts, counter = p.submit_sequence
    return _REPORT.pack(
        node,
        ts,
        counter,
        p.report_type,
        octets(p.user_number, 21, "UserNumber"),
        p.state,
        p.error_code,
        octets(p.reserve, 8, "Reserve"),
    )


def _e_userrpt(p: Userrpt) -> bytes:
    return _USERRPT.pack(
        octets(p.sp_number, 21, "SPNumber"),
        octets(p.user_number, 21, "UserNumber"),
        p.user_condition,
        octets(p.reserve, 8, "Reserve"),
    )


_ENCODERS: dict[type, Any] = {
    Bind: _e_bind,
    BindResp: _e_resp,
    Unbind: _e_empty,
    UnbindResp: _e_empty,
    Submit: _e_submit,
    SubmitResp: _e_resp,
    Deliver: _e_deliver,
    DeliverResp: _e_resp,
    Report: _e_report,
    ReportResp: _e_resp,
    Userrpt: _e_userrpt,
    UserrptResp: _e_resp,
}


def encode(pdu: Pdu, sequence: SgipSeq | tuple[int, int, int] | int | None = None) -> bytes:
    """One whole frame for ``pdu``.

    ``sequence``: an ``SgipSeq`` / 3-tuple (node id, timestamp, counter), or an int (the counter, node id
    and timestamp taken from the PDU), or None (all three taken from the PDU).
    """
    encoder = _ENCODERS.get(type(pdu))
    if encoder is None:
        raise ProtocolError(f"not an SGIP PDU: {type(pdu).__name__}")
    if sequence is None:
        node, ts, counter = pdu.node_id, pdu.timestamp, pdu.sequence
    elif isinstance(sequence, int):
        node, ts, counter = pdu.node_id, pdu.timestamp, sequence
    else:
        node, ts, counter = sequence
    try:
        body: bytes = encoder(pdu)
        return _HEADER.pack(HEADER_SIZE + len(body), pdu.command_id, node, ts, counter) + body
    except struct.error as exc:
        raise ProtocolError(f"{type(pdu).__name__}: field out of range: {exc}") from exc


# --------------------------------------------------------------------------------------------------
# Helpers


sgip_timestamp = decimal_timestamp  # the sequence number's time part: MMDDhhmmss read as a decimal number


def add_country_code(number: str) -> str:
    """SGIP user numbers carry the "86" country prefix: ``13012345678`` -> ``8613012345678``."""
    return number if number.startswith("86") and len(number) > 11 else "86" + number


def strip_country_code(number: str) -> str:
    """The inverse of ``add_country_code`` (numbers arriving in Deliver / Report)."""
    return number[2:] if number.startswith("86") and len(number) > 11 else number


def format_sequence(seq: SgipSeq | tuple[int, int, int]) -> str:
    """The carrier message id of an SGIP Submit: its 12-byte sequence as ``node-MMDDhhmmss-counter``.

    A Report names the Submit by this sequence, so the same string is derived from both sides.
    """
    node, ts, counter = seq
    return f"{node}-{ts:010d}-{counter}"


def parse_sequence(value: str) -> SgipSeq:
    """The inverse of ``format_sequence``; ``ValueError`` on anything else."""
    parts = value.split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not an SGIP sequence 'node-timestamp-counter': {value!r}")
    node, ts, counter = (int(p) for p in parts)
    if max(node, ts, counter) > 0xFFFFFFFF:
        raise ValueError(f"SGIP sequence part out of range: {value!r}")
    return SgipSeq(node, ts, counter)


_RESPONSE_CLASS: dict[int, Any] = {
    BIND: BindResp,
    UNBIND: UnbindResp,
    SUBMIT: SubmitResp,
    DELIVER: DeliverResp,
    REPORT: ReportResp,
    USERRPT: UserrptResp,
}


def response_for(command_id: int, result: int = RESULT_OK, seq: SgipSeq | tuple[int, int, int] = _NO_SEQ) -> Pdu | None:
    """The response PDU to a request of ``command_id`` echoing ``seq`` (None for an unknown command).

    Unbind_Resp has no Result field: ``result`` is ignored for it.
    """
    cls = _RESPONSE_CLASS.get(command_id)
    if cls is None:
        return None
    node, ts, counter = seq
    if cls is UnbindResp:
        return UnbindResp(node, ts, counter)
    resp: Pdu = cls(result, "", node, ts, counter)
    return resp


SGIP12 = CodecNamespace(
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
