"""SMS text rules: alphabet choice, length, segmentation and user data headers.

Rules implemented here (pure functions, no I/O):

* Alphabet. A message is sent in the GSM 03.38 default alphabet (GSM-7) when every character is in
  the basic table or in the extension table (reached with the escape septet 0x1B:
  ``^ { } \\ [ ~ ] | €`` and form feed). Otherwise it is sent in UCS-2, i.e. UTF-16BE; characters
  outside the Basic Multilingual Plane (emoji, rare CJK) take a surrogate pair of two code units.
* Length units. GSM-7 counts septets (an extension character counts 2). UCS-2 counts UTF-16 code
  units (a character outside the BMP counts 2).
* Segmentation. GSM-7: one part up to 160 septets, otherwise parts of at most 153 septets.
  UCS-2: one part up to 70 units, otherwise parts of at most 67 units. An escape pair (0x1B + code)
  and a UTF-16 surrogate pair are never split across parts, so a part may hold one unit less.
  An empty text is one part. Billing (``plan_text``) counts parts this way.
* Concatenation header. Multi-part messages carry a UDH with the concatenation information
  element: the 8-bit reference IE ``00 03 ref total seq`` when ``ref < 256``, otherwise the 16-bit
  reference IE ``08 04 refhi reflo total seq``. The 16-bit IE is one octet longer, so with it a part
  holds 152 septets / 66 UCS-2 units (keeping every part within the 140-octet limit) and a text may
  need more parts than ``plan_text`` billed; callers that bill with ``plan_text`` should use a
  reference below 256.
* Payloads. GSM-7 payloads are unpacked septets, one per byte (SMPP ``data_coding`` 0 as most
  SMSCs take it); ``pack_septets`` / ``unpack_septets`` convert for protocols that need packed
  GSM-7. UCS-2 payloads are UTF-16BE (``data_coding`` 8).
* Signature. ``with_signature`` puts the 【签名】 in front of the content; it counts toward length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "GSM7",
    "UCS2",
    "Concat",
    "TextPlan",
    "TextTooLong",
    "check_length",
    "decode_payload",
    "encode_parts",
    "gsm7_decode",
    "gsm7_encode",
    "pack_septets",
    "plan_text",
    "unpack_septets",
    "with_signature",
]

GSM7 = "gsm7"
UCS2 = "ucs2"

DC_GSM7 = 0
DC_ASCII = 1
DC_LATIN1 = 3
DC_UCS2 = 8
DC_GBK = 15  # CMPP / SMGP msg_fmt 15 (GB 2312 / GBK); decoded with the GB18030 superset

GSM7_SINGLE = 160
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67

_ESC = 0x1B

# GSM 03.38 default alphabet, indexed by septet value. 0x1B is the escape to the extension table and
# has no character of its own (marked with None).
_BASIC_TABLE: tuple[str | None, ...] = (
    *"@£$¥èéùìòÇ\nØø\rÅå",
    *"Δ_ΦΓΛΩΠΨΣΘΞ",
    None,
    *"ÆæßÉ",
    *" !\"#¤%&'()*+,-./",
    *"0123456789:;<=>?",
    *"¡ABCDEFGHIJKLMNO",
    *"PQRSTUVWXYZÄÖÑÜ§",
    *"¿abcdefghijklmno",
    *"pqrstuvwxyzäöñüà",
)
assert len(_BASIC_TABLE) == 128

# Extension table: character -> septet that follows the escape.
_EXTENSION: dict[str, int] = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

_BASIC: dict[str, int] = {ch: code for code, ch in enumerate(_BASIC_TABLE) if ch is not None}
_EXT_DECODE: dict[int, str] = {code: ch for ch, code in _EXTENSION.items()}

GSM7_BASIC_CHARS: frozenset[str] = frozenset(_BASIC)
GSM7_EXTENSION_CHARS: frozenset[str] = frozenset(_EXTENSION)
GSM7_CHARS: frozenset[str] = GSM7_BASIC_CHARS | GSM7_EXTENSION_CHARS

# str.translate tables: text -> unpacked septets as latin-1 code points, and back.
_ENCODE_TRANS: dict[int, str] = {ord(ch): chr(code) for ch, code in _BASIC.items()}
_ENCODE_TRANS.update({ord(ch): chr(_ESC) + chr(code) for ch, code in _EXTENSION.items()})
_DECODE_TRANS: dict[int, str] = {code: ch for code, ch in enumerate(_BASIC_TABLE) if ch is not None}


@dataclass(frozen=True, slots=True)
class TextPlan:
    """Encoding and billed size of one message text."""

    encoding: str  # GSM7 or UCS2
    data_coding: int  # SMPP data_coding: 0 for GSM7, 8 for UCS2
    units: int  # septets (GSM7) or UTF-16 code units (UCS2) of the whole text
    parts: int  # number of billed parts (>= 1; an empty text is 1 part)


@dataclass(frozen=True, slots=True)
class Concat:
    """Concatenation information taken from a user data header (values as received)."""

    ref: int
    total: int
    seq: int


class TextTooLong(ValueError):
    """The text needs more parts than allowed."""

    def __init__(self, parts: int, max_parts: int) -> None:
        super().__init__(f"text needs {parts} parts, at most {max_parts} allowed")
        self.parts = parts
        self.max_parts = max_parts


# --- GSM-7 -----------------------------------------------------------------------------------------


def gsm7_encode(text: str) -> bytes:
    """Encode ``text`` to unpacked GSM-7 septets (one per byte, extension chars as 0x1B + code).

    Raises ValueError when a character is not in the GSM 03.38 default alphabet or its extension.
    """
    if not GSM7_CHARS.issuperset(text):
        bad = next(ch for ch in text if ch not in GSM7_CHARS)
        raise ValueError(f"character {bad!r} is not in the GSM 03.38 alphabet")
    return text.translate(_ENCODE_TRANS).encode("latin-1")


def gsm7_decode(data: bytes) -> str:
    """Decode unpacked GSM-7 septets (one per byte).

    An escape followed by a code with no extension character decodes as the basic character of that
    code (as GSM 03.38 asks of receivers); an escape followed by another escape, or a trailing
    escape, decodes as a space. Raises ValueError for bytes above 0x7F.
    """
    if data and max(data) > 0x7F:
        raise ValueError("GSM-7 septet above 0x7F")
    if _ESC not in data:
        return data.decode("latin-1").translate(_DECODE_TRANS)
    out: list[str] = []
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b != _ESC:
            out.append(_BASIC_TABLE[b])  # type: ignore[arg-type]  # b != 0x1B, so never None
            i += 1
            continue
        if i + 1 >= n:
            out.append(" ")
            break
        nxt = data[i + 1]
        if nxt in _EXT_DECODE:
            out.append(_EXT_DECODE[nxt])
        elif nxt == _ESC:
            out.append(" ")
        else:
            out.append(_BASIC_TABLE[nxt])  # type: ignore[arg-type]
        i += 2
    return "".join(out)


def pack_septets(data: bytes) -> bytes:
    """Pack unpacked septets (values 0..127) into GSM 7-bit packed octets, least significant first."""
    out = bytearray()
    acc = 0
    bits = 0
    for b in data:
        if b > 0x7F:
            raise ValueError("septet value above 0x7F")
        acc |= b << bits
        bits += 7
        while bits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            bits -= 8
    if bits:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack_septets(data: bytes, count: int) -> bytes:
    """Unpack ``count`` septets from GSM 7-bit packed octets (inverse of ``pack_septets``)."""
    if count < 0 or count * 7 > len(data) * 8:
        raise ValueError(f"cannot unpack {count} septets from {len(data)} octets")
    out = bytearray(count)
    acc = 0
    bits = 0
    pos = 0
    for i in range(count):
        if bits < 7:
            acc |= data[pos] << bits
            pos += 1
            bits += 8
        out[i] = acc & 0x7F
        acc >>= 7
        bits -= 7
    return bytes(out)


# --- planning and segmentation ---------------------------------------------------------------------


def _split(data: bytes, limit: int, step: int, is_lead: Callable[[bytes, int], bool]) -> list[bytes]:
    """Cut ``data`` into chunks of at most ``limit`` bytes on ``step`` boundaries.

    ``is_lead(data, end)`` says whether the unit ending at byte ``end`` starts a pair that must not be
    split; then the chunk ends one unit earlier.
    """
    chunks: list[bytes] = []
    n = len(data)
    pos = 0
    while pos < n:
        end = pos + limit
        if end < n and is_lead(data, end):
            end -= step
        chunks.append(data[pos:end])
        pos = end
    return chunks


def _gsm_lead(data: bytes, end: int) -> bool:
    # In our own encoding 0x1B only ever appears as the first septet of an escape pair.
    return data[end - 1] == _ESC


def _utf16_lead(data: bytes, end: int) -> bool:
    # High surrogate (0xD800..0xDBFF) as the last code unit of the chunk.
    return 0xD8 <= data[end - 2] <= 0xDB


def _gsm_parts(septets: bytes, part: int = GSM7_PART) -> list[bytes]:
    return _split(septets, part, 1, _gsm_lead)


def _ucs2_parts(data: bytes, part: int = UCS2_PART) -> list[bytes]:
    return _split(data, part * 2, 2, _utf16_lead)


def plan_text(text: str) -> TextPlan:
    """Choose the encoding of ``text`` and count its length units and billed parts.

    Raises ValueError (UnicodeEncodeError) for a string holding a lone surrogate, which no SMS can carry.
    """
    if GSM7_BASIC_CHARS.issuperset(text):
        n = len(text)
        parts = 1 if n <= GSM7_SINGLE else -(-n // GSM7_PART)
        return TextPlan(GSM7, DC_GSM7, n, parts)
    if GSM7_CHARS.issuperset(text):
        septets = gsm7_encode(text)
        n = len(septets)
        if n <= GSM7_SINGLE:
            return TextPlan(GSM7, DC_GSM7, n, 1)
        return TextPlan(GSM7, DC_GSM7, n, len(_gsm_parts(septets)))
    data = text.encode("utf-16-be")
    n = len(data) >> 1
    if n <= UCS2_SINGLE:
        parts = 1
    elif n == len(text):  # no surrogate pairs: plain division
        parts = -(-n // UCS2_PART)
    else:
        parts = len(_ucs2_parts(data))
    return TextPlan(UCS2, DC_UCS2, n, parts)


def _udh(ref: int, total: int, seq: int) -> bytes:
    if ref < 256:
        return bytes((5, 0x00, 3, ref, total, seq))
    return bytes((6, 0x08, 4, ref >> 8, ref & 0xFF, total, seq))


def encode_parts(text: str, ref: int) -> tuple[int, list[bytes], bool]:
    """Encode ``text`` into SMPP ``short_message`` payloads.

    Returns ``(data_coding, payloads, udhi)``. A single-part text gives one payload without UDH and
    ``udhi`` False. A multi-part text gives one payload per part, each the concatenation UDH followed
    by the part, and ``udhi`` True. ``ref`` (0..65535) is the concatenation reference; below 256 the
    8-bit reference IE is used, otherwise the 16-bit one (see the module docstring).
    """
    if not 0 <= ref <= 0xFFFF:
        raise ValueError(f"concatenation reference {ref} outside 0..65535")
    wide = ref >= 256
    if GSM7_CHARS.issuperset(text):
        dc = DC_GSM7
        body = gsm7_encode(text)
        if len(body) <= GSM7_SINGLE:
            return dc, [body], False
        chunks = _gsm_parts(body, GSM7_PART - 1 if wide else GSM7_PART)
    else:
        dc = DC_UCS2
        body = text.encode("utf-16-be")
        if len(body) <= UCS2_SINGLE * 2:
            return dc, [body], False
        chunks = _ucs2_parts(body, UCS2_PART - 1 if wide else UCS2_PART)
    total = len(chunks)
    if total > 255:
        raise ValueError(f"text needs {total} parts, a concatenated message holds at most 255")
    return dc, [_udh(ref, total, seq) + chunk for seq, chunk in enumerate(chunks, 1)], True


def _parse_udh(payload: bytes) -> tuple[Concat | None, bytes]:
    if not payload:
        raise ValueError("UDHI set but payload is empty")
    udhl = payload[0]
    end = 1 + udhl
    if end > len(payload):
        raise ValueError("UDH longer than payload")
    concat: Concat | None = None
    i = 1
    while i < end:
        if i + 2 > end:
            raise ValueError("truncated UDH information element")
        iei = payload[i]
        iel = payload[i + 1]
        start = i + 2
        stop = start + iel
        if stop > end:
            raise ValueError("UDH information element overruns header")
        ie = payload[start:stop]
        if iei == 0x00 and iel == 3:
            concat = Concat(ie[0], ie[1], ie[2])
        elif iei == 0x08 and iel == 4:
            concat = Concat((ie[0] << 8) | ie[1], ie[2], ie[3])
        i = stop
    return concat, payload[end:]


def decode_payload(data_coding: int, payload: bytes, udhi: bool) -> tuple[str, Concat | None]:
    """Decode a received ``short_message``: strip the UDH when ``udhi`` and decode the text.

    Supports data_coding 0 (GSM-7 unpacked), 1 (ASCII), 3 (Latin-1), 8 (UCS-2), 15 (GBK) and the
    message-class form 0xF0..0xF3 (GSM-7). Returns the text and the concatenation info if the UDH has
    a concatenation IE. Raises only ValueError (malformed UDH, undecodable bytes, unknown coding).
    """
    concat: Concat | None = None
    body = payload
    if udhi:
        concat, body = _parse_udh(payload)
    if data_coding == DC_GSM7 or 0xF0 <= data_coding <= 0xF3:
        return gsm7_decode(body), concat
    if data_coding == DC_UCS2:
        if len(body) % 2:
            raise ValueError("UCS-2 payload of odd length")
        return body.decode("utf-16-be"), concat
    if data_coding == DC_ASCII:
        return body.decode("ascii"), concat
    if data_coding == DC_LATIN1:
        return body.decode("latin-1"), concat
    if data_coding == DC_GBK:
        return body.decode("gb18030"), concat
    raise ValueError(f"unsupported data_coding {data_coding}")


# --- signature and limits --------------------------------------------------------------------------


def with_signature(content: str, signature: str) -> str:
    """Return ``"【" + signature + "】" + content``; unchanged if content already starts with it.

    A signature given with its brackets (``"【企信】"``) is accepted too. An empty signature leaves the
    content unchanged.
    """
    sig = signature.strip()
    if sig.startswith("【") and sig.endswith("】"):
        sig = sig[1:-1]
    if not sig:
        return content
    bracketed = f"【{sig}】"
    if content.startswith(bracketed):
        return content
    return bracketed + content


def check_length(plan: TextPlan, max_parts: int) -> None:
    """Raise TextTooLong when ``plan`` needs more than ``max_parts`` parts."""
    if max_parts < 1:
        raise ValueError("max_parts must be at least 1")
    if plan.parts > max_parts:
        raise TextTooLong(plan.parts, max_parts)
