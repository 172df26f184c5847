"""Unsubscribe instruction required at the end of marketing messages.

Rule UNSUBSCRIBE_INSTRUCTION (c003 8.4, REQUIREMENTS R3) — a marketing message must *end* with an
instruction telling the recipient how to opt out, such as ``回T退订``, ``回TD退订``, ``退订回T``,
``回N退订`` or ``拒收请回复R``.  The accepted forms are configurable (``forms``); the comparison is made
on normalised text (see ``normalize.py``), so it tolerates:

- trailing whitespace and punctuation of either width (``回T退订。``, ``回T退订! ``);
- case and width of the letters (``回t退订``, ``回Ｔ退订``), spaces inside (``回 T 退订``), traditional
  characters (``回T退訂``);
- a signature placed at the end of the message (``…回T退订【某某商城】``), since carriers accept the
  signature at either end.

An instruction in the middle of the text (``回T退订，详情见…``) does not count.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Final

from qixin.domain.compliance.model import UNSUBSCRIBE_MISSING, Violation
from qixin.domain.compliance.normalize import normalize

__all__ = [
    "DEFAULT_FORMS",
    "ends_with_form",
    "has_unsubscribe_instruction",
    "normalized_forms",
    "strip_trailing_signature",
    "unsubscribe_missing",
]

DEFAULT_FORMS: Final[tuple[str, ...]] = (
    "回T退订",
    "回TD退订",
    "回N退订",
    "回R退订",
    "回复T退订",
    "回复TD退订",
    "回复N退订",
    "回复R退订",
    "退订回T",
    "退订回TD",
    "退订回N",
    "退订回R",
    "退订请回复T",
    "退订请回复TD",
    "退订请回复N",
    "退订请回复R",
    "拒收请回复R",
    "拒收回R",
    "回R拒收",
    "回复R拒收",
)

_MAX_SIGNATURE_CHARS: Final = 20


@lru_cache(maxsize=64)
def normalized_forms(forms: tuple[str, ...]) -> tuple[str, ...]:
    """The normalised, non-empty spellings of ``forms`` (cached per tuple of forms)."""
    return tuple(dict.fromkeys(key for key in (normalize(form) for form in forms) if key))


def strip_trailing_signature(text: str) -> str:
    """``text`` without a trailing ``【signature】`` (and the whitespace around it), if any."""
    stripped = text.rstrip()
    if not stripped.endswith("】"):
        return text
    start = stripped.rfind("【")
    if start < 0 or len(stripped) - start - 2 > _MAX_SIGNATURE_CHARS:
        return text
    return stripped[:start]


def ends_with_form(normalized: str, forms_normalized: tuple[str, ...]) -> bool:
    """True when the normalised text ends with one of the normalised forms."""
    return bool(forms_normalized) and normalized.endswith(forms_normalized)


def has_unsubscribe_instruction(text: str, forms: Iterable[str] = DEFAULT_FORMS) -> bool:
    """True when ``text`` ends with one of ``forms`` (see the module docstring for tolerances)."""
    keys = normalized_forms(tuple(forms))
    return ends_with_form(normalize(strip_trailing_signature(text)), keys)


def unsubscribe_missing(forms: Iterable[str] = DEFAULT_FORMS) -> Violation:
    """The UNSUBSCRIBE_MISSING violation, quoting the first accepted forms as examples."""
    examples = list(dict.fromkeys(forms))[:3] or list(DEFAULT_FORMS[:3])
    quoted = [f"“{form}”" for form in examples]
    text = quoted[0] if len(quoted) == 1 else "、".join(quoted[:-1]) + "或" + quoted[-1]
    return Violation(
        UNSUBSCRIBE_MISSING,
        f"营销短信须在末尾注明退订方式，如{text}",
        {"forms": list(forms)},
    )
