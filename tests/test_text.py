"""Tests for qixin.domain.text: alphabet choice, length, segmentation, UDH, GSM-7 packing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qixin.domain.text import (
    GSM7,
    GSM7_CHARS,
    UCS2,
    Concat,
    TextPlan,
    TextTooLong,
    check_length,
    decode_payload,
    encode_parts,
    gsm7_decode,
    gsm7_encode,
    pack_septets,
    plan_text,
    unpack_septets,
    with_signature,
)

CN = "中"
EMOJI = "😀"  # U+1F600, outside the BMP: a surrogate pair in UTF-16


def bodies(text: str, ref: int = 7) -> list[bytes]:
    """Part bodies of ``text`` without their UDH."""
    _dc, payloads, udhi = encode_parts(text, ref)
    if not udhi:
        return payloads
    return [p[1 + p[0] :] for p in payloads]


def reassemble(dc: int, payloads: list[bytes], udhi: bool) -> str:
    decoded = [decode_payload(dc, p, udhi) for p in payloads]
    if not udhi:
        assert len(decoded) == 1
        assert decoded[0][1] is None
        return decoded[0][0]
    concats = [c for _, c in decoded]
    assert all(c is not None for c in concats)
    assert [c.seq for c in concats if c] == list(range(1, len(payloads) + 1))
    assert {c.total for c in concats if c} == {len(payloads)}
    assert len({c.ref for c in concats if c}) == 1
    return "".join(s for s, _ in decoded)


# --- encoding choice and counting ----------------------------------------------------------------


def test_empty_text_is_one_gsm_part() -> None:
    assert plan_text("") == TextPlan(GSM7, 0, 0, 1)
    assert encode_parts("", 1) == (0, [b""], False)


@pytest.mark.parametrize(
    ("text", "plan"),
    [
        (CN * 70, TextPlan(UCS2, 8, 70, 1)),
        (CN * 71, TextPlan(UCS2, 8, 71, 2)),
        (CN * 134, TextPlan(UCS2, 8, 134, 2)),
        (CN * 135, TextPlan(UCS2, 8, 135, 3)),
        ("a" * 160, TextPlan(GSM7, 0, 160, 1)),
        ("a" * 161, TextPlan(GSM7, 0, 161, 2)),
        ("a" * 153 * 2, TextPlan(GSM7, 0, 306, 2)),
        ("a" * (153 * 2 + 1), TextPlan(GSM7, 0, 307, 3)),
        ("€" * 80, TextPlan(GSM7, 0, 160, 1)),
        ("€" * 81, TextPlan(GSM7, 0, 162, 2)),
        ("a" * 159 + "€", TextPlan(GSM7, 0, 161, 2)),
        (EMOJI * 35, TextPlan(UCS2, 8, 70, 1)),
        (EMOJI * 36, TextPlan(UCS2, 8, 72, 2)),
        ("a" * 69 + EMOJI, TextPlan(UCS2, 8, 71, 2)),
    ],
)
def test_plan(text: str, plan: TextPlan) -> None:
    assert plan_text(text) == plan
    _dc, payloads, _udhi = encode_parts(text, 1)
    assert len(payloads) == plan.parts


def test_extension_chars_count_double() -> None:
    for ch in "^{}\\[~]|€\f":
        assert plan_text("a" + ch) == TextPlan(GSM7, 0, 3, 1), ch
        assert gsm7_encode(ch)[0] == 0x1B


def test_gsm_basic_specials_count_single() -> None:
    text = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà"
    assert plan_text(text) == TextPlan(GSM7, 0, len(text), 1)


@pytest.mark.parametrize("ch", ["`", "ç", "\x1b", "\t", "中", "¢", "ÿ"])
def test_non_gsm_char_forces_ucs2(ch: str) -> None:
    plan = plan_text("hello " + ch)
    assert plan.encoding == UCS2
    assert plan.data_coding == 8
    with pytest.raises(ValueError):
        gsm7_encode(ch)


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValueError):
        plan_text("a\ud800b")


# --- never split pairs ---------------------------------------------------------------------------


def test_escape_at_septet_153_moves_to_next_part() -> None:
    text = "a" * 152 + "€" + "a" * 10
    parts = bodies(text)
    assert [len(p) for p in parts] == [152, 12]
    assert parts[1][:2] == b"\x1b\x65"
    assert 0x1B not in parts[0]


def test_escape_pair_that_cannot_split_costs_a_part() -> None:
    # 306 septets would fit 2 x 153, but the escape pair straddles the boundary.
    text = "a" * 152 + "€" + "a" * 152
    assert plan_text(text) == TextPlan(GSM7, 0, 306, 3)
    assert [len(p) for p in bodies(text)] == [152, 153, 1]
    assert [len(p) for p in bodies("a" * 151 + "€" + "a" * 153)] == [153, 153]


def test_surrogate_pair_never_split() -> None:
    text = CN * 66 + EMOJI + CN * 66  # 134 units, but the emoji straddles unit 67
    assert plan_text(text) == TextPlan(UCS2, 8, 134, 3)
    parts = bodies(text)
    assert [len(p) // 2 for p in parts] == [66, 67, 1]
    assert parts[1][:2] == EMOJI.encode("utf-16-be")[:2]
    for p in parts:
        p.decode("utf-16-be")  # each part is valid UTF-16 on its own


def test_emoji_parts_hold_66_units() -> None:
    assert [len(p) // 2 for p in bodies(EMOJI * 40)] == [66, 14]


# --- signature and limits ------------------------------------------------------------------------


def test_signature_counts_toward_length() -> None:
    assert with_signature("验证码123456", "企信") == "【企信】验证码123456"
    assert plan_text(with_signature(CN * 66, "企信")).parts == 1  # 70 units
    assert plan_text(with_signature(CN * 66, "企信通")).parts == 2  # 71 units


def test_signature_idempotent() -> None:
    once = with_signature("您的验证码是1234", "企信")
    assert with_signature(once, "企信") == once
    assert with_signature(once, "【企信】") == once
    assert with_signature("【别家】内容", "企信") == "【企信】【别家】内容"
    assert with_signature("内容", "") == "内容"


def test_check_length() -> None:
    check_length(plan_text(CN * 134), 2)
    with pytest.raises(TextTooLong) as exc:
        check_length(plan_text(CN * 135), 2)
    assert exc.value.parts == 3
    assert exc.value.max_parts == 2
    assert isinstance(exc.value, ValueError)
    with pytest.raises(ValueError):
        check_length(plan_text("a"), 0)


# --- UDH byte vectors ----------------------------------------------------------------------------


def test_single_part_has_no_udh() -> None:
    assert encode_parts("hello", 1) == (0, [b"hello"], False)
    assert encode_parts("你好", 300) == (8, [b"\x4f\x60\x59\x7d"], False)
    assert encode_parts("a@b", 1) == (0, [b"a\x00b"], False)


def test_udh_8bit_reference_gsm() -> None:
    dc, payloads, udhi = encode_parts("a" * 161, 0x2A)
    assert (dc, udhi) == (0, True)
    assert payloads == [
        bytes([0x05, 0x00, 0x03, 0x2A, 0x02, 0x01]) + b"a" * 153,
        bytes([0x05, 0x00, 0x03, 0x2A, 0x02, 0x02]) + b"a" * 8,
    ]


def test_udh_8bit_reference_ucs2() -> None:
    dc, payloads, udhi = encode_parts(CN * 71, 255)
    assert (dc, udhi) == (8, True)
    assert payloads == [
        bytes([0x05, 0x00, 0x03, 0xFF, 0x02, 0x01]) + b"\x4e\x2d" * 67,
        bytes([0x05, 0x00, 0x03, 0xFF, 0x02, 0x02]) + b"\x4e\x2d" * 4,
    ]


def test_udh_16bit_reference() -> None:
    dc, payloads, udhi = encode_parts("a" * 161, 0x1234)
    assert (dc, udhi) == (0, True)
    # The 16-bit IE header is 7 octets = 8 septets, so a part holds 152 septets.
    assert payloads == [
        bytes([0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01]) + b"a" * 152,
        bytes([0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x02]) + b"a" * 9,
    ]
    dc, payloads, udhi = encode_parts(CN * 71, 256)
    assert (dc, udhi) == (8, True)
    assert payloads == [
        bytes([0x06, 0x08, 0x04, 0x01, 0x00, 0x02, 0x01]) + b"\x4e\x2d" * 66,
        bytes([0x06, 0x08, 0x04, 0x01, 0x00, 0x02, 0x02]) + b"\x4e\x2d" * 5,
    ]


def test_bad_reference() -> None:
    for ref in (-1, 65536):
        with pytest.raises(ValueError):
            encode_parts("a" * 200, ref)


def test_decode_payload_vectors() -> None:
    udh8 = bytes([0x05, 0x00, 0x03, 0x2A, 0x03, 0x02])
    assert decode_payload(0, udh8 + b"abc\x1b\x65", True) == ("abc€", Concat(0x2A, 3, 2))
    udh16 = bytes([0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01])
    assert decode_payload(8, udh16 + "中文".encode("utf-16-be"), True) == ("中文", Concat(0x1234, 2, 1))
    # A UDH with other IEs only (here a port-addressing IE) has no concat info.
    other = bytes([0x06, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0])
    assert decode_payload(3, other + b"caf\xe9", True) == ("café", None)
    assert decode_payload(1, b"plain", False) == ("plain", None)
    assert decode_payload(15, "你好".encode("gbk"), False) == ("你好", None)
    assert decode_payload(0xF1, b"hi", False) == ("hi", None)
    for dc, payload, udhi in [
        (8, b"\x00", False),  # odd length
        (0, b"\x80", False),  # not a septet
        (0, b"\x06\x00\x03\x01", True),  # UDH longer than payload
        (0, b"\x02\x00\x03", True),  # IE overruns header
        (0, b"", True),
        (4, b"binary", False),
    ]:
        with pytest.raises(ValueError):
            decode_payload(dc, payload, udhi)


# --- GSM-7 codec and packing ---------------------------------------------------------------------


def test_pack_known_vector() -> None:
    septets = gsm7_encode("hellohello")
    assert septets == b"hellohello"
    packed = pack_septets(septets)
    assert packed == bytes.fromhex("e8329bfd4697d9ec37")
    assert unpack_septets(packed, 10) == septets


def test_pack_edge_cases() -> None:
    assert pack_septets(b"") == b""
    assert unpack_septets(b"", 0) == b""
    # 8 septets pack into exactly 7 octets.
    assert len(pack_septets(b"abcdefgh")) == 7
    assert unpack_septets(pack_septets(b"abcdefgh"), 8) == b"abcdefgh"
    with pytest.raises(ValueError):
        pack_septets(b"\x80")
    with pytest.raises(ValueError):
        unpack_septets(b"\x01", 2)


def test_gsm7_decode_escape_quirks() -> None:
    assert gsm7_decode(b"\x1b\x65\x1b\x14") == "€^"
    assert gsm7_decode(b"a\x1b\x1bb") == "a b"  # escape to a further table: shown as space
    assert gsm7_decode(b"a\x1b") == "a "  # trailing escape
    assert gsm7_decode(b"\x1b\x41") == "A"  # unknown extension: the basic character
    assert gsm7_decode(b"\x00\x02\x11") == "@$_"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 127), max_size=400).map(bytes))
def test_pack_roundtrip(septets: bytes) -> None:
    packed = pack_septets(septets)
    assert len(packed) == (len(septets) * 7 + 7) // 8
    assert unpack_septets(packed, len(septets)) == septets


# --- round trips ---------------------------------------------------------------------------------

gsm_text = st.text(alphabet=sorted(GSM7_CHARS), max_size=700)
any_text = st.text(max_size=400)
refs = st.one_of(st.integers(0, 255), st.integers(256, 65535))


def _check_roundtrip(text: str, ref: int) -> None:
    dc, payloads, udhi = encode_parts(text, ref)
    plan = plan_text(text)
    assert dc == plan.data_coding
    if ref < 256:
        assert len(payloads) == plan.parts
    else:
        assert len(payloads) >= plan.parts
    assert udhi == (len(payloads) > 1)
    for p in payloads:
        if dc == 0:
            udh_septets = ((1 + p[0]) * 8 + 6) // 7 if udhi else 0
            body = len(p) - (1 + p[0] if udhi else 0)
            assert udh_septets + body <= 160
        else:
            assert len(p) <= 140
    assert reassemble(dc, payloads, udhi) == text


@settings(max_examples=250, deadline=None)
@given(gsm_text, refs)
def test_roundtrip_gsm_alphabet(text: str, ref: int) -> None:
    assert plan_text(text).encoding == GSM7
    _check_roundtrip(text, ref)


@settings(max_examples=250, deadline=None)
@given(any_text, refs)
def test_roundtrip_any_unicode(text: str, ref: int) -> None:
    _check_roundtrip(text, ref)


@settings(max_examples=250, deadline=None)
@given(st.text(alphabet="a€中😀", max_size=300), st.integers(0, 255))
def test_roundtrip_pairs_at_boundaries(text: str, ref: int) -> None:
    plan = plan_text(text)
    expected_units = len(text.encode("utf-16-be")) // 2 if plan.encoding == UCS2 else len(gsm7_encode(text))
    assert plan.units == expected_units
    _check_roundtrip(text, ref)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0, 1, 2, 3, 4, 8, 15, 0xF0, 0xF5, 255]), st.binary(max_size=200), st.booleans())
def test_decode_payload_never_crashes(dc: int, payload: bytes, udhi: bool) -> None:
    try:
        text, concat = decode_payload(dc, payload, udhi)
    except ValueError:
        return
    assert isinstance(text, str)
    assert concat is None or isinstance(concat, Concat)
