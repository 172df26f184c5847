"""Templates (typed variables, rendering, review rules) and signature names.

Rule TEMPLATE_SYNTAX — a variable is written ``${name}`` where ``name`` is an identifier of ASCII
letters, digits and ``_`` (at most 32, not starting with a digit).  Types are declared *beside* the
content, not inside it (``var_types = {"code": "code", "shop": "text:30"}``), so the content a
reviewer reads is exactly what the customer submitted.  A ``$`` not followed by ``{`` and braces
without ``$`` are ordinary text; ``${`` that does not form a valid variable is a syntax error.

Rule TEMPLATE_VARIABLE_TYPES — the value given for a variable at send time must match its type:

==========  ==========================================================================  =============
type        accepted values                                                              max length
==========  ==========================================================================  =============
code        4–8 ASCII letters or digits (verification codes)                            8
number      ASCII digits                                                                 20
amount      decimal, optional minus sign, up to 3 decimals (0.001 yuan)                  16
date        2024-05-01, 2024/5/1, 2024.05.01, 20240501, 2024年5月1日, 5月1日 (real dates)   —
time        08:30, 08:30:15, 8点, 8点30分, 8时30分                                        —
name        a person's or shop's name: letters, CJK, digits, space, ·.-                 15
text        any text without 【】 and control characters                                 20 (``text:N``)
phone       digits with optional leading + and hyphens (400-800-1234)                   20
==========  ==========================================================================  =============

A declaration is a type name, optionally with a maximum length for ``text`` and ``name``
(``"text:50"``), or a :class:`VarSpec`.  No value may contain ``【`` or ``】`` (signature spoofing).

Rule TEMPLATE_REVIEW — :func:`review_template` lists every problem a reviewer would reject for:
unknown category, syntax, content longer than 500 characters, variables without or with an unknown
type, declared variables not used; a *verification* template must contain 验证码, 校验码, 动态码 or
注册码 and exactly one ``code`` variable; a *marketing* template must end with an unsubscribe
instruction (see ``unsubscribe.py``).  Given a ``ContentChecker``, the template's fixed text is also
content-checked.

Rule SIGNATURE_NAME — :func:`validate_signature_name`: 2–12 characters, each a Chinese character, an
ASCII letter or a digit; no 【】, no spaces, no symbols.

:func:`render` raises :class:`TemplateError` with one of the stable codes TEMPLATE_SYNTAX,
TEMPLATE_VAR_UNDECLARED, TEMPLATE_VAR_TYPE_INVALID, TEMPLATE_PARAM_MISSING, TEMPLATE_PARAM_INVALID,
TEMPLATE_PARAM_UNKNOWN (a parameter the template does not use — usually a misspelt name).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from qixin.domain.compliance.model import (
    MARKETING,
    MESSAGE_TYPES,
    NOTIFICATION,
    SIGNATURE_NAME_INVALID,
    TEMPLATE_CATEGORY_INVALID,
    TEMPLATE_CODE_KEYWORD_MISSING,
    TEMPLATE_CODE_VAR_COUNT,
    TEMPLATE_PARAM_INVALID,
    TEMPLATE_PARAM_MISSING,
    TEMPLATE_PARAM_UNKNOWN,
    TEMPLATE_SYNTAX,
    TEMPLATE_TOO_LONG,
    TEMPLATE_VAR_TYPE_INVALID,
    TEMPLATE_VAR_UNDECLARED,
    TEMPLATE_VAR_UNUSED,
    VERIFICATION,
    Violation,
)
from qixin.domain.compliance.normalize import normalize
from qixin.domain.compliance.unsubscribe import (
    DEFAULT_FORMS,
    has_unsubscribe_instruction,
    unsubscribe_missing,
)

if TYPE_CHECKING:
    from qixin.domain.compliance.checker import ContentChecker

__all__ = [
    "CODE_KEYWORDS",
    "MAX_TEMPLATE_LENGTH",
    "VAR_TYPES",
    "TemplateError",
    "Var",
    "VarSpec",
    "parse_template",
    "parse_var_spec",
    "render",
    "review_template",
    "template_variables",
    "validate_param",
    "validate_signature_name",
]

CODE_KEYWORDS: Final[tuple[str, ...]] = ("验证码", "校验码", "动态码", "注册码")
MAX_TEMPLATE_LENGTH: Final = 500
MAX_TEXT_LENGTH: Final = 500

# type → (Chinese label, default max length, whether max length may be declared)
VAR_TYPES: Final[Mapping[str, tuple[str, int, bool]]] = {
    "code": ("验证码", 8, False),
    "number": ("数字", 20, False),
    "amount": ("金额", 16, False),
    "date": ("日期", 20, False),
    "time": ("时间", 10, False),
    "name": ("名称", 15, True),
    "text": ("文本", 20, True),
    "phone": ("电话号码", 20, False),
}

_TYPE_RULES_ZH: Final[Mapping[str, str]] = {
    "code": "4–8位字母或数字",
    "number": "纯数字",
    "amount": "数字金额，最多3位小数",
    "date": "有效日期，如2024-05-01或5月1日",
    "time": "有效时间，如08:30或8点30分",
    "name": "中英文、数字，不含特殊符号",
    "text": "不含【】和控制字符的文本",
    "phone": "电话号码，如400-800-1234",
}

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]{0,31})\}")
_VAR_OPEN = "${"


class TemplateError(Exception):
    """A template cannot be used or rendered; ``code`` is stable, ``message`` is Chinese."""

    def __init__(self, code: str, message: str, detail: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.detail: dict[str, Any] = dict(detail or {})

    def to_violation(self) -> Violation:
        return Violation(self.code, self.message, self.detail)


@dataclass(frozen=True, slots=True)
class Var:
    """One occurrence of ``${name}`` in a template: ``content[start:end]``."""

    name: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class VarSpec:
    """Declared type of a variable; ``max_length`` only for ``text`` and ``name``."""

    type: str
    max_length: int | None = None

    @property
    def limit(self) -> int:
        return self.max_length if self.max_length is not None else VAR_TYPES[self.type][1]


def parse_var_spec(spec: str | VarSpec) -> VarSpec:
    """``"code"``, ``"text:50"`` or a :class:`VarSpec` → :class:`VarSpec`; ``ValueError`` if invalid."""
    if isinstance(spec, VarSpec):
        result = spec
    else:
        type_name, _, length = spec.strip().partition(":")
        type_name = type_name.strip().lower()
        if length and not length.strip().isdigit():
            raise ValueError(f"invalid max length in {spec!r}")
        result = VarSpec(type_name, int(length) if length else None)
    if result.type not in VAR_TYPES:
        raise ValueError(f"unknown variable type {result.type!r}")
    if result.max_length is not None and (
        not VAR_TYPES[result.type][2] or not 1 <= result.max_length <= MAX_TEXT_LENGTH
    ):
        raise ValueError(f"max length {result.max_length} not allowed for type {result.type!r}")
    return result


def parse_template(content: str) -> list[Var]:
    """Every ``${name}`` occurrence of ``content``, in order; ``TemplateError`` on bad syntax."""
    found: list[Var] = []
    position = content.find(_VAR_OPEN)
    while position >= 0:
        match = _VAR.match(content, position)
        if match is None:
            snippet = content[position : position + 20]
            raise TemplateError(
                TEMPLATE_SYNTAX,
                f"模板变量格式错误：「{snippet}」，变量应写作 ${{name}}（字母、数字或下划线）",
                {"position": position, "snippet": snippet},
            )
        found.append(Var(match.group(1), match.start(), match.end()))
        position = content.find(_VAR_OPEN, match.end())
    return found


def template_variables(content: str) -> list[str]:
    """Distinct variable names of ``content`` in order of first use."""
    return list(dict.fromkeys(var.name for var in parse_template(content)))


# --- values ---------------------------------------------------------------------------------------

_CODE_RE: Final = re.compile(r"[A-Za-z0-9]{4,8}")
_NUMBER_RE: Final = re.compile(r"[0-9]{1,20}")
_AMOUNT_RE: Final = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]{1,3})?")
_DATE_YMD: Final = re.compile(r"([0-9]{4})(?:([-/.])([0-9]{1,2})\2([0-9]{1,2})|([0-9]{2})([0-9]{2}))")
_DATE_ZH: Final = re.compile(r"(?:([0-9]{4})年)?([0-9]{1,2})月([0-9]{1,2})[日号]")
_TIME_RE: Final = re.compile(r"([01]?[0-9]|2[0-3])(?::([0-5][0-9])(?::([0-5][0-9]))?|[点时](?:([0-5]?[0-9])分)?)")
_NAME_RE: Final = re.compile(r"[\w·.\- ]+")
_PHONE_RE: Final = re.compile(r"\+?[0-9][0-9\-]{4,19}")
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _valid_date(value: str) -> bool:
    match = _DATE_YMD.fullmatch(value)
    if match:
        year, month, day = match.group(1), match.group(3) or match.group(5), match.group(4) or match.group(6)
    else:
        match = _DATE_ZH.fullmatch(value)
        if not match:
            return False
        year, month, day = match.group(1) or "2000", match.group(2), match.group(3)  # 2000: leap year
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def _valid_value(spec: VarSpec, value: str) -> bool:
    kind = spec.type
    if not value or len(value) > spec.limit or "【" in value or "】" in value:
        return False
    if kind == "code":
        return _CODE_RE.fullmatch(value) is not None
    if kind == "number":
        return _NUMBER_RE.fullmatch(value) is not None
    if kind == "amount":
        return _AMOUNT_RE.fullmatch(value) is not None
    if kind == "date":
        return _valid_date(value)
    if kind == "time":
        return _TIME_RE.fullmatch(value) is not None
    if kind == "name":
        return _NAME_RE.fullmatch(value) is not None and not value.isspace()
    if kind == "phone":
        return _PHONE_RE.fullmatch(value) is not None
    return _CONTROL_RE.search(value) is None  # text


def _as_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and value not in (float("inf"), float("-inf")) else None
    return None


def validate_param(name: str, spec: str | VarSpec, value: object) -> str:
    """The text to substitute for ``value``; ``TemplateError(TEMPLATE_PARAM_INVALID)`` if it does not fit."""
    var_spec = parse_var_spec(spec)
    text = _as_text(value)
    if text is None or not _valid_value(var_spec, text):
        label = VAR_TYPES[var_spec.type][0]
        rule = _TYPE_RULES_ZH[var_spec.type]
        raise TemplateError(
            TEMPLATE_PARAM_INVALID,
            f"模板参数「{name}」的值不符合{label}类型的要求（{rule}，最长{var_spec.limit}个字符）",
            {"name": name, "type": var_spec.type, "max_length": var_spec.limit},
        )
    return text


def _declared(var_types: Mapping[str, str | VarSpec], name: str) -> VarSpec:
    if name not in var_types:
        raise TemplateError(TEMPLATE_VAR_UNDECLARED, f"模板变量「{name}」未声明类型", {"name": name})
    try:
        return parse_var_spec(var_types[name])
    except ValueError:
        raise TemplateError(
            TEMPLATE_VAR_TYPE_INVALID,
            f"模板变量「{name}」的类型「{var_types[name]}」无效，可选：{'、'.join(VAR_TYPES)}",
            {"name": name, "type": str(var_types[name])},
        ) from None


def render(template: str, var_types: Mapping[str, str | VarSpec], params: Mapping[str, object]) -> str:
    """Substitute validated ``params`` into ``template`` (one pass; values are never re-expanded)."""
    variables = parse_template(template)
    if not variables:
        if params:
            unknown = next(iter(params))
            raise TemplateError(TEMPLATE_PARAM_UNKNOWN, f"模板中没有参数「{unknown}」", {"name": unknown})
        return template
    names = dict.fromkeys(var.name for var in variables)
    for name in params:
        if name not in names:
            raise TemplateError(TEMPLATE_PARAM_UNKNOWN, f"模板中没有参数「{name}」", {"name": name})
    values: dict[str, str] = {}
    for name in names:
        spec = _declared(var_types, name)
        value = params.get(name)
        if value is None:
            raise TemplateError(TEMPLATE_PARAM_MISSING, f"缺少模板参数「{name}」", {"name": name})
        values[name] = validate_param(name, spec, value)
    parts: list[str] = []
    previous = 0
    for var in variables:
        parts.append(template[previous : var.start])
        parts.append(values[var.name])
        previous = var.end
    parts.append(template[previous:])
    return "".join(parts)


# --- review ---------------------------------------------------------------------------------------


def _static_text(content: str, variables: Iterable[Var]) -> str:
    parts: list[str] = []
    previous = 0
    for var in variables:
        parts.append(content[previous : var.start])
        previous = var.end
    parts.append(content[previous:])
    return "".join(parts)


def review_template(
    category: str,
    content: str,
    var_types: Mapping[str, str | VarSpec],
    *,
    checker: ContentChecker | None = None,
    unsubscribe_forms: Iterable[str] = DEFAULT_FORMS,
    max_length: int = MAX_TEMPLATE_LENGTH,
) -> list[Violation]:
    """Every review-rule violation of a template application (empty list: nothing to object to)."""
    violations: list[Violation] = []
    if category not in MESSAGE_TYPES:
        violations.append(
            Violation(
                TEMPLATE_CATEGORY_INVALID,
                "模板类型无效，可选：verification（验证码）、notification（通知）、marketing（营销）",
                {"category": category},
            )
        )
    if len(content) > max_length:
        violations.append(
            Violation(
                TEMPLATE_TOO_LONG,
                f"模板内容超过{max_length}个字符",
                {"length": len(content), "max_length": max_length},
            )
        )
    try:
        variables = parse_template(content)
    except TemplateError as error:
        violations.append(error.to_violation())
        return violations
    names = list(dict.fromkeys(var.name for var in variables))
    specs: dict[str, VarSpec] = {}
    for name in names:
        try:
            specs[name] = _declared(var_types, name)
        except TemplateError as error:
            violations.append(error.to_violation())
    for name in var_types:
        if name not in names:
            violations.append(Violation(TEMPLATE_VAR_UNUSED, f"声明的变量「{name}」未在模板中使用", {"name": name}))
    static = _static_text(content, variables)
    if category == VERIFICATION:
        normalized = normalize(static)
        if not any(normalize(keyword) in normalized for keyword in CODE_KEYWORDS):
            violations.append(
                Violation(
                    TEMPLATE_CODE_KEYWORD_MISSING,
                    "验证码模板须包含“验证码”“校验码”“动态码”或“注册码”",
                    {"keywords": list(CODE_KEYWORDS)},
                )
            )
        code_vars = [name for name, spec in specs.items() if spec.type == "code"]
        if len(code_vars) != 1:
            violations.append(
                Violation(
                    TEMPLATE_CODE_VAR_COUNT,
                    f"验证码模板须有且只有一个验证码（code）类型的变量，当前为{len(code_vars)}个",
                    {"code_variables": code_vars},
                )
            )
    forms = checker.unsubscribe_forms if checker is not None else tuple(unsubscribe_forms)
    if category == MARKETING and not has_unsubscribe_instruction(content, forms):
        violations.append(unsubscribe_missing(forms))
    if checker is not None:
        violations.extend(checker.check_content(static, NOTIFICATION))
    return violations


# --- signatures -----------------------------------------------------------------------------------

_SIGNATURE_CHAR: Final = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fffA-Za-z0-9]")


def validate_signature_name(name: str) -> list[Violation]:
    """Violations of the signature-name rule (2–12 Chinese characters, letters or digits)."""
    violations: list[Violation] = []
    if not 2 <= len(name) <= 12:
        violations.append(
            Violation(SIGNATURE_NAME_INVALID, "签名长度须为2–12个字符", {"reason": "length", "length": len(name)})
        )
    if "【" in name or "】" in name:
        violations.append(
            Violation(SIGNATURE_NAME_INVALID, "签名不能包含【】，提交时只填写括号内的名称", {"reason": "brackets"})
        )
    if any(ch.isspace() for ch in name):
        violations.append(Violation(SIGNATURE_NAME_INVALID, "签名不能包含空格", {"reason": "space"}))
    bad = [ch for ch in dict.fromkeys(name) if not ch.isspace() and ch not in "【】" and not _SIGNATURE_CHAR.match(ch)]
    if bad:
        violations.append(
            Violation(
                SIGNATURE_NAME_INVALID,
                f"签名只能包含中文、英文字母和数字，不能包含「{''.join(bad)}」",
                {"reason": "characters", "characters": bad},
            )
        )
    return violations
