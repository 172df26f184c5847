"""ContentChecker: the single content-check entry point and its stable codes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qixin.domain.compliance import (
    ContentChecker,
    Lexicon,
    LexiconEntry,
    default_lexicon,
)


@pytest.fixture(scope="module")
def checker() -> ContentChecker:
    return ContentChecker(default_lexicon())


def codes(violations: list) -> list[str]:
    return [v.code for v in violations]


def test_clean_messages_pass(checker: ContentChecker) -> None:
    assert checker.check_content("【美团】您的验证码为381920，5分钟内有效。", "verification") == []
    assert checker.check_content("【某某商城】会员日全场5折，详见官网。回T退订", "marketing") == []
    assert (
        checker.check_content("【某某】访问 https://m.shop.cn/x 查看订单", "notification", "allowlist", ["shop.cn"])
        == []
    )


@pytest.mark.parametrize(
    ("text", "word", "label"),
    [
        ("ｇａｍｂｌｅ 来玩", "gamble", "赌博"),
        ("股　票　推　荐", "股票推荐", "股票"),
        ("線上賭博", "赌博", "赌博"),
        ("加 微 信 领取", "加微信", "加群"),
        ("加.微.信领取", "加微信", "加群"),
        ("六\u200b合\u200d彩", "六合彩", "彩票"),
    ],
)
def test_forbidden_words_named_with_category(checker: ContentChecker, text: str, word: str, label: str) -> None:
    violations = [v for v in checker.check_content(text, "notification") if v.code == "CONTENT_FORBIDDEN"]
    assert any(v.detail["word"] == word and v.detail["category_label"] == label for v in violations)
    message = next(v.message_zh for v in violations if v.detail["word"] == word)
    assert word in message and label in message


def test_one_violation_per_distinct_word(checker: ContentChecker) -> None:
    violations = checker.check_content("赌博赌博 赌 博", "notification")
    assert codes(violations) == ["CONTENT_FORBIDDEN"]


def test_special_character_named(checker: ContentChecker) -> None:
    violations = checker.check_content("您好★欢迎^_^光临", "notification")
    assert codes(violations) == ["CONTENT_SPECIAL_CHAR", "CONTENT_SPECIAL_CHAR"]
    assert "★" in violations[0].message_zh and violations[0].detail["codepoint"] == "U+2605"
    assert "^_^" in violations[1].message_zh


def test_unsubscribe_only_for_marketing(checker: ContentChecker) -> None:
    assert codes(checker.check_content("会员日全场5折", "marketing")) == ["UNSUBSCRIBE_MISSING"]
    assert checker.check_content("会员日全场5折", "notification") == []
    assert checker.check_content("会员日全场5折，回T退订。【某某商城】", "marketing") == []
    custom = ContentChecker(default_lexicon(), unsubscribe_forms=["发送0000取消"])
    assert custom.check_content("会员日全场5折，发送0000取消", "marketing") == []
    assert codes(custom.check_content("会员日全场5折，回T退订", "marketing")) == ["UNSUBSCRIBE_MISSING"]


def test_link_policy(checker: ContentChecker) -> None:
    text = "详见 https://m.shop.cn/x 与 evil.top/y"
    assert checker.check_content(text, "notification", "allowed") == []
    refused = checker.check_content(text, "notification", "refused")
    assert codes(refused) == ["LINK_FORBIDDEN", "LINK_FORBIDDEN"]
    allowlisted = checker.check_content(text, "notification", "allowlist", ["shop.cn"])
    assert [v.detail["link"] for v in allowlisted] == ["evil.top/y"]
    assert "evil.top" in allowlisted[0].message_zh


def test_all_rules_in_one_call(checker: ContentChecker) -> None:
    violations = checker.check_content("内幕消息★ 详见 x.top/a", "marketing", "refused")
    assert sorted(set(codes(violations))) == [
        "CONTENT_FORBIDDEN",
        "CONTENT_SPECIAL_CHAR",
        "LINK_FORBIDDEN",
        "UNSUBSCRIBE_MISSING",
    ]


def test_unknown_message_type(checker: ContentChecker) -> None:
    with pytest.raises(ValueError):
        checker.check_content("hello", "promo")


def test_with_lexicon_swaps_version(checker: ContentChecker) -> None:
    newer = checker.with_lexicon(Lexicon([LexiconEntry("新词", "other")], version=2))
    assert newer.lexicon.version == 2
    assert codes(newer.check_content("出现新词", "notification")) == ["CONTENT_FORBIDDEN"]
    assert newer.check_content("赌博", "notification") == []
    assert codes(checker.check_content("赌博", "notification")) == ["CONTENT_FORBIDDEN"]


@settings(max_examples=200, deadline=None)
@given(st.text(), st.sampled_from(["verification", "notification", "marketing"]))
def test_check_content_never_raises(text: str, msg_type: str) -> None:
    checker = ContentChecker(default_lexicon())
    for violation in checker.check_content(text, msg_type, "allowlist", ["example.cn"]):
        assert violation.code and violation.message_zh
