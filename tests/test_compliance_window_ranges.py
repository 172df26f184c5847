"""Sending windows (Asia/Shanghai, UTC in and out) and the number-range detector."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from qixin.domain.compliance import (
    SendWindow,
    find_number_ranges,
    is_send_allowed,
    longest_consecutive_run,
    next_allowed_send,
)

BJ = ZoneInfo("Asia/Shanghai")


def bj(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A Beijing wall-clock time on 2024-05-<day>, as an aware UTC datetime."""
    return datetime(2024, 5, day, hour, minute, second, tzinfo=BJ).astimezone(UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (bj(10, 7, 59, 59), bj(10, 8)),
        (bj(10, 8, 0, 0), None),
        (bj(10, 21, 59, 59), None),
        (bj(10, 22, 0, 0), bj(11, 8)),
        (bj(10, 23, 30), bj(11, 8)),  # across midnight: next day 08:00
        (bj(11, 0, 10), bj(11, 8)),  # after midnight: same (Beijing) day 08:00
    ],
)
def test_general_window_boundaries(now: datetime, expected: datetime | None) -> None:
    for msg_type, kw in (("notification", {}), ("verification", {"verification_window": True})):
        result = next_allowed_send(now, msg_type, permit_24h=False, **kw)
        assert result == expected
        assert result is None or (result.tzinfo is not None and result.utcoffset() == UTC.utcoffset(None))


@pytest.mark.parametrize("now", [bj(10, 3), bj(10, 7, 59, 59), bj(10, 22), bj(10, 23, 59, 59), bj(11, 0, 10)])
def test_verification_codes_go_out_at_any_hour_by_default(now: datetime) -> None:
    # a login code held until 08:00 is useless: the window is the policy's choice, not the default
    assert next_allowed_send(now, "verification", permit_24h=False) is None
    assert is_send_allowed(now, "verification", permit_24h=False)
    assert next_allowed_send(now, "notification", permit_24h=False) is not None
    held = next_allowed_send(now, "verification", permit_24h=False, verification_window=True)
    assert held is not None and held.astimezone(BJ).hour == 8
    assert next_allowed_send(now, "verification", permit_24h=True, verification_window=True) is None


def test_midnight_deferral_crosses_utc_date() -> None:
    # 23:30 Beijing on the 10th is 15:30 UTC on the 10th; the opening is 00:00 UTC on the 11th.
    result = next_allowed_send(datetime(2024, 5, 10, 15, 30, tzinfo=UTC), "notification", False)
    assert result == datetime(2024, 5, 11, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (bj(10, 8, 30), bj(10, 9)),
        (bj(10, 9, 0), None),
        (bj(10, 19, 59, 59), None),
        (bj(10, 20, 0, 0), bj(11, 9)),
        (bj(10, 23, 0), bj(11, 9)),
    ],
)
def test_marketing_window_ignores_permit(now: datetime, expected: datetime | None) -> None:
    assert next_allowed_send(now, "marketing", permit_24h=False) == expected
    assert next_allowed_send(now, "marketing", permit_24h=True) == expected


def test_permit_24h_lifts_general_window() -> None:
    for now in (bj(10, 3), bj(10, 22), bj(10, 23, 59, 59)):
        assert next_allowed_send(now, "verification", permit_24h=True) is None
        assert next_allowed_send(now, "notification", permit_24h=True) is None
        assert not is_send_allowed(now, "notification", permit_24h=False)
        assert not is_send_allowed(now, "verification", permit_24h=False, verification_window=True)


def test_naive_datetime_is_utc_and_unknown_type_raises() -> None:
    assert next_allowed_send(datetime(2024, 5, 10, 15, 30), "notification", False) == datetime(
        2024, 5, 11, 0, 0, tzinfo=UTC
    )
    with pytest.raises(ValueError):
        next_allowed_send(bj(10, 12), "promo", False)


def test_custom_window_wrapping_midnight() -> None:
    night = SendWindow(time(20), time(2))
    assert next_allowed_send(bj(10, 23), "notification", False, general=night) is None
    assert next_allowed_send(bj(11, 1, 59), "notification", False, general=night) is None
    assert next_allowed_send(bj(11, 2), "notification", False, general=night) == bj(11, 20)


# --- number ranges --------------------------------------------------------------------------------


def run(start: int, length: int) -> list[str]:
    return [str(start + i) for i in range(length)]


def test_run_of_20_allowed_21_refused() -> None:
    assert find_number_ranges(run(13800000000, 20)) == []
    assert find_number_ranges(run(13800000000, 21)) == [("13800000000", "13800000020", 21)]
    assert find_number_ranges(run(13800000000, 21), max_run=21) == []


def test_unsorted_input_and_duplicates() -> None:
    numbers = run(13900000100, 21) * 2 + ["13500000000", "not-a-number", "13700000000"]
    random.Random(7).shuffle(numbers)
    assert find_number_ranges(numbers) == [("13900000100", "13900000120", 21)]
    length, members = longest_consecutive_run(numbers)
    assert length == 21 and members == run(13900000100, 21)
    # duplicates do not lengthen a run
    assert find_number_ranges(run(13800000000, 20) * 3) == []


def test_several_runs_and_longest() -> None:
    numbers = run(13800000000, 25) + run(13800000100, 30) + run(15000000000, 5)
    assert find_number_ranges(numbers) == [
        ("13800000000", "13800000024", 25),
        ("13800000100", "13800000129", 30),
    ]
    assert longest_consecutive_run(numbers)[0] == 30


def test_empty_and_single() -> None:
    assert longest_consecutive_run([]) == (0, [])
    assert longest_consecutive_run(["13800000000"]) == (1, ["13800000000"])
    assert find_number_ranges([]) == []


def test_large_random_batch() -> None:
    rng = random.Random(1)
    numbers = [str(13000000000 + rng.randrange(10**9)) for _ in range(100_000)]
    assert find_number_ranges(numbers + run(18600000000, 21))[-1] == ("18600000000", "18600000020", 21)
