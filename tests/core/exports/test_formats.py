"""The CSV and xlsx writers on their own: text stays text, Chinese survives, pages stream."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
from collections.abc import Iterator

from openpyxl import load_workbook

from qiao.core.exports.formats import BOM, Page, csv_chunks, xlsx_chunks

HEADER = ["名称", "电话", "金额", "成交日期", "已签约"]
PAGES = [
    [["苏州精密机床", "+8613812345678", decimal.Decimal("880000.00"), dt.date(2026, 5, 1), True]],
    [['=HYPERLINK("http://x")', "-1+cmd|' /C calc'!A0", None, None, False]],
]


def test_csv_has_a_bom_when_asked_and_neutralises_formulas() -> None:
    data = b"".join(csv_chunks(HEADER, iter(PAGES), bom=True))
    assert data.startswith(BOM)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == HEADER
    assert rows[1] == ["苏州精密机床", "+8613812345678", "880000.00", "2026-05-01", "true"]
    assert rows[2] == ['\'=HYPERLINK("http://x")', "'-1+cmd|' /C calc'!A0", "", "", "false"]
    assert not b"".join(csv_chunks(HEADER, iter(PAGES), bom=False)).startswith(BOM)


def test_csv_holds_back_each_page_until_the_next_one_is_read() -> None:
    read: list[int] = []

    def pages() -> Iterator[Page]:
        for number, page in enumerate(PAGES):
            read.append(number)
            yield page

    chunks = csv_chunks(HEADER, pages(), bom=False)
    next(chunks)  # the header, sent once the first page is read
    assert read == [0]
    first = next(chunks)
    assert read == [0, 1] and "苏州精密机床" in first.decode()


def test_xlsx_keeps_text_as_text_and_values_typed() -> None:
    data = b"".join(xlsx_chunks(HEADER, iter(PAGES), title="商机: 华东/华北"))
    book = load_workbook(io.BytesIO(data))
    sheet = book.active
    assert sheet.title == "商机  华东 华北"
    assert [c.value for c in sheet[1]] == HEADER
    assert sheet["A2"].value == "苏州精密机床" and sheet["C2"].value == 880000
    assert sheet["D2"].value == dt.datetime(2026, 5, 1) and sheet["E2"].value is True
    assert sheet["A3"].value == '=HYPERLINK("http://x")' and sheet["A3"].data_type == "s"
