"""Tests for qixin.domain.numbers: normalisation, prefix table, masking, batch parsing."""

from __future__ import annotations

import random
import re

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import carrier as pn_carrier
from phonenumbers import geocoder as pn_geocoder

from qixin.domain.numbers import (
    CARRIERS,
    PROVINCES,
    NumberInfo,
    ParsedNumbers,
    build_prefix_table,
    mask,
    normalize_cn_mobile,
    parse_numbers,
    prefix_table,
)
from qixin.domain.numbers import _data_text as shipped_table_text

MOBILE = re.compile(r"1[3-9][0-9]{9}")


# --- normalisation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "+8613800138000",
        "8613800138000",
        "008613800138000",
        "+86 138 0013 8000",
        "+86-138-0013-8000",
        "138 0013 8000",
        "0086 13800138000",
        "  13800138000\r\n",
        "\t138\u30000013\u30008000",
        "１３８００１３８０００",  # full-width digits
        "＋８６１３８００１３８０００",
    ],
)
def test_normalize_accepts_prefix_forms(raw: str) -> None:
    assert normalize_cn_mobile(raw) == "13800138000"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "1380013800",  # 10 digits
        "138001380001",  # 12 digits
        "1380013800a",
        "abcdefghijk",
        "01012345678",  # Beijing landline, 11 digits
        "010-12345678",
        "02112345678",
        "12345678901",  # second digit 2
        "10086",
        "+8513800138000",
        "861380013800",  # 86 + 10 digits
        "+86+8613800138000",
        "86 86 13800138000",
        "0013800138000",
        "+1 138 0013 8000",
        "13800138000x",
        "1380013800０a",
        "١٣٨٠٠١٣٨٠٠٠",  # Arabic-Indic digits are not accepted
    ],
)
def test_normalize_rejects(raw: str) -> None:
    assert normalize_cn_mobile(raw) is None


@settings(max_examples=200, deadline=None)
@given(st.from_regex(MOBILE, fullmatch=True), st.sampled_from(["", "+86", "86", "0086", "+86 ", "0086-"]))
def test_normalize_roundtrip(number: str, prefix: str) -> None:
    assert normalize_cn_mobile(prefix + number) == number
    spaced = f"{number[:3]} {number[3:7]}-{number[7:]}"
    assert normalize_cn_mobile(prefix + spaced) == number


# --- prefix table ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "carrier"),
    [
        ("13800138000", "cmcc"),
        ("13912345678", "cmcc"),
        ("13401234567", "cmcc"),
        ("15012345678", "cmcc"),
        ("18612345678", "cucc"),
        ("13012345678", "cucc"),
        ("18912345678", "ctcc"),
        ("13312345678", "ctcc"),
        ("19912345678", "ctcc"),
        ("19212345678", "cbn"),
        ("17001234567", "ctcc"),  # 1700: virtual operators on China Telecom
        ("17031234567", "cmcc"),
        ("17041234567", "cucc"),
        ("17112345678", "cucc"),
        ("16712345678", "cucc"),
        ("16212345678", "ctcc"),  # not in phonenumbers: supplement
        ("16512345678", "cmcc"),
        ("13491234567", "ctcc"),
        ("14012345678", "unknown"),
    ],
)
def test_known_carriers(number: str, carrier: str) -> None:
    info = prefix_table().lookup(number)
    assert info.carrier == carrier
    assert info.number == number
    assert prefix_table().carrier_of(number) == carrier


def test_lookup_province() -> None:
    table = prefix_table()
    assert table.lookup("13800138000") == NumberInfo("13800138000", "cmcc", "北京")
    assert table.lookup("13300000000").province == "广西"
    assert table.lookup("13000000000").province == "山东"


def test_lookup_other_forms() -> None:
    table = prefix_table()
    assert table.lookup("+86 138 0013 8000") == NumberInfo("13800138000", "cmcc", "北京")
    assert table.lookup("+447911123456") == NumberInfo("+447911123456", "intl", "")
    assert table.lookup("0044 7911 123456").carrier == "intl"
    assert table.carrier_of("+447911123456") == "intl"
    assert table.carrier_of("+8618612345678") == "cucc"
    assert table.lookup("010-12345678") == NumberInfo("010-12345678", "unknown", "")
    assert table.lookup("") == NumberInfo("", "unknown", "")
    assert table.lookup("19212345678").province == ""


def test_prefix_table_is_singleton() -> None:
    assert prefix_table() is prefix_table()


def test_carrier_codes() -> None:
    assert set(CARRIERS) == {"cmcc", "cucc", "ctcc", "cbn", "intl", "unknown"}
    assert PROVINCES[0] == ""
    assert len(PROVINCES) == 35


def _province_from_description(description: str) -> str:
    for name in PROVINCES[1:]:
        if description.startswith(name):
            return name
    return ""


def test_sampled_numbers_agree_with_phonenumbers() -> None:
    rng = random.Random(20240601)
    table = prefix_table()
    zh_to_code = {name: code for code, name in CARRIERS.items()}
    checked = provinces_seen = 0
    for _ in range(600):
        number = f"1{rng.randint(3, 9)}{rng.randrange(10**9):09d}"
        parsed = phonenumbers.parse("+86" + number)
        if not phonenumbers.is_valid_number(parsed):
            continue
        info = table.lookup(number)
        expected_province = _province_from_description(pn_geocoder.description_for_number(parsed, "zh"))
        assert info.province == expected_province, number
        provinces_seen += bool(expected_province)
        name = pn_carrier.name_for_number(parsed, "zh")
        if name:
            assert info.carrier == zh_to_code[name], number
        checked += 1
    assert checked > 300
    assert provinces_seen > 100


def test_shipped_table_equals_fresh_build() -> None:
    def data_lines(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("#")]

    assert data_lines(shipped_table_text()) == data_lines(build_prefix_table()), (
        "qixin/domain/data/cn_mobile_prefixes.txt is stale: run python -m qixin.domain.numbers"
    )


# --- masking --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("13800138000", "138****8000"),
        ("+8613800138000", "+86*******8000"),
        ("447911123456", "447*****3456"),
        ("1234567890", "12******90"),
        ("12345678", "12****78"),
        ("1234567", "1*****7"),
        ("10086", "1***6"),
        ("1234", "1**4"),
        ("123", "***"),
        ("1", "*"),
        ("", ""),
    ],
)
def test_mask(number: str, masked: str) -> None:
    assert mask(number) == masked


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789+", min_size=1, max_size=20))
def test_mask_never_reveals_short_numbers(number: str) -> None:
    masked = mask(number)
    assert len(masked) == len(number)
    stars = masked.count("*")
    if len(number) >= 11:
        assert stars == len(number) - 7
    else:
        assert stars >= (len(number) + 1) // 2
    assert masked != number


# --- batch parsing --------------------------------------------------------------------------------


def test_parse_numbers_dedupes_in_order() -> None:
    result = parse_numbers(
        [
            "13900000001",
            "+86 138 0013 8000",
            "hello",
            "13900000001",
            "",
            "8613800138000",
            "18612345678",
            "010-12345678",
            "  ",
            "13900000001\n",
            "hello",
        ]
    )
    assert result == ParsedNumbers(
        valid=["13900000001", "13800138000", "18612345678"],
        invalid=["hello", "010-12345678", "hello"],
        duplicates=["13900000001", "8613800138000", "13900000001"],  # as written, stripped
    )


def test_parse_numbers_accepts_generators() -> None:
    result = parse_numbers(f"1380013{i:04d}" for i in range(100))
    assert len(result.valid) == 100
    assert not result.invalid
    assert not result.duplicates


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=20), st.from_regex(MOBILE, fullmatch=True)), max_size=30))
def test_parse_numbers_never_raises(raw: list[str]) -> None:
    result = parse_numbers(raw)
    assert all(MOBILE.fullmatch(n) for n in result.valid)
    assert len(set(result.valid)) == len(result.valid)
    assert {normalize_cn_mobile(d) for d in result.duplicates} <= set(result.valid)
    non_blank = [r for r in raw if r.strip()]
    assert len(result.valid) + len(result.invalid) + len(result.duplicates) == len(non_blank)
    for r in raw:
        normalize_cn_mobile(r)
        prefix_table().lookup(r)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.from_regex(MOBILE, fullmatch=True), st.text(max_size=16)))
def test_lookup_tuple_agrees_with_lookup(number: str) -> None:
    table = prefix_table()
    info = table.lookup(number)
    assert table.lookup_tuple(number) == (info.number, info.carrier, info.province)
