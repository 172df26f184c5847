"""Message text <-> CMPP Msg_Fmt / Msg_Content, on top of the segmentation rules in ``qixin.domain.text``.

CMPP differs from SMPP in one point that matters: Msg_Fmt 0 is ASCII, not GSM-7. ``encode_parts``
(domain) chooses GSM-7 or UCS-2 and returns unpacked GSM-7 septets for the former; sent as Msg_Fmt 0
those would corrupt ``@ $ _`` and the extension characters. So:

* UCS-2 parts (data_coding 8) go out as Msg_Fmt 8 unchanged.
* GSM-7 parts of a pure-ASCII text go out as Msg_Fmt 0 with every part's body translated back to
  ASCII. ASCII never needs more bytes than GSM-7 needs septets, so the parts (and the billed count)
  stay the same; the concatenation UDH is kept as built.
* GSM-7 text that is not ASCII (``é £ Δ`` …) cannot be Msg_Fmt 0: it is re-split as UCS-2
  (Msg_Fmt 8, 70 / 67 units per part, 66 with a 16-bit reference). Such a text may need more parts
  than ``plan_text`` billed.
* data_coding 15 (GBK) maps to Msg_Fmt 15.

Decoding (``decode_content``): Msg_Fmt 0 as ASCII (falling back to GB18030, then Latin-1, since
handsets and gateways are not always strict), 8 as UCS-2, 15 as GB18030, 4 (binary) as Latin-1,
anything else as GB18030 or Latin-1. The UDH is stripped when TP_udhi is set.
"""

from __future__ import annotations

from qixin.domain.text import (
    DC_GBK,
    DC_LATIN1,
    DC_UCS2,
    Concat,
    decode_payload,
    encode_parts,
    gsm7_decode,
)

__all__ = ["decode_content", "encode_text"]

MSG_FMT_ASCII = 0
MSG_FMT_BINARY = 4
MSG_FMT_UCS2 = 8
MSG_FMT_GB = 15

_UCS2_SINGLE = 140  # bytes
_UCS2_PART = 134  # 67 units
_UCS2_PART_WIDE = 132  # 66 units, with the 16-bit reference IE


def _udh(ref: int, total: int, seq: int) -> bytes:
    if ref < 256:
        return bytes((5, 0x00, 3, ref, total, seq))
    return bytes((6, 0x08, 4, ref >> 8, ref & 0xFF, total, seq))


def _ucs2_parts(text: str, ref: int) -> tuple[list[bytes], bool]:
    body = text.encode("utf-16-be")
    if len(body) <= _UCS2_SINGLE:
        return [body], False
    step = _UCS2_PART_WIDE if ref >= 256 else _UCS2_PART
    chunks: list[bytes] = []
    i = 0
    n = len(body)
    while i < n:
        end = min(i + step, n)
        if end < n and 0xD8 <= body[end - 2] <= 0xDB:  # never split a surrogate pair
            end -= 2
        chunks.append(body[i:end])
        i = end
    total = len(chunks)
    if total > 255:
        raise ValueError(f"text needs {total} parts, a concatenated message holds at most 255")
    return [_udh(ref, total, k) + c for k, c in enumerate(chunks, 1)], True


def encode_text(text: str, ref: int) -> tuple[int, list[bytes], bool]:
    """``(msg_fmt, contents, tp_udhi)`` for ``text``; ``ref`` is the concatenation reference (0..65535)."""
    dc, payloads, udhi = encode_parts(text, ref)
    if dc == DC_UCS2:
        return MSG_FMT_UCS2, payloads, udhi
    if dc == DC_GBK:
        return MSG_FMT_GB, payloads, udhi
    if text.isascii():
        if not udhi:
            return MSG_FMT_ASCII, [gsm7_decode(payloads[0]).encode("ascii")], False
        out = []
        for p in payloads:
            cut = p[0] + 1
            out.append(p[:cut] + gsm7_decode(p[cut:]).encode("ascii"))
        return MSG_FMT_ASCII, out, True
    parts, udhi = _ucs2_parts(text, ref)
    return MSG_FMT_UCS2, parts, udhi


def decode_content(msg_fmt: int, content: bytes, udhi: bool) -> tuple[str, Concat | None]:
    """The text of a received Msg_Content and its concatenation info. Raises ValueError only for a
    malformed UDH or UCS-2 of odd length."""
    if msg_fmt == MSG_FMT_UCS2:
        return decode_payload(DC_UCS2, content, udhi)
    text, concat = decode_payload(DC_LATIN1, content, udhi)  # strips the UDH; never fails on bytes
    if msg_fmt == MSG_FMT_BINARY or text.isascii():
        return text, concat
    try:
        return text.encode("latin-1").decode("gb18030"), concat
    except UnicodeDecodeError:
        return text, concat
