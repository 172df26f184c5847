"""Template syntax, typed variables, rendering errors, review rules, signature names."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qixin.domain.compliance import (
    ContentChecker,
    TemplateError,
    VarSpec,
    default_lexicon,
    parse_template,
    render,
    review_template,
    validate_signature_name,
)

VERIFY = "您的验证码是${code}，${minutes}分钟内有效，请勿泄露。"
VERIFY_TYPES = {"code": "code", "minutes": "number"}


def codes(violations: list) -> list[str]:
    return [v.code for v in violations]


def test_parse_template() -> None:
    variables = parse_template("尊敬的${name}，您的订单${order}已发货，${name}请查收")
    assert [v.name for v in variables] == ["name", "order", "name"]
    assert parse_template("价格$5，{name} 不是变量") == []
    for bad in ("您好${", "您好${}", "您好${1abc}", "您好${na me}"):
        with pytest.raises(TemplateError) as info:
            parse_template(bad)
        assert info.value.code == "TEMPLATE_SYNTAX"


def test_render_ok() -> None:
    assert render(VERIFY, VERIFY_TYPES, {"code": "A1b2", "minutes": 5}) == "您的验证码是A1b2，5分钟内有效，请勿泄露。"
    assert render("无变量", {}, {}) == "无变量"
    # values are not re-expanded
    assert render("${t}", {"t": "text"}, {"t": "${t}"}) == "${t}"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"code": "123456"}, "TEMPLATE_PARAM_MISSING"),
        ({"code": "123", "minutes": 5}, "TEMPLATE_PARAM_INVALID"),
        ({"code": "123456789", "minutes": 5}, "TEMPLATE_PARAM_INVALID"),
        ({"code": "12 34", "minutes": 5}, "TEMPLATE_PARAM_INVALID"),
        ({"code": "123456", "minutes": "五"}, "TEMPLATE_PARAM_INVALID"),
        ({"code": "123456", "minutes": True}, "TEMPLATE_PARAM_INVALID"),
        ({"code": "123456", "minutes": 5, "extra": 1}, "TEMPLATE_PARAM_UNKNOWN"),
    ],
)
def test_render_errors(params: dict, code: str) -> None:
    with pytest.raises(TemplateError) as info:
        render(VERIFY, VERIFY_TYPES, params)
    assert info.value.code == code
    assert info.value.message  # Chinese message for the customer


def test_render_undeclared_and_bad_type() -> None:
    with pytest.raises(TemplateError) as info:
        render("您好${who}", {}, {"who": "张三"})
    assert info.value.code == "TEMPLATE_VAR_UNDECLARED"
    with pytest.raises(TemplateError) as info:
        render("您好${who}", {"who": "person"}, {"who": "张三"})
    assert info.value.code == "TEMPLATE_VAR_TYPE_INVALID"


@pytest.mark.parametrize(
    ("spec", "good", "bad"),
    [
        ("code", ["1234", "ab12CD34"], ["123", "123456789", "12-34"]),
        ("number", ["0", "12345678901234567890"], ["1.5", "-1", "123456789012345678901"]),
        ("amount", ["12", "12.5", "-3.125", Decimal("9.99"), 7], ["1.2345", "1,000", "12元"]),
        (
            "date",
            ["2024-05-01", "2024/5/1", "20240229", "2024年5月1日", "5月1日", "2月29日"],
            ["2023-02-29", "13月1日"],
        ),
        ("time", ["08:30", "8:30:15", "8点", "8点30分", "20时5分"], ["24:00", "8:60", "八点"]),
        (
            "name",
            ["张三", "Li Lei", "王·小明", "ACME商城"],
            ["【官方】", "一二三四五六七八九十一二三四五六", " "],
        ),
        ("text", ["任意文本123", "x" * 20], ["x" * 21, "含【签名】", "换行\n文本"]),
        ("text:30", ["x" * 30], ["x" * 31]),
        ("phone", ["400-800-1234", "+8613800000000", "95555"], ["电话", "12"]),
    ],
)
def test_variable_types(spec: str, good: list, bad: list) -> None:
    for value in good:
        assert render("${v}", {"v": spec}, {"v": value}) == str(value)
    for value in bad:
        with pytest.raises(TemplateError) as info:
            render("${v}", {"v": spec}, {"v": value})
        assert info.value.code == "TEMPLATE_PARAM_INVALID", value


def test_varspec_object_and_invalid_max_length() -> None:
    assert render("${v}", {"v": VarSpec("text", 5)}, {"v": "12345"}) == "12345"
    with pytest.raises(TemplateError) as info:
        render("${v}", {"v": "code:12"}, {"v": "1234"})
    assert info.value.code == "TEMPLATE_VAR_TYPE_INVALID"


def test_review_verification() -> None:
    assert review_template("verification", VERIFY, VERIFY_TYPES) == []
    assert review_template("verification", "您的動態碼${c}", {"c": "code"}) == []  # traditional keyword
    assert codes(review_template("verification", "您的号码是${c}", {"c": "code"})) == ["TEMPLATE_CODE_KEYWORD_MISSING"]
    assert codes(review_template("verification", "验证码${a}${b}", {"a": "code", "b": "code"})) == [
        "TEMPLATE_CODE_VAR_COUNT"
    ]
    assert codes(review_template("verification", "验证码${n}", {"n": "number"})) == ["TEMPLATE_CODE_VAR_COUNT"]


def test_review_marketing_and_general_rules() -> None:
    assert review_template("marketing", "周末${shop}全场5折，回T退订", {"shop": "name"}) == []
    assert codes(review_template("marketing", "周末全场5折", {})) == ["UNSUBSCRIBE_MISSING"]
    assert codes(review_template("notification", "您好${a}", {"a": "text", "b": "text"})) == ["TEMPLATE_VAR_UNUSED"]
    assert codes(review_template("notification", "您好${a}", {})) == ["TEMPLATE_VAR_UNDECLARED"]
    assert codes(review_template("notification", "您好${a", {})) == ["TEMPLATE_SYNTAX"]
    assert codes(review_template("promo", "您好", {})) == ["TEMPLATE_CATEGORY_INVALID"]
    assert codes(review_template("notification", "好" * 501, {})) == ["TEMPLATE_TOO_LONG"]


def test_review_with_content_checker() -> None:
    checker = ContentChecker(default_lexicon())
    result = review_template("notification", "股${x}票推荐，请关注★", {"x": "text"}, checker=checker)
    assert codes(result) == ["CONTENT_FORBIDDEN", "CONTENT_SPECIAL_CHAR"]


@pytest.mark.parametrize("name", ["某某科技", "ACME", "京东618", "阿里巴巴Alibaba"])
def test_signature_name_valid(name: str) -> None:
    assert validate_signature_name(name) == []


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("某", "length"),
        ("一二三四五六七八九十一二三", "length"),
        ("【某某】", "brackets"),
        ("某 某", "space"),
        ("某某!", "characters"),
        ("某某-科技", "characters"),
        ("ＡＣＭＥ", "characters"),
    ],
)
def test_signature_name_invalid(name: str, reason: str) -> None:
    violations = validate_signature_name(name)
    assert violations and all(v.code == "SIGNATURE_NAME_INVALID" for v in violations)
    assert reason in [v.detail["reason"] for v in violations]


@settings(max_examples=200, deadline=None)
@given(st.text(), st.dictionaries(st.text(max_size=5), st.text(max_size=10), max_size=3))
def test_template_functions_only_raise_template_error(content: str, params: dict) -> None:
    try:
        render(content, {"code": "code", "t": "text"}, params)
    except TemplateError:
        pass
    assert isinstance(review_template("marketing", content, {}), list)
    assert isinstance(validate_signature_name(content), list)
