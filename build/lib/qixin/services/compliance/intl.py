"""International numbers (rule DOMESTIC_ONLY): recognised so they can be refused with their own code.

Mainland mobiles are parsed by ``qixin.domain.numbers``; what it calls invalid may still be a valid
international number written in E.164 with ``+`` or ``00``. Such numbers are kept as ``+<digits>``
(carrier ``intl``) and refused with INTERNATIONAL_NOT_ALLOWED unless the account is enabled for
international messages.
"""

from __future__ import annotations


def international_number(raw: str) -> str | None:
    """``+<country><number>`` for an international (non-mainland) E.164 number written with + or 00.

    Mainland numbers (+86) are not international; anything that is not 8–15 digits after the prefix
    is not a number at all (the caller reports NUMBER_INVALID)."""
    text = "".join(raw.split()).replace("-", "")
    if text.startswith("+"):
        digits = text[1:]
    elif text.startswith("00"):
        digits = text[2:]
    else:
        return None
    if not digits.isdigit() or not digits.isascii() or not 8 <= len(digits) <= 15 or digits[0] == "0":
        return None
    if digits.startswith("86"):
        return None
    return "+" + digits
