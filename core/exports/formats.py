"""CSV and xlsx, written row by row as pages arrive, in constant memory.

Both writers take an iterator of pages (lists of rows) and yield the file's
bytes. CSV goes out a page at a time; each page's bytes are held until the
next page has been read, so when reading fails (or the export cannot be
recorded in the audit log, which happens when the pages run out) the last
bytes are never sent. xlsx is a zip archive that can only be finished at the
end: openpyxl's write-only mode streams the rows to a temporary file and the
archive is assembled there, then read out in chunks.

Spreadsheet programs run cells that look like formulas. xlsx cells are
written as typed values, text as text, so a name like ``=HYPERLINK(...)``
stays text. CSV has no types, so a text value that would be read as a formula
(starting with ``=``, ``@``, a tab or a carriage return, or ``+``/``-`` when it
is not a number such as a phone) is written with a leading apostrophe, as
OWASP recommends for CSV files.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from qiao.core.exports.columns import Cell

Page = list[list[Cell]]
#: What Excel needs at the start of a UTF-8 CSV file to read it as UTF-8 (Chinese text).
BOM = "\ufeff".encode()
#: How much of a finished xlsx file is read and sent at a time.
CHUNK = 64 * 1024
_FORMULA_START = re.compile(r"[=@\t\r]|[+-](?![\d.]+$)")
_SHEET_TITLE_REFUSED = re.compile(r"[\[\]:*?/\\]")


class Format(StrEnum):
    """The file formats an export writes."""

    CSV = "csv"
    XLSX = "xlsx"

    @property
    def media_type(self) -> str:
        if self is Format.CSV:
            return "text/csv; charset=utf-8"
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def csv_chunks(header: list[str], pages: Iterable[Page], *, bom: bool) -> Iterator[bytes]:
    """A CSV file (UTF-8, with a BOM when asked), one chunk per page."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    pending = (BOM if bom else b"") + _drain(buffer)
    for page in pages:
        writer.writerows([_csv_cell(c) for c in row] for row in page)
        yield pending
        pending = _drain(buffer)
    yield pending


def xlsx_chunks(header: list[str], pages: Iterable[Page], *, title: str) -> Iterator[bytes]:
    """An xlsx workbook of one sheet named ``title``, sent once it is complete."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(_sheet_title(title))
    sheet.append([_xlsx_cell(sheet, h) for h in header])
    for page in pages:
        for row in page:
            sheet.append([_xlsx_cell(sheet, c) for c in row])
    with tempfile.TemporaryFile() as spool:
        book.save(spool)
        spool.seek(0)
        while chunk := spool.read(CHUNK):
            yield chunk


def _drain(buffer: io.StringIO) -> bytes:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text.encode("utf-8")


def _csv_cell(value: Cell) -> Cell:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and _FORMULA_START.match(value):
        return "'" + value
    return value


def _xlsx_cell(sheet: Any, value: Cell) -> object:
    if not isinstance(value, str):
        return value
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if not value.startswith("="):
        return value
    cell = WriteOnlyCell(sheet, value)
    cell.data_type = "s"  # text, never a formula
    return cell


def _sheet_title(title: str) -> str:
    """A sheet name Excel accepts: at most 31 characters, none of ``[]:*?/\\``."""
    return _SHEET_TITLE_REFUSED.sub(" ", title)[:31].strip() or "export"
