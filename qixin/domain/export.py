"""Spreadsheet exports: the one rule every CSV and XLSX cell passes (rule SAFE_CELL).

Customer-supplied text (audience, signatures, opt-out rows, notes …) reaches spreadsheets that treat a
cell starting with ``=``, ``+``, ``-`` or ``@`` as a formula (``=cmd|' /C calc'!A0``), and a leading tab
or carriage return can hide such a prefix. ``safe_cell`` makes such a text cell inert by putting a
single quote before it (the OWASP advice); spreadsheet programs show the text as written. Numbers,
None and every other text pass unchanged, so an export stays byte-identical where nothing was risky.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any, TypeVar

from qixin.domain.delivery import FAILED_STATUSES, reason_of
from qixin.domain.numbers import mask

__all__ = ["FORMULA_STARTS", "csv_header", "csv_rows", "safe_cell", "safe_row"]

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


# -- the message export's CSV (services/queries.MessageSearch.export_csv, services/exports.ExportJobs) --------

# how a risky cell can begin in a CSV text written with lineterminator "\r\n": after a delimiter or a line
# break (or at the very start), with or without the opening quote of a quoted cell. A cell holding "\r" is
# always quoted, so an unquoted ",\r" is only an empty last cell before the line's end.
_RISKY_STARTS = tuple(q + c for q in ("", '"') for c in FORMULA_STARTS if q or c != "\r")
# per risky character: the texts that show a cell starting with it (searched only when the character
# occurs at all: "-" does in most pages, e.g. in channel names; "\r" ends every line)
_CELL_STARTS = tuple(
    ('"' + c if c == "\r" else c, tuple(p + q + c for p in (",", "\n") for q in ("", '"') if q or c != "\r"))
    for c in FORMULA_STARTS
)


def _may_hold_formula(text: str) -> bool:
    if text.startswith(_RISKY_STARTS):
        return True
    return any(char in text and any(s in text for s in starts) for char, starts in _CELL_STARTS)


_STATUS, _TO, _REASON = 9, 3, 13  # columns of a row of store/exports.export_rows (the export's order)


def csv_header(columns: Sequence[str]) -> bytes:
    """The header line, after the UTF-8 BOM (for Excel)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(columns)
    return ("\ufeff" + buf.getvalue()).encode()


def csv_rows(rows: Sequence[Sequence[Any]], reveal: bool) -> bytes:
    """Rows of ``store.exports.export_rows`` as CSV lines (UTF-8, CRLF), byte for byte what writing the
    search's items (services/queries.MessageSearch) cell by cell through ``safe_cell`` gives: the number
    masked unless ``reveal``, the failure reason computed from the protocol the row carries in its place.

    The hot loop of a 1,000,000-row export, so it works on whole pages: rows that need no change (shown
    numbers, not failed: nearly all of a customer's export) go to the C csv writer as they are; the formula
    rule is checked on the page's text, where a risky cell can only follow a delimiter or a line break
    (with its opening quote), and only a page where such a start appears (or a negative number, which is
    not escaped) is written again cell by cell."""
    failed = FAILED_STATUSES
    if reveal:
        out = [r if r[_STATUS] not in failed else _fixed(r, True) for r in rows]
    else:
        out = [_fixed(r, False) for r in rows]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(out)
    text = buf.getvalue()
    if _may_hold_formula(text):
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerows([safe_cell(v) for v in r] for r in out)
        text = buf.getvalue()
    return text.encode()


def _fixed(r: Sequence[Any], reveal: bool) -> list[Any]:
    row = list(r)
    status = row[_STATUS]
    row[_REASON] = reason_of(row[_REASON], status, row[10], row[11], row[12]) if status in FAILED_STATUSES else None
    if not reveal:
        row[_TO] = mask(row[_TO])
    return row
