"""The XLSX reader's column scan (domain/numberfile._ScannedSheet) gives the numbers openpyxl's own reader
gives: strings (openpyxl writes them inline), numbers stored as numbers or floats, booleans, a formula,
blanks, rows without the cell, a column past Z; a sheet the pattern cannot read (a comment inside the data)
goes through expat; a cell that cannot be read (a shared string past the table) is FILE_INVALID."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest

from qixin.domain import numberfile
from qixin.domain.numberfile import _from_rows, _xlsx_rows, read_number_file


def workbook(rows: list[list[Any]], write_only: bool) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=write_only)
    ws = wb.create_sheet() if write_only else wb.active
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def by_openpyxl(data: bytes, number_column: str | None = None) -> list[str]:
    return _from_rows("xlsx", _xlsx_rows(data, fast=False), number_column, {}, 1_000_000).numbers


def sheet_xml(data: bytes) -> bytes:
    return zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")


ROWS: list[list[Any]] = [
    [None, None, None],  # an empty first row
    ["姓名", "手机号", "备注"],
    ["张三", 13800138000, "x"],
    ["李四", "13900139000", None],
    ["王五", 1.39001390e10, 1],
    ["赵六", None, "no number"],  # blank: skipped
    ["钱七"],  # no cell at all: skipped
    ["孙八", "=1+1", True],  # a formula without a cached value (openpyxl writes none): blank
    ["周九", " 137 0013 7000 ", 2.5],
    ["吴十", "+8613600136000"],
]


@pytest.mark.parametrize("write_only", [False, True])
def test_column_scan_reads_what_openpyxl_reads(write_only: bool) -> None:
    data = workbook(ROWS, write_only)
    assert numberfile._scannable(sheet_xml(data))
    assert isinstance(_xlsx_rows(data), numberfile._ScannedSheet)
    f = read_number_file(data, "a.xlsx")
    assert f.numbers == by_openpyxl(data)
    assert (
        f.numbers[:3] == ["13800138000", "13900139000", "13900139000"] and len(f.numbers) == 5
    )  # the formula has no cached value: blank
    third = read_number_file(data, "a.xlsx", number_column="3").numbers
    assert third == by_openpyxl(data, "3") == ["x", "1", "no number", "True", "2.5"]


def test_column_past_z_and_no_header() -> None:
    rows = [[*(["-"] * 26), 13800138000 + i] for i in range(5)]  # column AA, no header row
    data = workbook(rows, True)
    f = read_number_file(data, "a.xlsx", number_column="27")
    assert f.numbers == by_openpyxl(data, "27") == [str(13800138000 + i) for i in range(5)] and f.header == []


def test_a_sheet_the_pattern_cannot_read_goes_through_expat() -> None:
    data = workbook(ROWS, False)
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                body = body.replace(b'<row r="4"', b'<!-- <c r="B99"><v>13700000000</v></c> --><row r="4"', 1)
            z.writestr(item, body)
    commented = out.getvalue()
    assert not numberfile._scannable(sheet_xml(commented))
    assert not isinstance(_xlsx_rows(commented), numberfile._ScannedSheet)
    assert read_number_file(commented, "a.xlsx").numbers == read_number_file(data, "a.xlsx").numbers


def test_a_damaged_cell_is_file_invalid() -> None:
    from qixin.errors import QxError

    data = workbook([["手机号"], ["13800138000"], ["13900139000"]], False)
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":  # the last number: a shared string past the table
                cell = body[body.index(b'<c r="A3"') :]
                body = body.replace(cell[: cell.index(b"</c>") + 4], b'<c r="A3" t="s"><v>99</v></c>')
            z.writestr(item, body)
    damaged = out.getvalue()
    assert numberfile._scannable(sheet_xml(damaged))
    with pytest.raises(QxError) as e:
        read_number_file(damaged, "a.xlsx")
    assert e.value.code == "FILE_INVALID"


SST_TYPE = (
    b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
)


def with_shared_strings(data: bytes) -> bytes:
    """The workbook as Excel writes it: its inline strings moved to a shared-string table."""
    import re

    src = zipfile.ZipFile(io.BytesIO(data))
    strings: list[bytes] = []

    def shared(m: re.Match[bytes]) -> bytes:
        strings.append(m.group(2))
        return m.group(1) + b' t="s"><v>' + str(len(strings) - 1).encode() + b"</v></c>"

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                body = re.sub(
                    rb'(<c r="[A-Z]+[0-9]+") t="inlineStr"><is><t(?: xml:space="preserve")?>([^<]*)</t></is></c>',
                    shared,
                    body,
                )
            elif item.filename == "[Content_Types].xml":
                body = body.replace(b"</Types>", SST_TYPE + b"</Types>")
            z.writestr(item, body)
        sst = b"".join(b'<si><t xml:space="preserve">' + t + b"</t></si>" for t in strings)
        z.writestr("xl/sharedStrings.xml", b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                   + sst + b"</sst>")  # fmt: skip
    return out.getvalue()


def test_shared_strings() -> None:
    data = with_shared_strings(workbook(ROWS, False))
    assert b' t="s"><v>' in sheet_xml(data) and b"inlineStr" not in sheet_xml(data)
    assert isinstance(_xlsx_rows(data), numberfile._ScannedSheet)
    f = read_number_file(data, "a.xlsx")
    assert f.numbers == by_openpyxl(data) == read_number_file(workbook(ROWS, False), "a.xlsx").numbers
    assert f.header == ["姓名", "手机号", "备注"]
