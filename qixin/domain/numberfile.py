"""Reading a file of recipients (CSV, XLSX, TXT or pasted text) into numbers and per-row variables.

Rules (pure: bytes in, lists out; no I/O):

* The format is the content's: a ZIP signature (``PK``) is XLSX (first sheet; openpyxl in read-only
  mode opens it, the cells stream through ``_sheet_rows``: constant memory per row); otherwise the
  text is CSV when the name ends in ``.csv``, else TXT. Text is UTF-8 (with or without BOM), falling
  back to GB18030 (files saved by Excel on Chinese Windows).
* TXT and pasted text: one number per line; a line may also hold several numbers separated by commas,
  semicolons or tabs (ASCII or full-width). Spaces inside a number are kept (the number parser removes
  them).
* CSV / XLSX: the first row is a header when none of its cells is a phone number. The number column is
  the one named by ``number_column`` (a header name, or a 1-based column index), else the first column
  whose header is a usual name (手机号, 号码, mobile, phone, …), else the first column.
* A personalised batch maps template variables to columns (``params_columns``: variable → header name);
  that needs a header, and every named column must exist (FILE_COLUMN_UNKNOWN).
* Rows whose number cell is blank are skipped; more than ``max_numbers`` numbers is refused
  (FILE_TOO_MANY_NUMBERS) as soon as the reader passes the limit.
* Spreadsheet cells holding numbers (13800138000 stored as a number, or as 1.38001380E10) become their
  integer digits.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from qixin.errors import QxError

NUMBER_HEADERS = (
    "手机号", "手机号码", "手机", "号码", "电话", "电话号码", "接收号码", "mobile", "phone", "number", "to", "tel",
)  # fmt: skip
_SPLIT = re.compile(r"[,;\t，；、]+")
_LOOKS_LIKE_NUMBER = re.compile(r"[+＋]?[0-9０-９][0-9０-９ \-]{5,}")


@dataclass(slots=True)
class NumberFile:
    """What a file holds: numbers in file order (as written), and per row the template variables."""

    kind: str  # csv | xlsx | txt
    numbers: list[str]
    params: list[dict[str, str]] | None  # one per number when params columns were asked for
    header: list[str]  # the header row ([] when the file has none)


def detect_kind(data: bytes, filename: str) -> str:
    if data[:4] == b"PK\x03\x04":
        return "xlsx"
    return "csv" if filename.lower().endswith(".csv") else "txt"


def decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError as e:
            raise QxError("FILE_INVALID", "文件编码无法识别（请使用 UTF-8 或 GBK）") from e


def cell_text(value: Any) -> str:
    """A spreadsheet or CSV cell as text (numbers stored as numbers become their digits)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


def read_number_file(
    data: bytes,
    filename: str = "",
    *,
    number_column: str | None = None,
    params_columns: dict[str, str] | None = None,
    max_numbers: int = 1_000_000,
) -> NumberFile:
    """The numbers (and per-row variables) of ``data``; FILE_INVALID, FILE_COLUMN_UNKNOWN or
    FILE_TOO_MANY_NUMBERS otherwise."""
    kind = detect_kind(data, filename)
    if kind == "txt":
        if params_columns:
            raise QxError("FILE_COLUMN_UNKNOWN", "个性化发送需要带表头的 CSV 或 XLSX 文件")
        numbers: list[str] = []
        for line in decode_text(data).splitlines():
            for item in _SPLIT.split(line):
                item = item.strip()
                if item:
                    numbers.append(item)
                    if len(numbers) > max_numbers:
                        raise _too_many(max_numbers)
        return NumberFile(kind, numbers, None, [])
    rows = _xlsx_rows(data, fast=not params_columns) if kind == "xlsx" else _csv_rows(data)
    return _from_rows(kind, rows, number_column, params_columns or {}, max_numbers)


def _too_many(limit: int) -> QxError:
    return QxError("FILE_TOO_MANY_NUMBERS", f"文件最多 {limit:,} 个号码", limit=limit)


def _csv_rows(data: bytes) -> Iterator[Sequence[Any]]:
    text = decode_text(data)
    try:
        yield from csv.reader(io.StringIO(text, newline=""))
    except csv.Error as e:
        raise QxError("FILE_INVALID", f"CSV 文件格式错误：{e}") from e


def _xlsx_rows(data: bytes, fast: bool = True) -> Iterable[Sequence[Any]]:
    """The rows of the first sheet. With ``fast`` the package is opened with openpyxl's reader up to the
    workbook part and the shared strings only (a read-only ``load_workbook`` would also scan every sheet
    from start to end looking for a ``<dimension>`` element that openpyxl's and many other writers leave
    out: a second full parse of a million-row sheet), and the sheet's cells are read by ``_sheet_rows``
    (expat, about five times faster than openpyxl's cell reader on a million rows); else by openpyxl's
    ``iter_rows`` (which also turns date cells into dates: used for personalised files, whose variables may
    be dates)."""
    return _xlsx_rows_fast(data) if fast else _xlsx_rows_openpyxl(data)


@contextlib.contextmanager
def _unreadable() -> Iterator[None]:
    """An XLSX that fails while its cells are read: FILE_INVALID (a QxError raised inside passes as it is)."""
    try:
        yield
    except QxError:
        raise
    except Exception as e:
        raise QxError("FILE_INVALID", "XLSX 文件无法读取") from e


def _xlsx_rows_openpyxl(data: bytes) -> Iterator[Sequence[Any]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # a damaged or foreign ZIP: openpyxl raises many kinds
        raise QxError("FILE_INVALID", "XLSX 文件无法读取") from e
    try:
        ws = wb.worksheets[0] if wb.worksheets else None
        if ws is None:
            return
        with _unreadable():
            yield from ws.iter_rows(values_only=True)
    finally:
        wb.close()


def _xlsx_rows_fast(data: bytes) -> Iterable[Sequence[Any]]:
    """The first worksheet's rows (the sheet ``load_workbook(...).worksheets[0]`` is: the first sheet of the
    workbook part whose target exists and is not a chartsheet): a ``_ScannedSheet`` when the sheet part can
    be held and scanned, else read by ``_sheet_rows`` as it streams."""
    from openpyxl.reader.excel import ExcelReader

    try:
        reader = ExcelReader(io.BytesIO(data), read_only=True, data_only=True)
        reader.read_manifest()
        reader.read_strings()
        reader.read_workbook()
        target = next((rel.target for _sheet, rel in reader.parser.find_sheets()
                       if rel.target in reader.valid_files and "chartsheet" not in rel.Type), None)  # fmt: skip
        shared = [str(x) for x in reader.shared_strings]
        if target is None:
            reader.archive.close()
            return []
        if reader.archive.getinfo(target).file_size <= SCAN_MAX_BYTES:
            xml = reader.archive.read(target)
            reader.archive.close()
            if _scannable(xml):
                return _ScannedSheet(xml, shared)
            return _streamed(io.BytesIO(xml), shared, None)
    except Exception as e:  # a damaged or foreign ZIP: openpyxl raises many kinds
        raise QxError("FILE_INVALID", "XLSX 文件无法读取") from e
    return _streamed(reader.archive.open(target), shared, reader.archive)


def _streamed(source: Any, shared: list[str], archive: Any) -> Iterator[list[Any]]:
    try:
        with _unreadable():
            yield from _sheet_rows(source, shared)
    finally:
        source.close()
        if archive is not None:
            archive.close()


SCAN_MAX_BYTES = 256 * 1024 * 1024  # a sheet part up to this size (uncompressed) is held whole and scanned
_SCAN_ROW = re.compile(rb"<row\b[^>]*?/>|<row\b.*?</row>", re.S)
_SCAN_TYPE = re.compile(rb'\bt="([A-Za-z]*)"')
_SCAN_VALUE = re.compile(rb"<v>([^<&]*)</v>")


def _scannable(xml: bytes) -> bool:
    """Whether ``_ScannedSheet.column`` finds every cell of a column by pattern: one ``<sheetData>`` without a
    namespace prefix, every cell's first attribute its reference (``<c r="B12"``: what openpyxl, Excel, WPS and
    LibreOffice write) and nothing a pattern cannot see through (comments, CDATA, processing instructions)."""
    lo = xml.find(b"<sheetData")
    if lo < 0 or b":sheetData" in xml:
        return False
    hi = xml.find(b"</sheetData>", lo)
    part = memoryview(xml)[lo : hi if hi >= 0 else len(xml)].tobytes()
    if any(x in part for x in (b"<!--", b"<![CDATA[", b"<?")):
        return False
    return part.count(b"<c") == part.count(b'<c r="')  # inside sheetData only cells open with "<c"


class _ScannedSheet:
    """The rows of a worksheet part held in memory: row by row (each row read by ``_sheet_rows``), until
    ``_from_rows`` knows the number column; then ``column`` gives that column's values for the remaining rows
    by a pattern over the bytes (a million rows in about a second; the cells of other columns are never
    looked at). The values are ``_sheet_rows``'s: a cell that is not a plain ``<v>…</v>`` (inline string,
    formula, entity) is read by expat alone."""

    def __init__(self, xml: bytes, shared: list[str]) -> None:
        self.xml, self.shared = xml, shared
        self.pos = xml.find(b"<sheetData")
        end = xml.find(b"</sheetData>", self.pos)
        self.end = end if end >= 0 else len(xml)

    def __iter__(self) -> _ScannedSheet:
        return self

    def __next__(self) -> list[Any]:
        m = _SCAN_ROW.search(self.xml, self.pos, self.end)
        if m is None:
            raise StopIteration
        self.pos = m.end()
        with _unreadable():  # e.g. a shared-string index past the table
            return next(iter(_sheet_rows(io.BytesIO(b"<sheetData>" + m.group(0) + b"</sheetData>"), self.shared)), [])

    def column(self, col: int) -> Iterator[Any]:
        """The values of column ``col`` (0-based) in the rows not read yet, in file order (rows without that
        cell give nothing); FILE_INVALID for a cell that cannot be read."""
        with _unreadable():  # e.g. a shared-string index past the table
            yield from self._column(col)

    def _column(self, col: int) -> Iterator[Any]:
        letters = b""
        n = col + 1
        while n:
            n, r = divmod(n - 1, 26)
            letters = bytes([65 + r]) + letters
        cell = re.compile(rb'<c r="' + letters + rb'[0-9]+"([^>]*?)(?:/>|>(.*?)</c>)', re.S)
        plain, type_of, shared = _SCAN_VALUE.fullmatch, _SCAN_TYPE.search, self.shared
        for m in cell.finditer(self.xml, self.pos, self.end):
            inner = m.group(2)
            if not inner:
                yield None
                continue
            v = plain(inner)
            if v is None:  # not a plain value: expat reads this one cell
                cells = next(iter(_sheet_rows(io.BytesIO(b"<row>" + m.group(0) + b"</row>"), shared)), [])
                yield cells[col] if col < len(cells) else None
                continue
            t = type_of(m.group(1))
            kind = t.group(1) if t is not None else b"n"
            text = v.group(1)
            if kind == b"n" or not kind:
                if text.isdigit():
                    yield int(text)
                elif not text:
                    yield None
                else:
                    try:
                        yield float(text)
                    except ValueError:
                        yield text.decode()
            elif kind == b"s":
                yield shared[int(text)] if text else None
            elif kind in (b"inlineStr", b"str"):
                yield text.decode()
            elif kind == b"b":
                yield text == b"1"
            else:  # "e": an error value
                yield None


def _column_index(ref: str) -> int:
    """0-based column of a cell reference such as ``"AB12"``."""
    n = 0
    for ch in ref:
        if "A" <= ch <= "Z":
            n = n * 26 + ord(ch) - 64
        else:
            break
    return n - 1


def _sheet_rows(source: Any, shared: list[str]) -> Iterator[list[Any]]:
    """Rows of a worksheet part (SpreadsheetML ``<sheetData>``) as lists of cell values: shared and inline
    strings as text, numbers as int or float, booleans as bool; ``<f>`` formulas give their cached value.
    Element names are matched without a namespace prefix (what Excel, WPS, LibreOffice and openpyxl
    write); a prefixed sheet (``<x:row>``) is read through ``local`` names, a little slower."""
    import xml.parsers.expat

    done: list[list[Any]] = []
    columns: dict[str, int] = {}  # column letters -> index
    row: list[Any] = []
    kind = "n"  # the cell's t attribute
    col = 0
    text = ""
    collecting = False
    phonetic = 0  # inside <rPh>: ruby text, not the cell's

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal row, kind, col, collecting, phonetic, text
        if name == "c":
            kind = attrs.get("t", "n")
            ref = attrs.get("r")
            if ref:
                letters = ref.rstrip("0123456789")
                col = columns.get(letters, -1)
                if col < 0:
                    col = columns[letters] = _column_index(letters)
            else:
                col = len(row)
            text = ""
        elif name == "v":
            collecting = True
        elif name == "row":
            row = []
        elif name == "t":
            collecting = not phonetic
        elif name == "rPh":
            phonetic += 1

    def end(name: str) -> None:
        nonlocal collecting, phonetic
        if name == "v" or name == "t":
            collecting = False
        elif name == "c":
            value: Any
            if kind == "n" or kind == "":
                if text.isdigit():
                    value = int(text)
                elif not text:
                    value = None
                else:
                    try:
                        value = float(text)
                    except ValueError:
                        value = text
            elif kind == "s":
                value = shared[int(text)] if text else None
            elif kind in ("inlineStr", "str"):
                value = text
            elif kind == "b":
                value = text == "1"
            else:  # "e": an error value
                value = None
            if col == len(row):
                row.append(value)
            else:
                if col > len(row):
                    row.extend([None] * (col - len(row) + 1))
                row[col] = value
        elif name == "row":
            done.append(row)
        elif name == "rPh":
            phonetic -= 1

    def chars(data: str) -> None:
        nonlocal text
        if collecting:
            text += data

    def local(handler: Any) -> Any:
        return lambda name, *rest: handler(name.rpartition(":")[2], *rest)

    parser = xml.parsers.expat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    first = True
    while True:
        block = source.read(1 << 20)
        if (first and b"<x:sheetData" in block[:4096]) or (first and b":sheetData" in block[:65536]):
            parser.StartElementHandler, parser.EndElementHandler = local(start), local(end)
        first = False
        try:
            parser.Parse(block, not block)
        except xml.parsers.expat.ExpatError as e:
            raise QxError("FILE_INVALID", "XLSX 文件无法读取") from e
        yield from done
        done.clear()
        if not block:
            return


def _is_number(text: str) -> bool:
    return bool(_LOOKS_LIKE_NUMBER.fullmatch(text))


def _column(header: list[str], name: str) -> int | None:
    wanted = name.strip().lower()
    for i, h in enumerate(header):
        if h.strip().lower() == wanted:
            return i
    return None


def _from_rows(
    kind: str, rows: Iterable[Sequence[Any]], number_column: str | None, params_columns: dict[str, str], limit: int
) -> NumberFile:
    it = iter(rows)
    first: list[str] | None = None
    for row in it:  # the first row that has anything in it
        cells = [cell_text(c) for c in row]
        if any(cells):
            first = cells
            break
    if first is None:
        return NumberFile(kind, [], [] if params_columns else None, [])
    has_header = not any(_is_number(c) for c in first)
    header = first if has_header else []
    col = 0
    if number_column is not None and number_column.strip():
        found = _column(header, number_column)
        if found is None and number_column.strip().isdigit() and int(number_column) >= 1:
            found = int(number_column) - 1
        if found is None:
            raise QxError("FILE_COLUMN_UNKNOWN", f"文件中没有号码列“{number_column}”", column=number_column)
        col = found
    elif header:
        col = next((i for n in NUMBER_HEADERS if (i := _column(header, n)) is not None), 0)
    params_at: list[tuple[str, int]] = []
    for var, name in params_columns.items():
        at = _column(header, name) if header else None
        if at is None:
            raise QxError("FILE_COLUMN_UNKNOWN", f"文件中没有列“{name}”（变量 {var}）", column=name, variable=var)
        params_at.append((var, at))
    numbers: list[str] = []
    params: list[dict[str, str]] | None = [] if params_at else None

    def take(cells: Sequence[Any]) -> None:
        number = cell_text(cells[col]) if col < len(cells) else ""
        if not number:
            return
        numbers.append(number)
        if len(numbers) > limit:
            raise _too_many(limit)
        if params is not None:
            params.append({v: cell_text(cells[i]) if i < len(cells) else "" for v, i in params_at})

    if not has_header:
        take(first)
    if params is not None:
        for row in it:
            take(row)
        return NumberFile(kind, numbers, params, header)
    append = numbers.append
    if isinstance(it, _ScannedSheet):  # only the number column is looked at from here on
        for value in it.column(col):
            number = str(value) if type(value) is int else cell_text(value)
            if number:
                append(number)
                if len(numbers) > limit:
                    raise _too_many(limit)
        return NumberFile(kind, numbers, params, header)
    for row in it:  # take() without variables, inlined: a million rows
        if col >= len(row):
            continue
        value = row[col]
        number = str(value) if type(value) is int else cell_text(value)
        if number:
            append(number)
            if len(numbers) > limit:
                raise _too_many(limit)
    return NumberFile(kind, numbers, params, header)


def table_rows(data: bytes, filename: str = "") -> Iterator[list[str]]:
    """Every row of a CSV or XLSX file (XLSX by its content, whatever the name) as text cells — the
    address book's import (services/addressbook.py) reads its columns itself. Date cells of a sheet
    become their ISO text."""
    rows = _xlsx_rows(data, fast=False) if detect_kind(data, filename) == "xlsx" else _csv_rows(data)
    for row in rows:
        yield [cell_text(v.isoformat() if hasattr(v, "isoformat") else v) for v in row]
