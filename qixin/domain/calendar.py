"""Calendar rules in Asia/Shanghai over ms-UTC instants: local dates, months, statement periods and
working days (the statement dispute window). Pure: holidays are passed in, the clock is an argument."""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from qixin.errors import QxError

SHANGHAI = ZoneInfo("Asia/Shanghai")
DISPUTE_WORKING_DAYS = 3


def local(ms: int) -> datetime:
    """An instant (ms UTC) as an aware datetime in Asia/Shanghai."""
    return datetime.fromtimestamp(ms / 1000, SHANGHAI)


def local_ms(year: int, month: int = 1, day: int = 1) -> int:
    """00:00 of a date in Asia/Shanghai, as ms UTC."""
    return int(datetime(year, month, day, tzinfo=SHANGHAI).timestamp() * 1000)


def add_months(ms: int, months: int) -> int:
    """The same local time ``months`` later in Asia/Shanghai (31 January + 1 month = 28/29 February)."""
    d = local(ms)
    m = d.month - 1 + months
    year, month = d.year + m // 12, m % 12 + 1
    day = min(d.day, _calendar.monthrange(year, month)[1])
    return int(d.replace(year=year, month=month, day=day).timestamp() * 1000)


def period_bounds(period: str) -> tuple[int, int]:
    """A statement period "YYYY-MM" as [1st 00:00, next 1st 00:00) in Asia/Shanghai, ms UTC."""
    try:
        y, m = (int(x) for x in period.split("-"))
        if not (2000 <= y <= 9999 and 1 <= m <= 12 and len(period) == 7):
            raise ValueError(period)
    except ValueError as e:
        raise QxError("INVALID_REQUEST", "账期格式应为 YYYY-MM") from e
    return local_ms(y, m), local_ms(y + m // 12, m % 12 + 1)


def period_of(ms: int) -> str:
    return local(ms).strftime("%Y-%m")


def previous_period(ms: int) -> str:
    d = local(ms)
    y, m = (d.year, d.month - 1) if d.month > 1 else (d.year - 1, 12)
    return f"{y:04d}-{m:02d}"


def is_working_day(d: date, holidays: Iterable[str] = ()) -> bool:
    """Monday to Friday and not a configured holiday (ISO dates)."""
    return d.weekday() < 5 and d.isoformat() not in set(holidays)


def dispute_deadline(issued_at: int, holidays: Iterable[str] = (), days: int = DISPUTE_WORKING_DAYS) -> int:
    """End (00:00 of the following day, Asia/Shanghai) of the ``days``-th working day after ``issued_at``."""
    hol = set(holidays)
    d = local(issued_at).date()
    n = 0
    while n < days:
        d += timedelta(days=1)
        if is_working_day(d, hol):
            n += 1
    d += timedelta(days=1)
    return local_ms(d.year, d.month, d.day)
