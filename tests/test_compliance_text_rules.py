"""Special characters, unsubscribe instruction, links."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qixin.domain.compliance import (
    check_links,
    domain_of,
    extract_links,
    forbidden_characters,
    has_unsubscribe_instruction,
)

# --- special characters ---------------------------------------------------------------------------


@pytest.mark.parametrize("char", [*"¥★☆&☞√※♥❤●◆■▲→←", "😀", "\ue000", "\x07", "￥", "＆"])
def test_contract_special_characters_are_refused(char: str) -> None:
    assert forbidden_characters(f"您好{char}欢迎") == [char]


def test_emoticon_is_a_sequence() -> None:
    assert forbidden_characters("谢谢惠顾^_^") == ["^_^"]
    assert forbidden_characters("2^10=1024") == []


def test_ordinary_text_and_punctuation_pass() -> None:
    text = "【某某】您好！订单（No.123）金额$12.5/€3，温度25℃、30°，满100-20=80元；“回T退订”…\n"
    assert forbidden_characters(text) == []


def test_distinct_in_order_of_appearance() -> None:
    assert forbidden_characters("★a☆b★^_^c&") == ["★", "☆", "^_^", "&"]


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_forbidden_characters_never_raise(text: str) -> None:
    for item in forbidden_characters(text):
        assert item in text


# --- unsubscribe ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "【某某商城】会员日全场5折。回T退订",
        "【某某商城】会员日全场5折，回TD退订",
        "【某某商城】会员日全场5折 退订回T",
        "【某某商城】会员日全场5折，拒收请回复R",
        "【某某商城】会员日全场5折，回N退订",
        "【某某商城】会员日全场5折，回T退订。",
        "【某某商城】会员日全场5折，回T退订! ",
        "【某某商城】会员日全场5折，回t退订",
        "【某某商城】会员日全场5折，回Ｔ退订～",
        "【某某商城】会员日全场5折，回 T 退订",
        "【某某商城】会员日全场5折，回T退訂",
        "会员日全场5折，回T退订【某某商城】",
        "会员日全场5折，回复TD退订。 【某某商城】 ",
    ],
)
def test_unsubscribe_forms_accepted(text: str) -> None:
    assert has_unsubscribe_instruction(text)


@pytest.mark.parametrize(
    "text",
    [
        "【某某商城】会员日全场5折",
        "【某某商城】回T退订，会员日全场5折",  # not at the end
        "【某某商城】会员日全场5折，退订",
        "",
    ],
)
def test_unsubscribe_missing(text: str) -> None:
    assert not has_unsubscribe_instruction(text)


def test_unsubscribe_configurable_forms() -> None:
    assert has_unsubscribe_instruction("周末特惠，发送0000取消", forms=["发送0000取消"])
    assert not has_unsubscribe_instruction("周末特惠，回T退订", forms=["发送0000取消"])


# --- links ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "links"),
    [
        ("访问https://m.example.cn/a?b=1领取", ["https://m.example.cn/a?b=1"]),
        ("登录www.abc.com查看", ["www.abc.com"]),
        ("点击abc.cn/xyz，立即领取", ["abc.cn/xyz"]),
        ("短链t.cn/A6xYz领券", ["t.cn/A6xYz"]),
        ("访问ｗｗｗ．ａｂｃ．ｃｏｍ", ["www.abc.com"]),
        ("访问abc点com", ["abc.com"]),
        ("打开192.168.1.1:8080/x", ["192.168.1.1:8080/x"]),
        ("见 http://1.2.3.4/a 。", ["http://1.2.3.4/a"]),
        ("邮箱service@company.com联系", []),
        ("圆周率3.14，版本v1.2，金额1234.56元，下午3点30分", []),
        ("文件report.pdf已发送", []),
    ],
)
def test_extract_links(text: str, links: list[str]) -> None:
    assert extract_links(text) == links


def test_domain_of() -> None:
    assert domain_of("https://user@M.Example.cn:8080/x") == "m.example.cn"
    assert domain_of("abc.cn/xyz") == "abc.cn"


def test_link_policies() -> None:
    text = "详见 https://m.shop.example.cn/x 或 badexample.cn/y"
    assert check_links(text, "allowed") == []
    assert check_links(text, "refused") == ["https://m.shop.example.cn/x", "badexample.cn/y"]
    assert check_links(text, "allowlist", ["Example.cn"]) == ["badexample.cn/y"]
    assert check_links(text, "allowlist", []) == ["https://m.shop.example.cn/x", "badexample.cn/y"]
    assert check_links("没有链接的内容。", "refused") == []
    with pytest.raises(ValueError):
        check_links(text, "sometimes")


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_extract_links_never_raise(text: str) -> None:
    assert isinstance(extract_links(text), list)
    assert isinstance(check_links(text, "allowlist", ["example.cn"]), list)
