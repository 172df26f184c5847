"""Money as integer 厘 (0.001 yuan): exact parsing of yuan amounts and their display. Pure."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from qixin.errors import QxError


def yuan_to_li(text: str) -> int:
    """Parse a yuan amount ("0.035", "100") into 厘 exactly, refusing sub-厘 precision and negatives."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation as e:
        raise QxError("INVALID_REQUEST", f"金额格式错误：{text}") from e
    if not value.is_finite():
        raise QxError("INVALID_REQUEST", f"金额格式错误：{text}")
    li = value * 1000
    if li != li.to_integral_value() or li < 0:
        raise QxError("INVALID_REQUEST", f"金额精度最多到厘（0.001 元）且不能为负：{text}")
    if li > 10**13:  # 100 亿元: far above any real amount, far below 64-bit overflow of balances
        raise QxError("INVALID_REQUEST", f"金额过大：{text}")
    return int(li)


def li_to_yuan(li: int) -> str:
    """厘 as a yuan string with three decimals: 35 -> "0.035", -1500 -> "-1.500"."""
    sign = "-" if li < 0 else ""
    li = abs(li)
    return f"{sign}{li // 1000}.{li % 1000:03d}"
