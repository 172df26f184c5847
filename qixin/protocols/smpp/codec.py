"""SMPP 3.4 wire format: PDU classes, encoder, decoder, TLVs, command status codes, receipt text.

Rules of this module:

* Pure code: bytes in, PDU objects out (and back). No sockets, no clock except in ``format_receipt``.
* Every frame starts with the 16-byte header ``command_length, command_id, command_status,
  sequence_number`` (four big-endian uint32, precompiled ``struct``). ``command_length`` includes
  the header.
* C-octet strings are decoded as latin-1 (lossless byte ⇄ str). Maximum lengths from the spec
  (NUL included) are enforced when encoding; decoding is lenient about length but strict about the
  NUL terminator.
* ``short_message`` stays ``bytes``: text encoding (GSM-7, UCS-2, ``data_coding``) belongs to
  ``qixin.domain``, not to the wire format.
* TLVs: the ones the platform uses are typed fields on the message PDUs (``submit_sm``,
  ``deliver_sm``, ``data_sm``); every other TLV is kept raw, in order, in ``tlvs`` and written back
  unchanged, so a relay never loses information.
* ``decode_pdu`` raises only ``PduError``; when the header was readable the error carries the
  command id, the sequence number and the status to answer with.
* A response with a non-zero ``command_status`` is encoded without body (SMPP 3.4 §4.4.2 etc.);
  decoders accept a missing body on any response.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from qixin.protocols.errors import PduError
from qixin.protocols.fields import SessionCodecBase

# --------------------------------------------------------------------------------------------------
# Command ids
GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_RECEIVER_RESP = 0x80000001
BIND_TRANSMITTER = 0x00000002
BIND_TRANSMITTER_RESP = 0x80000002
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
DELIVER_SM_RESP = 0x80000005
UNBIND = 0x00000006
UNBIND_RESP = 0x80000006
BIND_TRANSCEIVER = 0x00000009
BIND_TRANSCEIVER_RESP = 0x80000009
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015
DATA_SM = 0x00000103
DATA_SM_RESP = 0x80000103
RESPONSE_BIT = 0x80000000

# --------------------------------------------------------------------------------------------------
# Command status codes (SMPP 3.4 §5.1.3)
ESME_ROK = 0x00000000
ESME_RINVMSGLEN = 0x00000001
ESME_RINVCMDLEN = 0x00000002
ESME_RINVCMDID = 0x00000003
ESME_RINVBNDSTS = 0x00000004
ESME_RALYBND = 0x00000005
ESME_RINVPRTFLG = 0x00000006
ESME_RINVREGDLVFLG = 0x00000007
ESME_RSYSERR = 0x00000008
ESME_RINVSRCADR = 0x0000000A
ESME_RINVDSTADR = 0x0000000B
ESME_RINVMSGID = 0x0000000C
ESME_RBINDFAIL = 0x0000000D
ESME_RINVPASWD = 0x0000000E
ESME_RINVSYSID = 0x0000000F
ESME_RCANCELFAIL = 0x00000011
ESME_RREPLACEFAIL = 0x00000013
ESME_RMSGQFUL = 0x00000014
ESME_RINVSERTYP = 0x00000015
ESME_RINVESMCLASS = 0x00000043
ESME_RSUBMITFAIL = 0x00000045
ESME_RINVSRCTON = 0x00000048
ESME_RINVSRCNPI = 0x00000049
ESME_RINVDSTTON = 0x00000050
ESME_RINVDSTNPI = 0x00000051
ESME_RINVSYSTYP = 0x00000053
ESME_RTHROTTLED = 0x00000058
ESME_RINVSCHED = 0x00000061
ESME_RINVEXPIRY = 0x00000062
ESME_RX_T_APPN = 0x00000064
ESME_RX_P_APPN = 0x00000065
ESME_RX_R_APPN = 0x00000066
ESME_RINVOPTPARSTREAM = 0x000000C0
ESME_ROPTPARNOTALLWD = 0x000000C1
ESME_RINVPARLEN = 0x000000C2
ESME_RMISSINGOPTPARAM = 0x000000C3
ESME_RINVOPTPARAMVAL = 0x000000C4
ESME_RDELIVERYFAILURE = 0x000000FE
ESME_RUNKNOWNERR = 0x000000FF

STATUS_NAMES: dict[int, str] = {
    v: k for k, v in list(globals().items()) if k.startswith("ESME_R") and isinstance(v, int)
}


def status_name(status: int) -> str:
    return STATUS_NAMES.get(status, f"0x{status:08X}")


# --------------------------------------------------------------------------------------------------
# TLV tags
TAG_USER_MESSAGE_REFERENCE = 0x0204
TAG_SOURCE_PORT = 0x020A
TAG_DESTINATION_PORT = 0x020B
TAG_SAR_MSG_REF_NUM = 0x020C
TAG_SAR_TOTAL_SEGMENTS = 0x020E
TAG_SAR_SEGMENT_SEQNUM = 0x020F
TAG_SC_INTERFACE_VERSION = 0x0210
TAG_RECEIPTED_MESSAGE_ID = 0x001E
TAG_NETWORK_ERROR_CODE = 0x0423
TAG_MESSAGE_PAYLOAD = 0x0424
TAG_MESSAGE_STATE = 0x0427

# message_state values (§5.2.28) and the receipt 'stat' words they correspond to
MESSAGE_STATES: dict[int, str] = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
STAT_TO_STATE: dict[str, int] = {v: k for k, v in MESSAGE_STATES.items()}

# esm_class bits
ESM_CLASS_RECEIPT = 0x04  # message type: SMSC delivery receipt
ESM_CLASS_TYPE_MASK = 0x3C
ESM_CLASS_UDHI = 0x40

INTERFACE_VERSION = 0x34

_HEADER = struct.Struct(">IIII")
_U8 = struct.Struct(">B")
_BB = struct.Struct(">BB")
_TLV_HEAD = struct.Struct(">HH")
_TLV_U8 = struct.Struct(">HHB")
_TLV_U16 = struct.Struct(">HHH")
_TLV_NETERR = struct.Struct(">HHBH")
_SM_MID = struct.Struct(">BBB")  # esm_class, protocol_id, priority_flag
_SM_TAIL = struct.Struct(">BBBBB")  # registered_delivery, replace_if_present, data_coding, default_msg_id, sm_length

HEADER_SIZE = 16
MAX_PDU_SIZE = 65536
_new = object.__new__


# --------------------------------------------------------------------------------------------------
# helpers


def _c(value: str, maxlen: int, name: str) -> bytes:
    """Encode a C-octet string (NUL appended). ``maxlen`` counts the NUL, as the spec does."""
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise PduError(f"{name}: not representable in latin-1") from exc
    if len(raw) >= maxlen:
        raise PduError(f"{name}: {len(raw)} octets, at most {maxlen - 1} allowed")
    if b"\x00" in raw:
        raise PduError(f"{name}: contains NUL")
    return raw + b"\x00"


def _cstr(data: bytes, pos: int, end: int, name: str) -> tuple[str, int]:
    i = data.find(0, pos, end)
    if i < 0:
        raise PduError(f"{name}: missing NUL terminator", status=ESME_RINVMSGLEN)
    return data[pos:i].decode("latin-1"), i + 1


def _need(end: int, pos: int, n: int, name: str) -> None:
    if end - pos < n:
        raise PduError(f"{name}: body truncated", status=ESME_RINVMSGLEN)


def _decode_tlvs(data: bytes, pos: int, end: int) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    while pos < end:
        if end - pos < 4:
            raise PduError(f"truncated TLV header ({end - pos} octets left)", status=ESME_RINVOPTPARSTREAM)
        tag, length = _TLV_HEAD.unpack_from(data, pos)
        pos += 4
        if end - pos < length:
            raise PduError(
                f"TLV 0x{tag:04X}: length {length} exceeds the {end - pos} octets left",
                status=ESME_RINVOPTPARSTREAM,
            )
        out.append((tag, data[pos : pos + length]))
        pos += length
    return out


def _encode_raw_tlvs(tlvs: tuple[tuple[int, bytes], ...]) -> bytes:
    if not tlvs:
        return b""
    parts = []
    for tag, value in tlvs:
        if not 0 <= tag <= 0xFFFF or len(value) > 0xFFFF:
            raise PduError(f"TLV 0x{tag:04X}: tag or length out of range")
        parts.append(_TLV_HEAD.pack(tag, len(value)))
        parts.append(value)
    return b"".join(parts)


# --------------------------------------------------------------------------------------------------
# PDU classes


@dataclass(slots=True, kw_only=True)
class SmppPdu:
    """Base of all PDUs: the header fields other than the length."""

    command_id: ClassVar[int] = 0
    sequence: int = 0
    command_status: int = 0

    def body(self) -> bytes:
        return b""

    def encode(self) -> bytes:
        body = self.body()
        return _HEADER.pack(16 + len(body), self.command_id, self.command_status, self.sequence) + body

    @classmethod
    def decode_body(cls, data: bytes, pos: int, end: int, status: int, seq: int) -> SmppPdu:
        if pos != end:
            raise PduError(f"{cls.__name__}: unexpected body of {end - pos} octets", status=ESME_RINVCMDLEN)
        return cls(sequence=seq, command_status=status)


class _Request:
    """Mixin: the response class of a request."""

    response_class: ClassVar[type[SmppPdu]]

    def response(self, status: int = 0, **fields: Any) -> Any:
        return self.response_class(sequence=self.sequence, command_status=status, **fields)  # type: ignore[attr-defined]


@dataclass(slots=True, kw_only=True)
class GenericNack(SmppPdu):
    command_id: ClassVar[int] = GENERIC_NACK
    message_id: ClassVar[str] = ""  # lets callers read .message_id on any answer to submit_sm


@dataclass(slots=True, kw_only=True)
class UnbindResp(SmppPdu):
    command_id: ClassVar[int] = UNBIND_RESP


@dataclass(slots=True, kw_only=True)
class Unbind(_Request, SmppPdu):
    command_id: ClassVar[int] = UNBIND
    response_class: ClassVar[type[SmppPdu]] = UnbindResp


@dataclass(slots=True, kw_only=True)
class EnquireLinkResp(SmppPdu):
    command_id: ClassVar[int] = ENQUIRE_LINK_RESP


@dataclass(slots=True, kw_only=True)
class EnquireLink(_Request, SmppPdu):
    command_id: ClassVar[int] = ENQUIRE_LINK
    response_class: ClassVar[type[SmppPdu]] = EnquireLinkResp


# -- bind ---------------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class _BindResp(SmppPdu):
    system_id: str = ""
    tlvs: tuple[tuple[int, bytes], ...] = ()

    def body(self) -> bytes:
        if self.command_status != 0:
            return b""
        return _c(self.system_id, 16, "system_id") + _encode_raw_tlvs(self.tlvs)

    @classmethod
    def decode_body(cls, data: bytes, pos: int, end: int, status: int, seq: int) -> SmppPdu:
        if pos == end:
            return cls(sequence=seq, command_status=status)
        system_id, pos = _cstr(data, pos, end, "system_id")
        tlvs = tuple(_decode_tlvs(data, pos, end))
        return cls(sequence=seq, command_status=status, system_id=system_id, tlvs=tlvs)


@dataclass(slots=True, kw_only=True)
class BindTransmitterResp(_BindResp):
    command_id: ClassVar[int] = BIND_TRANSMITTER_RESP


@dataclass(slots=True, kw_only=True)
class BindReceiverResp(_BindResp):
    command_id: ClassVar[int] = BIND_RECEIVER_RESP


@dataclass(slots=True, kw_only=True)
class BindTransceiverResp(_BindResp):
    command_id: ClassVar[int] = BIND_TRANSCEIVER_RESP


@dataclass(slots=True, kw_only=True)
class _Bind(_Request, SmppPdu):
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = INTERFACE_VERSION
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""

    def body(self) -> bytes:
        return b"".join(
            (
                _c(self.system_id, 16, "system_id"),
                _c(self.password, 9, "password"),
                _c(self.system_type, 13, "system_type"),
                bytes((self.interface_version, self.addr_ton, self.addr_npi)),
                _c(self.address_range, 41, "address_range"),
            )
        )

    @classmethod
    def decode_body(cls, data: bytes, pos: int, end: int, status: int, seq: int) -> SmppPdu:
        system_id, pos = _cstr(data, pos, end, "system_id")
        password, pos = _cstr(data, pos, end, "password")
        system_type, pos = _cstr(data, pos, end, "system_type")
        _need(end, pos, 3, "interface_version/addr_ton/addr_npi")
        iv, ton, npi = data[pos], data[pos + 1], data[pos + 2]
        address_range, pos = _cstr(data, pos + 3, end, "address_range")
        if pos != end:
            raise PduError(f"{cls.__name__}: {end - pos} trailing octets", status=ESME_RINVCMDLEN)
        return cls(
            sequence=seq,
            command_status=status,
            system_id=system_id,
            password=password,
            system_type=system_type,
            interface_version=iv,
            addr_ton=ton,
            addr_npi=npi,
            address_range=address_range,
        )


@dataclass(slots=True, kw_only=True)
class BindTransmitter(_Bind):
    command_id: ClassVar[int] = BIND_TRANSMITTER
    response_class: ClassVar[type[SmppPdu]] = BindTransmitterResp


@dataclass(slots=True, kw_only=True)
class BindReceiver(_Bind):
    command_id: ClassVar[int] = BIND_RECEIVER
    response_class: ClassVar[type[SmppPdu]] = BindReceiverResp


@dataclass(slots=True, kw_only=True)
class BindTransceiver(_Bind):
    command_id: ClassVar[int] = BIND_TRANSCEIVER
    response_class: ClassVar[type[SmppPdu]] = BindTransceiverResp


# -- message responses --------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class _MessageIdResp(SmppPdu):
    message_id: str = ""

    def body(self) -> bytes:
        if self.command_status != 0:
            return b""
        return _c(self.message_id, 65, "message_id")

    @classmethod
    def decode_body(cls, data: bytes, pos: int, end: int, status: int, seq: int) -> SmppPdu:
        if pos == end:
            return cls(sequence=seq, command_status=status)
        message_id, pos = _cstr(data, pos, end, "message_id")
        # Some SMSCs append TLVs or padding to responses; ignore what follows the id.
        return cls(sequence=seq, command_status=status, message_id=message_id)


@dataclass(slots=True, kw_only=True)
class SubmitSmResp(_MessageIdResp):
    command_id: ClassVar[int] = SUBMIT_SM_RESP


@dataclass(slots=True, kw_only=True)
class DeliverSmResp(_MessageIdResp):
    command_id: ClassVar[int] = DELIVER_SM_RESP


@dataclass(slots=True, kw_only=True)
class DataSmResp(SmppPdu):
    command_id: ClassVar[int] = DATA_SM_RESP
    message_id: str = ""
    tlvs: tuple[tuple[int, bytes], ...] = ()

    def body(self) -> bytes:
        if self.command_status != 0 and not self.tlvs:
            return b""
        return _c(self.message_id, 65, "message_id") + _encode_raw_tlvs(self.tlvs)

    @classmethod
    def decode_body(cls, data: bytes, pos: int, end: int, status: int, seq: int) -> SmppPdu:
        if pos == end:
            return cls(sequence=seq, command_status=status)
        message_id, pos = _cstr(data, pos, end, "message_id")
        tlvs = tuple(_decode_tlvs(data, pos, end))
        return cls(sequence=seq, command_status=status, message_id=message_id, tlvs=tlvs)


# -- message PDUs with typed TLVs ---------------------------------------------------------------

# tag -> (field name, kind)
_MSG_TLVS: dict[int, tuple[str, str]] = {
    TAG_SAR_MSG_REF_NUM: ("sar_msg_ref_num", "u16"),
    TAG_SAR_TOTAL_SEGMENTS: ("sar_total_segments", "u8"),
    TAG_SAR_SEGMENT_SEQNUM: ("sar_segment_seqnum", "u8"),
    TAG_RECEIPTED_MESSAGE_ID: ("receipted_message_id", "cstr"),
    TAG_MESSAGE_STATE: ("message_state", "u8"),
    TAG_MESSAGE_PAYLOAD: ("message_payload", "bytes"),
    TAG_NETWORK_ERROR_CODE: ("network_error_code", "neterr"),
}


@dataclass(slots=True, kw_only=True)
class _MessageTlvs(SmppPdu):
    """Typed TLVs shared by submit_sm, deliver_sm and data_sm, plus raw unknown ones."""

    sar_msg_ref_num: int | None = None
    sar_total_segments: int | None = None
    sar_segment_seqnum: int | None = None
    receipted_message_id: str | None = None
    message_state: int | None = None
    message_payload: bytes | None = None
    network_error_code: tuple[int, int] | None = None  # (network type, error code)
    tlvs: tuple[tuple[int, bytes], ...] = ()

    def _tlv_bytes(self) -> bytes:
        parts: list[bytes] = []
        if self.sar_msg_ref_num is not None:
            parts.append(_TLV_U16.pack(TAG_SAR_MSG_REF_NUM, 2, self.sar_msg_ref_num))
        if self.sar_total_segments is not None:
            parts.append(_TLV_U8.pack(TAG_SAR_TOTAL_SEGMENTS, 1, self.sar_total_segments))
        if self.sar_segment_seqnum is not None:
            parts.append(_TLV_U8.pack(TAG_SAR_SEGMENT_SEQNUM, 1, self.sar_segment_seqnum))
        if self.receipted_message_id is not None:
            v = _c(self.receipted_message_id, 65, "receipted_message_id")
            parts.append(_TLV_HEAD.pack(TAG_RECEIPTED_MESSAGE_ID, len(v)) + v)
        if self.message_state is not None:
            parts.append(_TLV_U8.pack(TAG_MESSAGE_STATE, 1, self.message_state))
        if self.network_error_code is not None:
            t, code = self.network_error_code
            parts.append(_TLV_NETERR.pack(TAG_NETWORK_ERROR_CODE, 3, t, code))
        if self.message_payload is not None:
            if len(self.message_payload) > 0xFFFF:
                raise PduError("message_payload longer than 65535 octets")
            parts.append(_TLV_HEAD.pack(TAG_MESSAGE_PAYLOAD, len(self.message_payload)))
            parts.append(self.message_payload)
        if self.tlvs:
            parts.append(_encode_raw_tlvs(self.tlvs))
        return b"".join(parts)


def _typed_tlvs(data: bytes, pos: int, end: int, kw: dict[str, Any]) -> None:
    extras: list[tuple[int, bytes]] = []
    for tag, value in _decode_tlvs(data, pos, end):
        spec = _MSG_TLVS.get(tag)
        if spec is None:
            extras.append((tag, value))
            continue
        name, kind = spec
        n = len(value)
        if kind == "u8":
            if n != 1:
                raise PduError(f"TLV {name}: length {n}, expected 1", status=ESME_RINVPARLEN)
            kw[name] = value[0]
        elif kind == "u16":
            if n != 2:
                raise PduError(f"TLV {name}: length {n}, expected 2", status=ESME_RINVPARLEN)
            kw[name] = (value[0] << 8) | value[1]
        elif kind == "cstr":
            if n and value[-1] == 0:
                value = value[:-1]
            if b"\x00" in value:
                raise PduError(f"TLV {name}: embedded NUL", status=ESME_RINVOPTPARAMVAL)
            kw[name] = value.decode("latin-1")
        elif kind == "neterr":
            if n != 3:
                raise PduError(f"TLV {name}: length {n}, expected 3", status=ESME_RINVPARLEN)
            kw[name] = (value[0], (value[1] << 8) | value[2])
        else:
            kw[name] = value
    if extras:
        kw["tlvs"] = tuple(extras)


@dataclass(slots=True, kw_only=True)
class _ShortMessage(_MessageTlvs):
    """Common layout of submit_sm and deliver_sm (§4.4.1, §4.6.1)."""

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""

    def body(self) -> bytes:
        sm = self.short_message
        try:
            st = self.service_type.encode("latin-1")
            src = self.source_addr.encode("latin-1")
            dst = self.destination_addr.encode("latin-1")
            sched = self.schedule_delivery_time.encode("latin-1")
            val = self.validity_period.encode("latin-1")
        except UnicodeEncodeError:
            return self._body_checked()
        if (
            len(st) > 5
            or len(src) > 20
            or len(dst) > 20
            or len(sched) > 16
            or len(val) > 16
            or len(sm) > 254
            or b"\x00" in st + src + dst + sched + val
        ):
            return self._body_checked()
        return b"".join(
            (
                st,
                b"\x00",
                bytes((self.source_addr_ton, self.source_addr_npi)),
                src,
                b"\x00",
                bytes((self.dest_addr_ton, self.dest_addr_npi)),
                dst,
                b"\x00",
                bytes((self.esm_class, self.protocol_id, self.priority_flag)),
                sched,
                b"\x00",
                val,
                b"\x00",
                bytes(
                    (
                        self.registered_delivery,
                        self.replace_if_present_flag,
                        self.data_coding,
                        self.sm_default_msg_id,
                        len(sm),
                    )
                ),
                sm,
                self._tlv_bytes(),
            )
        )

    def _body_checked(self) -> bytes:
        """Slow path of ``body``: field by field, to name the field that does not fit."""
        sm = self.short_message
        if len(sm) > 254:
            raise PduError(f"short_message: {len(sm)} octets, at most 254 (use message_payload)")
        return b"".join(
            (
                _c(self.service_type, 6, "service_type"),
                _BB.pack(self.source_addr_ton, self.source_addr_npi),
                _c(self.source_addr, 21, "source_addr"),
                _BB.pack(self.dest_addr_ton, self.dest_addr_npi),
                _c(self.destination_addr, 21, "destination_addr"),
                _SM_MID.pack(self.esm_class, self.protocol_id, self.priority_flag),
                _c(self.schedule_delivery_time, 17, "schedule_delivery_time"),
                _c(self.validity_period, 17, "validity_period"),
                _SM_TAIL.pack(
                    self.registered_delivery,
                    self.replace_if_present_flag,
                    self.data_coding,
                    self.sm_default_msg_id,
                    len(sm),
                ),
                sm,
                self._tlv_bytes(),
            )
        )

    @classmethod
    def decode_body(cls, data: bytes, pos: int, end: int, status: int, seq: int) -> SmppPdu:
        # Hot path: inlined C-string scans; an IndexError / struct.error from reading past the end is
        # turned into PduError(ESME_RINVMSGLEN) by decode_pdu.
        find = data.find
        i = find(0, pos, end)
        if i < 0:
            raise PduError("service_type: missing NUL terminator", status=ESME_RINVMSGLEN)
        service_type = data[pos:i].decode("latin-1")
        source_addr_ton = data[i + 1]
        source_addr_npi = data[i + 2]
        pos = i + 3
        i = find(0, pos, end)
        if i < 0:
            raise PduError("source_addr: missing NUL terminator", status=ESME_RINVMSGLEN)
        source_addr = data[pos:i].decode("latin-1")
        dest_addr_ton = data[i + 1]
        dest_addr_npi = data[i + 2]
        pos = i + 3
        i = find(0, pos, end)
        if i < 0:
            raise PduError("destination_addr: missing NUL terminator", status=ESME_RINVMSGLEN)
        destination_addr = data[pos:i].decode("latin-1")
        esm_class, protocol_id, priority_flag = _SM_MID.unpack_from(data, i + 1)
        pos = i + 4
        i = find(0, pos, end)
        if i < 0:
            raise PduError("schedule_delivery_time: missing NUL terminator", status=ESME_RINVMSGLEN)
        schedule_delivery_time = data[pos:i].decode("latin-1") if i > pos else ""
        pos = i + 1
        i = find(0, pos, end)
        if i < 0:
            raise PduError("validity_period: missing NUL terminator", status=ESME_RINVMSGLEN)
        validity_period = data[pos:i].decode("latin-1") if i > pos else ""
        rd, replace, dcs, default_id, sm_length = _SM_TAIL.unpack_from(data, i + 1)
        pos = i + 6
        if end - pos < sm_length:
            raise PduError(
                f"short_message: sm_length {sm_length} exceeds the {end - pos} octets left",
                status=ESME_RINVMSGLEN,
            )
        # built field by field instead of through the keyword __init__ (a third of the cost): every
        # field is set here, the TLV fields to their defaults first (tests/test_smpp_codec.py round trips)
        pdu = _new(cls)
        pdu.sequence = seq
        pdu.command_status = status
        pdu.service_type = service_type
        pdu.source_addr_ton = source_addr_ton
        pdu.source_addr_npi = source_addr_npi
        pdu.source_addr = source_addr
        pdu.dest_addr_ton = dest_addr_ton
        pdu.dest_addr_npi = dest_addr_npi
        pdu.destination_addr = destination_addr
        pdu.esm_class = esm_class
        pdu.protocol_id = protocol_id
        pdu.priority_flag = priority_flag
        pdu.schedule_delivery_time = schedule_delivery_time
        pdu.validity_period = validity_period
        pdu.registered_delivery = rd
        pdu.replace_if_present_flag = replace
        pdu.data_coding = dcs
        pdu.sm_default_msg_id = default_id
        pdu.short_message = data[pos : pos + sm_length]
        pdu.sar_msg_ref_num = pdu.sar_total_segments = pdu.sar_segment_seqnum = None
        pdu.receipted_message_id = pdu.message_state = pdu.message_payload = pdu.network_error_code = None
        pdu.tlvs = ()
        if pos + sm_length < end:
            tl: dict[str, Any] = {}
            _typed_tlvs(data, pos + sm_length, end, tl)
            for name, value in tl.items():
                setattr(pdu, name, value)
        return pdu

    @property
    def text_bytes(self) -> bytes:
        """The message content: ``message_payload`` when present, else ``short_message``."""
        return self.message_payload if self.message_payload is not None else self.short_message


@dataclass(slots=True, kw_only=True)
class SubmitSm(_Request, _ShortMessage):
    command_id: ClassVar[int] = SUBMIT_SM
    response_class: ClassVar[type[SmppPdu]] = SubmitSmResp


@dataclass(slots=True, kw_only=True)
class DeliverSm(_Request, _ShortMessage):
    command_id: ClassVar[int] = DELIVER_SM
    response_class: ClassVar[type[SmppPdu]] = DeliverSmResp

    @property
    def is_receipt(self) -> bool:
        """True for an SMSC delivery receipt (esm_class message type 0x04)."""
        return (self.esm_class & ESM_CLASS_TYPE_MASK) == ESM_CLASS_RECEIPT

    def receipt(self) -> dict[str, str | None] | None:
        """The receipt fields (see ``parse_receipt``) or None if this is not a receipt.

        ``id`` comes from the receipted_message_id TLV when present, else from the text; ``stat``
        from the text, else from the message_state TLV; ``err`` from the text, else from
        network_error_code.
        """
        if not self.is_receipt:
            return None
        info = parse_receipt(self.text_bytes)
        if self.receipted_message_id:
            info["id"] = self.receipted_message_id
        if info["stat"] is None and self.message_state is not None:
            info["stat"] = MESSAGE_STATES.get(self.message_state, "UNKNOWN")
        if info["err"] is None and self.network_error_code is not None:
            info["err"] = f"{self.network_error_code[1]:03d}"
        return info


@dataclass(slots=True, kw_only=True)
class DataSm(_Request, _MessageTlvs):
    command_id: ClassVar[int] = DATA_SM
    response_class: ClassVar[type[SmppPdu]] = DataSmResp
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0

    def body(self) -> bytes:
        return b"".join(
            (
                _c(self.service_type, 6, "service_type"),
                _BB.pack(self.source_addr_ton, self.source_addr_npi),
                _c(self.source_addr, 65, "source_addr"),
                _BB.pack(self.dest_addr_ton, self.dest_addr_npi),
                _c(self.destination_addr, 65, "destination_addr"),
                bytes((self.esm_class, self.registered_delivery, self.data_coding)),
                self._tlv_bytes(),
            )
        )

    @classmethod
    def decode_body(cls, data: bytes, pos: int, end: int, status: int, seq: int) -> SmppPdu:
        kw: dict[str, Any] = {"sequence": seq, "command_status": status}
        kw["service_type"], pos = _cstr(data, pos, end, "service_type")
        _need(end, pos, 2, "source_addr_ton/npi")
        kw["source_addr_ton"], kw["source_addr_npi"] = data[pos], data[pos + 1]
        kw["source_addr"], pos = _cstr(data, pos + 2, end, "source_addr")
        _need(end, pos, 2, "dest_addr_ton/npi")
        kw["dest_addr_ton"], kw["dest_addr_npi"] = data[pos], data[pos + 1]
        kw["destination_addr"], pos = _cstr(data, pos + 2, end, "destination_addr")
        _need(end, pos, 3, "esm_class/registered_delivery/data_coding")
        kw["esm_class"], kw["registered_delivery"], kw["data_coding"] = (
            data[pos],
            data[pos + 1],
            data[pos + 2],
        )
        pos += 3
        if pos < end:
            _typed_tlvs(data, pos, end, kw)
        return cls(**kw)


PDU_CLASSES: dict[int, type[SmppPdu]] = {
    cls.command_id: cls
    for cls in (
        GenericNack,
        BindTransmitter,
        BindTransmitterResp,
        BindReceiver,
        BindReceiverResp,
        BindTransceiver,
        BindTransceiverResp,
        Unbind,
        UnbindResp,
        EnquireLink,
        EnquireLinkResp,
        SubmitSm,
        SubmitSmResp,
        DeliverSm,
        DeliverSmResp,
        DataSm,
        DataSmResp,
    )
}


# --------------------------------------------------------------------------------------------------
# entry points


def decode_pdu(frame: bytes) -> Any:
    """Decode one complete PDU (header included). Raises only ``PduError``."""
    if not isinstance(frame, bytes):
        frame = bytes(frame)
    n = len(frame)
    if n < HEADER_SIZE:
        raise PduError(f"PDU of {n} octets is shorter than the 16-octet header", status=ESME_RINVCMDLEN)
    length, command_id, status, seq = _HEADER.unpack_from(frame, 0)
    if length != n:
        raise PduError(
            f"command_length {length} does not match the {n} octets received",
            command_id=command_id,
            sequence=seq,
            status=ESME_RINVCMDLEN,
        )
    cls = PDU_CLASSES.get(command_id)
    if cls is None:
        raise PduError(
            f"unknown command_id 0x{command_id:08X}",
            command_id=command_id,
            sequence=seq,
            status=ESME_RINVCMDID,
        )
    try:
        return cls.decode_body(frame, HEADER_SIZE, n, status, seq)
    except PduError as exc:
        exc.command_id = command_id
        exc.sequence = seq
        if not exc.status:
            exc.status = ESME_RSYSERR
        exc.args = (f"{cls.__name__}: {exc.args[0]}",)
        raise
    except (IndexError, struct.error) as exc:
        raise PduError(
            f"{cls.__name__}: body truncated",
            command_id=command_id,
            sequence=seq,
            status=ESME_RINVMSGLEN,
        ) from exc
    except (ValueError, TypeError) as exc:  # defensive: never leak another type
        raise PduError(
            f"{cls.__name__}: malformed body ({exc})",
            command_id=command_id,
            sequence=seq,
            status=ESME_RSYSERR,
        ) from exc


def encode_pdu(pdu: SmppPdu) -> bytes:
    """Encode a PDU; raises ``PduError`` if a field does not fit the wire format."""
    try:
        return pdu.encode()
    except PduError:
        raise
    except (struct.error, ValueError, TypeError, AttributeError) as exc:
        raise PduError(f"{type(pdu).__name__}: cannot encode ({exc})") from exc


class SmppCodec(SessionCodecBase):
    """The SMPP 3.4 half of a ``qixin.protocols.session.Session``.

    enquire_link is the keepalive and unbind the unbind (those methods: ``qixin.protocols.fields``); a
    request that failed, or a frame that did not decode, is answered with generic_nack when it has no
    response of its own.
    """

    header_size = HEADER_SIZE
    status_system_error = ESME_RSYSERR
    HEARTBEAT_ID = ENQUIRE_LINK
    TERMINATE_ID = UNBIND
    heartbeat_class = EnquireLink
    unbind_class = Unbind

    def __init__(self, max_frame_size: int = MAX_PDU_SIZE) -> None:
        self.max_frame_size = max_frame_size

    def decode(self, frame: bytes) -> Any:
        return decode_pdu(frame)

    def encode(self, pdu: Any) -> bytes:
        return encode_pdu(pdu)

    def response_to(self, request: Any, status: int = 0) -> Any:
        return request.response(status)

    def error_response(self, request: Any, status: int) -> Any:
        if isinstance(request, _Request):
            return request.response(status)
        return GenericNack(sequence=request.sequence, command_status=status)

    def error_for_frame(self, exc: PduError) -> Any | None:
        if exc.command_id & RESPONSE_BIT:
            return None  # never answer a response
        return GenericNack(sequence=exc.sequence, command_status=exc.status or ESME_RSYSERR)

    def error_for_length(self, header: bytes) -> Any | None:
        """The answer to a frame whose command_length is impossible (the session closes after it):
        generic_nack ESME_RINVCMDLEN, with the sequence of the header when it arrived (else 0)."""
        command_id = int.from_bytes(header[4:8], "big") if len(header) >= 8 else 0
        if command_id & RESPONSE_BIT:
            return None  # never answer a response
        sequence = int.from_bytes(header[12:16], "big") if len(header) >= 16 else 0
        return GenericNack(sequence=sequence, command_status=ESME_RINVCMDLEN)


# --------------------------------------------------------------------------------------------------
# delivery receipt text (SMPP 3.4 Appendix B, the de-facto format)


def _receipt_date(value: datetime | str | None) -> str:
    if value is None:
        return datetime.now().strftime("%y%m%d%H%M")
    if isinstance(value, datetime):
        return value.strftime("%y%m%d%H%M")
    return value


def format_receipt(
    message_id: str,
    stat: str,
    err: str | int = "000",
    submit_date: datetime | str | None = None,
    done_date: datetime | str | None = None,
    text: str = "",
    *,
    sub: int = 1,
    dlvrd: int | None = None,
) -> str:
    """The receipt text: ``id:… sub:001 dlvrd:001 submit date:YYMMDDhhmm done date:YYMMDDhhmm
    stat:DELIVRD err:000 text:…`` (text truncated to 20 characters)."""
    if dlvrd is None:
        dlvrd = sub if stat == "DELIVRD" else 0
    err_s = f"{err:03d}" if isinstance(err, int) else err
    return (
        f"id:{message_id} sub:{sub:03d} dlvrd:{dlvrd:03d} submit date:{_receipt_date(submit_date)} "
        f"done date:{_receipt_date(done_date)} stat:{stat} err:{err_s} text:{text[:20]}"
    )


_RECEIPT_FIELDS = ("id", "sub", "dlvrd", "submit_date", "done_date", "stat", "err", "text")
_RECEIPT_RE = re.compile(r"\b(?P<key>id|sub|dlvrd|submit[ _]date|done[ _]date|stat|err|text)\s*:\s*", re.IGNORECASE)


# The layout ``format_receipt`` writes and nearly every SMSC sends: the keys in this order, lower case, one
# space apart, word-character values. A text of that shape parses to exactly what the general scan gives
# (no key can begin inside a value: values hold no ':' and no word boundary), in one match.
_RECEIPT_STD = re.compile(
    r"id:([0-9A-Za-z_]*) sub:([0-9A-Za-z_]*) dlvrd:([0-9A-Za-z_]*) submit date:([0-9A-Za-z_]*)"
    r" done date:([0-9A-Za-z_]*) stat:([0-9A-Za-z_]*) err:([0-9A-Za-z_]*)(?: text:\s*(.*))?",
    re.DOTALL,
)


def parse_receipt(text: str | bytes) -> dict[str, str | None]:
    """Parse receipt text into ``{id, sub, dlvrd, submit_date, done_date, stat, err, text}``.

    Keys are matched case-insensitively, in any order; a missing field is None. ``stat`` is
    upper-cased; ``text`` runs to the end of the input.
    """
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("latin-1")
    m = _RECEIPT_STD.fullmatch(text)
    if m is not None:
        rid, sub, dlvrd, submit_date, done_date, stat, err, rest = m.groups()
        return {
            "id": rid, "sub": sub, "dlvrd": dlvrd, "submit_date": submit_date, "done_date": done_date,
            "stat": stat.upper(), "err": err, "text": rest,
        }  # fmt: skip
    return _parse_receipt_any(text)


def _parse_receipt_any(text: str) -> dict[str, str | None]:
    """``parse_receipt`` of any layout: every key found by a scan, each value up to the next key."""
    out: dict[str, str | None] = dict.fromkeys(_RECEIPT_FIELDS)
    matches = list(_RECEIPT_RE.finditer(text))
    for i, m in enumerate(matches):
        key = m.group("key").lower().replace(" ", "_")
        if key not in out or out[key] is not None:
            continue
        start = m.end()
        if key == "text":
            value = text[start:]
        else:
            end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
            value = text[start:end].strip()
            value = value.split()[0] if value else ""
        out[key] = value
    if out["stat"] is not None:
        out["stat"] = out["stat"].upper()
    return out
