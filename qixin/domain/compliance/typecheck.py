"""Type checks: does the content fit the message type it is sent as? (issue 15, pure rules)

Rule TYPE_PROMOTIONAL — a ``notification`` or ``verification`` whose text reads as marketing is, by
the account's ``promo_as`` policy:

- ``marketing`` (default): treated as marketing — unsubscribe instruction required, the marketing
  sending window, the marketing frequency limits and opt-outs;
- ``refuse``: refused with CONTENT_TYPE_MISMATCH;
- ``off``: sent as typed.

"Reads as marketing": the normalised text holds at least ``MIN_CUES`` distinct promotion cues of
:data:`MARKETING_CUES` (offers, discounts, sales calls), or one cue and the classifier's promotional
probability at the ``type_check`` threshold of ``classifier_thresholds.json``. The cues are there because
the classifier's promotional head, trained on marketing that ends with an unsubscribe instruction,
weighs that instruction most and sees little else (measured: docs/compliance.md).

Rule VERIFICATION_CODE — a ``verification`` must carry a code: 4–8 ASCII letters or digits, at least
one of them a digit, standing alone (not part of a longer run of letters and digits), as Aliyun's
rule asks beside the 验证码 / 校验码 / 动态码 wording (the wording is the existing keyword rule).
"""

from __future__ import annotations

import re
from typing import Final, Literal

PROMO_AS: Final = ("marketing", "refuse", "off")
MIN_CUES: Final = 2
# promotion cues, in normalised form (lexicon folding: simplified, half-width, lower case, no separators)
MARKETING_CUES: Final[tuple[str, ...]] = (
    "优惠", "折扣", "五折", "九折", "八折", "七折", "六折", "九五折", "低至", "特价", "特惠", "促销", "大促", "秒杀",
    "抢购", "限时", "满减", "立减", "优惠券", "领券", "红包", "新品上市", "上新", "清仓", "到店选购", "欢迎选购",
    "欢迎到店", "进店", "会员日", "双倍积分", "包邮", "买一送一", "赠品", "好礼", "福利", "狂欢",
)  # fmt: skip
_CUE_RE: Final = re.compile("|".join(sorted(map(re.escape, MARKETING_CUES), key=len, reverse=True)))
_SPEND_RE: Final = re.compile(r"满\d+减\d+")
PromoAs = Literal["marketing", "refuse", "off"]

_CODE: Final = re.compile(r"(?<![0-9A-Za-z])(?=[A-Za-z]*[0-9])[0-9A-Za-z]{4,8}(?![0-9A-Za-z])")


def has_verification_code(text: str) -> bool:
    """True when ``text`` holds a code-like token of 4–8 letters/digits with at least one digit."""
    return _CODE.search(text) is not None


def marketing_cues(normalized: str) -> tuple[str, ...]:
    """The distinct promotion cues of an already normalised text, in order of appearance."""
    found = [m.group(0) for m in _CUE_RE.finditer(normalized)] + [m.group(0) for m in _SPEND_RE.finditer(normalized)]
    return tuple(dict.fromkeys(found))


def reads_as_marketing(promotional: float, threshold: float, cues: tuple[str, ...]) -> bool:
    """Two promotion cues, or one with the classifier's promotional probability at ``threshold``: the
    classifier alone is not trusted (short texts it has never seen, such as ``您好``, score high)."""
    return len(cues) >= MIN_CUES or (bool(cues) and promotional >= threshold)


def promotional_action(msg_type: str, marketing: bool, promo_as: str) -> str | None:
    """What to do with a message that reads (or not) as marketing: ``"marketing"`` (treat it as
    marketing), ``"refuse"``, or None (it goes as typed)."""
    if msg_type == "marketing" or promo_as == "off" or not marketing:
        return None
    return "refuse" if promo_as == "refuse" else "marketing"
