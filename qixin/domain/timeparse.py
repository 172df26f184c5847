"""The one parser of instants given by people and programs: unix seconds (int or float) or ISO 8601,
where a time without an offset means Asia/Shanghai. Result: ms UTC. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from qixin.domain.calendar import SHANGHAI
from qixin.errors import QxError


def _instant(value: Any) -> int:
    """ms UTC of a non-empty value; ValueError/OverflowError when it is not a time."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value * 1000)
    if isinstance(value, str):
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=SHANGHAI)
        return int(dt.timestamp() * 1000)
    raise ValueError(value)


def parse_time(value: Any, code: str = "INVALID_REQUEST") -> int | None:
    """Unix seconds or ISO 8601 (naive = Asia/Shanghai) -> ms UTC; None and "" stay None.

    Anything else raises ``QxError(code)``: INVALID_REQUEST (with the value in the message) by default."""
    if value in (None, ""):
        return None
    try:
        return _instant(value)
    except (ValueError, OverflowError) as e:
        if code == "INVALID_REQUEST":
            raise QxError(code, f"时间格式错误：{value}") from e
        raise QxError(code) from e


def parse_send_at(value: Any, now: int) -> int | None:
    """A send request's ``send_at`` (SEND_AT_INVALID when malformed); None when it is due now (within 1 s)."""
    at = parse_time(value, "SEND_AT_INVALID")
    return at if at is not None and at > now + 1000 else None
