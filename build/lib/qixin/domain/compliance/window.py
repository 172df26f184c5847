"""Sending windows (c003 5.2 and 8.4), evaluated in Beijing time; UTC in and out (invariant I6).

Rule SENDING_WINDOW — ``next_allowed_send(now_utc, msg_type, permit_24h)`` returns ``None`` when a
message of ``msg_type`` may be sent at ``now_utc``, otherwise the UTC instant the window next opens
(the message is then deferred, not refused):

- general window 08:00–22:00 Asia/Shanghai, start inclusive, end exclusive: 08:00:00 is inside,
  21:59:59.999 is inside, 22:00:00 is outside;
- marketing 09:00–20:00 Asia/Shanghai, always — the 24-hour permit does not extend it;
- verification and notification messages follow the account's permit: with ``permit_24h`` they may
  be sent at any time, without it they keep the general window;
- outside the window the next opening is today's start when it is still ahead (02:00 → 08:00), else
  tomorrow's start (22:30 → 08:00 next day; marketing 20:00 → 09:00 next day).

A naive ``now_utc`` is taken to be UTC.  Windows can be overridden with :class:`SendWindow` values
(``general=`` / ``marketing=``) for accounts with negotiated hours; a window may wrap past midnight
(``SendWindow(time(20), time(2))``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from qixin.domain.compliance.model import MARKETING, check_message_type

__all__ = [
    "BEIJING",
    "GENERAL_WINDOW",
    "MARKETING_WINDOW",
    "SendWindow",
    "is_send_allowed",
    "next_allowed_send",
]

BEIJING: Final = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True, slots=True)
class SendWindow:
    """Local (Beijing) opening hours ``[start, end)``; ``start == end`` means always open."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # wraps past midnight

    def next_opening(self, local_now: datetime) -> datetime:
        """The first local instant at or after ``local_now`` at which the window opens."""
        opening = datetime.combine(local_now.date(), self.start, tzinfo=local_now.tzinfo)
        if opening < local_now:
            opening = datetime.combine(local_now.date() + timedelta(days=1), self.start, tzinfo=local_now.tzinfo)
        return opening


GENERAL_WINDOW: Final = SendWindow(time(8, 0), time(22, 0))
MARKETING_WINDOW: Final = SendWindow(time(9, 0), time(20, 0))


def _window_for(msg_type: str, permit_24h: bool, general: SendWindow, marketing: SendWindow) -> SendWindow | None:
    if check_message_type(msg_type) == MARKETING:
        return marketing
    return None if permit_24h else general


def next_allowed_send(
    now_utc: datetime,
    msg_type: str,
    permit_24h: bool,
    *,
    general: SendWindow = GENERAL_WINDOW,
    marketing: SendWindow = MARKETING_WINDOW,
) -> datetime | None:
    """``None`` if sending now is allowed, else the UTC datetime at which the window opens next."""
    window = _window_for(msg_type, permit_24h, general, marketing)
    if window is None:
        return None
    if now_utc.tzinfo is None:
        now_utc = now_utc.replace(tzinfo=UTC)
    local_now = now_utc.astimezone(BEIJING)
    if window.contains(local_now.timetz().replace(tzinfo=None)):
        return None
    return window.next_opening(local_now).astimezone(UTC)


def is_send_allowed(now_utc: datetime, msg_type: str, permit_24h: bool) -> bool:
    """True when a message of ``msg_type`` may be sent at ``now_utc`` (default windows)."""
    return next_allowed_send(now_utc, msg_type, permit_24h) is None
