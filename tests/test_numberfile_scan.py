"""The XLSX reader's column scan (domain/numberfile._ScannedSheet) gives the numbers openpyxl's own reader
gives: shared and inline strings, numbers stored as numbers or floats, formulas, blanks, rows without the
cell, a column past Z; and a sheet the pattern cannot read (a comment inside the data) goes through expat."""

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


@pytest.mark.parametrize("write_only", [False, True])  # shared strings vs inline strings
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
