"""Spreadsheet exports: the one rule every CSV and XLSX cell passes (rule SAFE_CELL).

Customer-supplied text (audience, signatures, opt-out rows, notes …) reaches spreadsheets that treat a
cell starting with ``=``, ``+``, ``-`` or ``@`` as a formula (``=cmd|' /C calc'!A0``), and a leading tab
or carriage return can hide such a prefix. ``safe_cell`` makes such a text cell inert by putting a
single quote before it (the OWASP advice); spreadsheet programs show the text as written. Numbers,
None and every other text pass unchanged, so an export stays byte-identical where nothing was risky.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["FORMULA_STARTS", "safe_cell", "safe_row"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

T = TypeVar("T")


def safe_cell(value: T) -> T | str:
    """``value`` as it may be written to a CSV or XLSX cell (text that could run as a formula escaped)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(row: dict[str, T]) -> dict[str, T | str]:
    """Every cell of a ``csv.DictWriter`` row passed through :func:`safe_cell`."""
    return {k: safe_cell(v) for k, v in row.items()}
