"""Reading a spreadsheet as it really arrives: headers found, merges filled, empty rows gone.

Trade-show sign-up sheets have a title row merged across the top, a header
such as "联系方式" merged over "手机 | 邮箱", cells merged down a company's
contacts, blank lines between sections, and CSVs saved by Chinese Excel in
GBK. :func:`read_table` gives back the column names and the data rows with
their row numbers as the spreadsheet shows them, whatever the file did.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from python_calamine import CalamineError, CalamineWorkbook

from qiao.api import BadUserInput

Cell = str | int | float | bool | dt.date | dt.datetime | dt.time | dt.timedelta | None
#: How far down a header row is looked for.
HEADER_SEARCH_ROWS = 20
SUFFIXES = (".xlsx", ".xlsm", ".xls", ".csv", ".txt")


@dataclass(frozen=True)
class Table:
    """Column names (unique) and data rows as ``(row number, cells)``."""

    columns: tuple[str, ...]
    rows: list[tuple[int, list[Cell]]]


def read_table(
    data: bytes, filename: str, recognise: Callable[[str], bool], sheet: str | None = None
) -> Table:
    """Parse ``data``; ``recognise`` tells which header texts name a field."""
    suffix = PurePath(filename).suffix.lower()
    if suffix in {".csv", ".txt"}:
        grid = _csv_grid(data)
    elif suffix in {".xlsx", ".xlsm", ".xls"}:
        grid = _excel_grid(data, sheet)
    else:
        raise BadUserInput(f"{filename}: give an .xlsx or .csv file", field="filename")
    return _table(grid, recognise)


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030 (a superset of GBK)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise BadUserInput(
            f"the file is neither UTF-8 nor GBK/GB18030 text (byte {exc.start}); "
            "save it from Excel as 'CSV UTF-8'"
        ) from None


def _csv_grid(data: bytes) -> list[list[Cell]]:
    text = decode_text(data)
    sample = text[:20_000]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel
    return [list(row) for row in csv.reader(io.StringIO(text, newline=""), dialect)]


def _excel_grid(data: bytes, sheet: str | None) -> list[list[Cell]]:
    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        found = book.get_sheet_by_name(sheet) if sheet else book.get_sheet_by_index(0)
        grid: list[list[Cell]] = [list(row) for row in found.to_python()]
        merges = found.merged_cell_ranges or []
    except (CalamineError, ValueError, KeyError, IndexError) as exc:
        raise BadUserInput(f"cannot read the workbook: {exc}") from None
    for (top, left), (bottom, right) in merges:
        if top >= len(grid) or left >= len(grid[top]):
            continue
        value = grid[top][left]
        for r in range(top, min(bottom, len(grid) - 1) + 1):
            row = grid[r]
            for c in range(left, min(right, len(row) - 1) + 1):
                row[c] = value
    return grid


def is_empty(cell: Cell) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _table(grid: list[list[Cell]], recognise: Callable[[str], bool]) -> Table:
    def known(row: Sequence[Cell]) -> int:
        return len({c.strip() for c in row if isinstance(c, str) and c.strip() and recognise(c)})

    def header_like(row: Sequence[Cell]) -> bool:
        """Text only, and mostly field names (a data row may hold one by chance: "公司9")."""
        filled = {c.strip() for c in row if isinstance(c, str) and c.strip()}
        texts_only = all(isinstance(c, str) or c is None for c in row)
        return texts_only and known(row) * 2 > len(filled)

    scores = [known(row) for row in grid[:HEADER_SEARCH_ROWS]]
    if not scores or max(scores) == 0:
        raise BadUserInput(
            "no header row names a known field in the first 20 rows; give a mapping file"
        )
    first = last = scores.index(max(scores))
    while first > 0 and header_like(grid[first - 1]) and not _is_title(grid[first - 1]):
        first -= 1
    while last + 1 < len(grid) and header_like(grid[last + 1]):
        last += 1
    width = max(len(r) for r in grid[first : last + 1])
    names: list[str] = []
    for c in range(width):
        texts = [
            str(grid[r][c]).strip()
            for r in range(first, last + 1)
            if c < len(grid[r]) and not is_empty(grid[r][c])
        ]
        chosen = next((t for t in reversed(texts) if recognise(t)), texts[-1] if texts else "")
        name = chosen or f"列{c + 1}"
        while name in names:
            name += "'"
        names.append(name)
    rows = [
        (number, [*row[:width], *[None] * (width - len(row))])
        for number, row in enumerate(grid[last + 1 :], start=last + 2)
        if not all(is_empty(c) for c in row)
    ]
    return Table(tuple(names), rows)


def _is_title(row: Sequence[Cell]) -> bool:
    """A title row: one text repeated across the row by a merge, or alone in it."""
    return len({c for c in row if not is_empty(c)}) <= 1
