"""Number-range sending detector (c001 2(2)C: "号段群发" is forbidden).

Rule NUMBER_RANGE — a batch built from runs of consecutive numbers (13800000000, 13800000001, …) is
refused when it contains a run longer than ``max_run`` (default 20): a run of exactly 20 is allowed,
21 is refused.  Consecutive means numerically consecutive after removing duplicates and sorting, so
the order of the batch and repeated numbers do not matter.  Numbers are digit strings (11-digit
mainland mobiles, but any length works); entries that are not all digits are ignored here — the
number parser reports those.

Both functions are O(n log n) (one sort of the distinct values) and return the numbers in their
original spelling; ``find_number_ranges`` answers a clean batch without any Python-level loop over it.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Final

__all__ = ["DEFAULT_MAX_RUN", "find_number_ranges", "longest_consecutive_run"]

DEFAULT_MAX_RUN: Final = 20


class _Distinct:
    """Distinct numeric values of a batch, ascending, with a way back to their spelling."""

    __slots__ = ("_spelling", "values")

    def __init__(self, numbers: Iterable[str]) -> None:
        batch = numbers if isinstance(numbers, list | tuple) else list(numbers)
        if not (all(map(str.isdigit, batch)) and all(map(str.isascii, batch))):
            batch = [n for n in batch if n.isdigit() and n.isascii()]
        self.values: list[int] = sorted(set(map(int, batch)))
        # Only numbers with leading zeros are not spelled str(int(n)); keep a map just for those.
        self._spelling: dict[int, str] | None = None
        if any(n[0] == "0" for n in batch):
            spelling: dict[int, str] = {}
            for n in batch:
                spelling.setdefault(int(n), n)
            self._spelling = spelling

    def spell(self, value: int) -> str:
        return str(value) if self._spelling is None else self._spelling[value]

    def runs(self) -> list[tuple[int, int]]:
        """(start index, length) of every maximal run of consecutive values, ascending."""
        values = self.values
        if not values:
            return []
        runs: list[tuple[int, int]] = []
        start = 0
        previous = values[0]
        for index, value in enumerate(values):
            if value - previous != 1 and index:
                runs.append((start, index - start))
                start = index
            previous = value
        runs.append((start, len(values) - start))
        return runs

    def has_run_longer_than(self, max_run: int) -> bool:
        """Fast test: values are distinct and ascending, so ``v[i + k] - v[i] == k`` iff ``v[i..i+k]``
        are consecutive; the differences are computed in C, without a Python-level loop."""
        values = self.values
        if max_run < 1:
            return bool(values)
        if len(values) <= max_run:
            return False
        return max_run in map(operator.sub, values[max_run:], values[:-max_run])


def longest_consecutive_run(numbers: Iterable[str]) -> tuple[int, list[str]]:
    """Length and members (ascending) of the longest run of consecutive numbers; ``(0, [])`` if none.

    Ties go to the run of the smallest numbers.
    """
    distinct = _Distinct(numbers)
    best_start, best_length = 0, 0
    for start, length in distinct.runs():
        if length > best_length:
            best_start, best_length = start, length
    members = distinct.values[best_start : best_start + best_length]
    return best_length, [distinct.spell(v) for v in members]


def find_number_ranges(numbers: Iterable[str], max_run: int = DEFAULT_MAX_RUN) -> list[tuple[str, str, int]]:
    """Runs longer than ``max_run`` as ``(first number, last number, length)``, ascending."""
    distinct = _Distinct(numbers)
    if not distinct.has_run_longer_than(max_run):
        return []
    values = distinct.values
    return [
        (distinct.spell(values[start]), distinct.spell(values[start + length - 1]), length)
        for start, length in distinct.runs()
        if length > max_run
    ]
