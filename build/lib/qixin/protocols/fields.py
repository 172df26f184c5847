"""Pieces shared by the fixed-layout carrier codecs (CMPP, SGIP, SMGP; parts also by SMPP).

* Fixed-length octet strings: ``octets_encoder(error)`` gives the ``octets(value, size, name)`` each codec
  uses (latin-1, raising that codec's ``ProtocolError`` when the value does not fit), ``text(raw)`` reads
  one back (cut at the first NUL, C-string semantics).
* ``length_checker(error)``: the "body is N bytes, the layout requires M" check of fixed-size bodies.
* ``Framing``: the frame-level errors of a codec whose header starts with the frame length and the command
  id (too short, declared length vs frame size, unknown command, malformed body), worded per protocol, and
  ``read_header`` for the 12-byte ``length, command id, sequence`` headers (CMPP, SMGP).
* ``SessionCodecBase`` / ``TypedResponseCodec``: the session-engine ``Codec`` methods that are the same in
  every protocol (heartbeat / unbind / response bit), and for the protocols with a typed response to every
  request and no generic NACK (CMPP, SMGP) the response methods too.
* Login helpers: the MMDDHHMMSS timestamp and the MD5 authenticators of CMPP CONNECT / SMGP Login.
* ``CodecNamespace``: a module's codec API as one object (``SGIP12``, ``SMGP30``).

Everything here is on the hot path of encode/decode or builds errors only: the closures returned by the
factories are plain functions (no extra call layer).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from qixin.protocols.errors import PduError

__all__ = [
    "RESPONSE_BIT",
    "CodecNamespace",
    "Framing",
    "SessionCodecBase",
    "TypedResponseCodec",
    "decimal_timestamp",
    "length_checker",
    "login_authenticator",
    "octets_encoder",
    "secret_bytes",
    "status_authenticator",
    "text",
]

RESPONSE_BIT = 0x80000000  # set in the command id of every response (CMPP, SGIP, SMGP, SMPP)

_HEADER_III = struct.Struct(">III")


# --------------------------------------------------------------------------------------------------
# Fixed-length octet strings


def octets_encoder(error: type[PduError]) -> Callable[[str, int, str], bytes]:
    """The ``octets(value, size, name)`` of a codec whose errors are ``error``."""

    def octets(value: str, size: int, name: str) -> bytes:
        """``value`` as latin-1 bytes for a fixed ``size`` field (``struct`` pads it with NUL)."""
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise error(f"{name}: {value!r} is not representable in one byte per character") from exc
        if len(raw) > size:
            raise error(f"{name}: {len(raw)} bytes do not fit the {size}-byte field")
        return raw

    return octets


def text(raw: bytes) -> str:
    """A fixed-length octet string as text: cut at the first NUL (C-string semantics)."""
    return raw.partition(b"\0")[0].decode("latin-1")


def length_checker(error: type[PduError]) -> Callable[[str, bytes, int], None]:
    """The ``_check_len(name, body, size)`` of a codec whose errors are ``error``."""

    def check_len(name: str, body: bytes, size: int) -> None:
        if len(body) != size:
            raise error(f"{name}: body is {len(body)} bytes, the layout requires {size}")

    return check_len


# --------------------------------------------------------------------------------------------------
# Frame-level errors


@dataclass(frozen=True, slots=True, kw_only=True)
class Framing:
    """How one protocol words its frame-level errors, and the status each one answers with.

    ``protocol`` ("CMPP"), ``length_field`` ("Total_Length"), ``id_field`` ("Command_Id") name things as
    that protocol's specification does.
    """

    error: type[PduError]
    protocol: str
    length_field: str
    id_field: str
    header_size: int
    max_frame_size: int
    bad_structure: int  # status of a frame whose body does not match its layout
    bad_command: int  # status of an unknown command id

    def read_header(self, buf: bytes | bytearray | memoryview) -> tuple[int, int, int]:
        """``(total_length, command_id, sequence)`` of a 12-byte header starting at ``buf[0]``.

        Rejects a length below the header size or above the maximum frame size (framing cannot resync).
        """
        if len(buf) < self.header_size:
            raise self.header_too_short(len(buf))
        total, command_id, sequence = _HEADER_III.unpack_from(buf)
        if total < self.header_size or total > self.max_frame_size:
            raise self.out_of_range(total, command_id, sequence)
        return total, command_id, sequence

    def header_too_short(self, n: int) -> PduError:
        return self.error(f"need {self.header_size} bytes for the {self.protocol} header, got {n}")

    def out_of_range(self, total: int, command_id: int, sequence: int) -> PduError:
        return self.error(
            f"{self.length_field} {total} outside {self.header_size}..{self.max_frame_size}",
            command_id=command_id,
            sequence=sequence,
        )

    def too_short(self, n: int) -> PduError:
        return self.error(f"frame of {n} bytes is shorter than the {self.header_size}-byte {self.protocol} header")

    def length_mismatch(self, total: int, n: int, command_id: int, sequence: int) -> PduError:
        return self.error(
            f"declared {self.length_field} {total} does not match the frame size {n}",
            command_id=command_id,
            sequence=sequence,
            status=self.bad_structure,
        )

    def unknown_command(self, command_id: int, sequence: int) -> PduError:
        return self.error(
            f"unknown {self.protocol} {self.id_field} 0x{command_id:08X}",
            command_id=command_id,
            sequence=sequence,
            status=self.bad_command,
        )

    def annotate(self, exc: PduError, command_id: int, sequence: int) -> None:
        """Tell an error a body decoder raised which frame it came from (and the status to answer)."""
        exc.command_id, exc.sequence, exc.status = command_id, sequence, exc.status or self.bad_structure

    def malformed(self, exc: Exception, command_id: int, sequence: int) -> PduError:
        """The error for any other exception of a body decoder (never leak another type)."""
        return self.error(
            f"malformed {self.protocol} 0x{command_id:08X}: {exc}",
            command_id=command_id,
            sequence=sequence,
            status=self.bad_structure,
        )


# --------------------------------------------------------------------------------------------------
# Session-engine Codec methods


class SessionCodecBase:
    """Heartbeat / unbind / response-bit methods of the session engine's ``Codec`` protocol.

    A subclass names its keepalive and unbind requests (command ids and classes). The methods work on the class too
    (``CmppCodec.heartbeat()``).
    """

    HEARTBEAT_ID: ClassVar[Any]  # command id of the keepalive request
    TERMINATE_ID: ClassVar[int]  # command id of the unbind request
    heartbeat_class: ClassVar[Any]
    unbind_class: ClassVar[Any]

    @staticmethod
    def is_response(pdu: Any) -> bool:
        return bool(pdu.command_id & RESPONSE_BIT)

    @classmethod
    def is_heartbeat(cls, pdu: Any) -> bool:
        return pdu.command_id == cls.HEARTBEAT_ID

    @classmethod
    def heartbeat(cls) -> Any:
        return cls.heartbeat_class()

    @classmethod
    def is_unbind(cls, pdu: Any) -> bool:
        return pdu.command_id == cls.TERMINATE_ID

    @classmethod
    def unbind(cls) -> Any:
        return cls.unbind_class()


class TypedResponseCodec(SessionCodecBase):
    """For protocols that answer every request with its own response type and have no generic NACK.

    A subclass gives ``respond(request, status)`` (the protocol's response builder), ``request_classes``
    (command id -> request class, the requests a frame can be answered for) and ``status_bad_structure``.
    ``error_for_frame`` answers a request whose body did not decode with its typed response built from a
    default request carrying the frame's sequence; a response or an unknown command is not answered.
    """

    request_classes: ClassVar[dict[int, Any]]
    status_bad_structure: ClassVar[int]

    def respond(self, request: Any, status: int) -> Any:
        raise NotImplementedError

    def response_to(self, request: Any, status: int = 0) -> Any:
        return self.respond(request, status)

    def error_response(self, request: Any, status: int) -> Any:
        return self.respond(request, status)

    def error_for_frame(self, exc: PduError) -> Any | None:
        cid = exc.command_id
        if cid & RESPONSE_BIT or cid not in self.request_classes:
            return None  # never answer a response; no way to answer an unknown command
        req = self.request_classes[cid]()
        req.sequence = exc.sequence
        return self.respond(req, exc.status or self.status_bad_structure)


@dataclass(frozen=True, slots=True, kw_only=True)
class CodecNamespace:
    """A codec module's API as one object (same shape as ``cmpp.codec.CmppCodec``)."""

    HEADER_SIZE: int
    MAX_FRAME_SIZE: int
    RESPONSE_OF: dict[int, int]
    HEARTBEAT_ID: int | None
    TERMINATE_ID: int
    ProtocolError: type[PduError]
    read_header: Callable[..., Any]
    decode: Callable[..., Any]
    encode: Callable[..., bytes]


# --------------------------------------------------------------------------------------------------
# Login helpers (CMPP CONNECT, SMGP Login, SGIP sequence numbers)


def decimal_timestamp(month: int, day: int, hour: int, minute: int, second: int) -> int:
    """MMDDHHMMSS read as a decimal number (e.g. 1123102030)."""
    return int(f"{month:02d}{day:02d}{hour:02d}{minute:02d}{second:02d}")


def secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def login_authenticator(name: str, zeros: int, secret: str | bytes, timestamp: int | str) -> bytes:
    """MD5(name + ``zeros`` zero bytes + shared secret + timestamp "MMDDHHMMSS")."""
    ts = f"{timestamp:010d}" if isinstance(timestamp, int) else timestamp
    return hashlib.md5(name.encode("latin-1") + b"\0" * zeros + secret_bytes(secret) + ts.encode("ascii")).digest()


def status_authenticator(status: bytes, auth: bytes, secret: str | bytes) -> bytes:
    """MD5(Status bytes + the client's authenticator + shared secret)."""
    return hashlib.md5(status + auth + secret_bytes(secret)).digest()
