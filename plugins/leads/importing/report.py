"""The import report: one line per refused or duplicate row, as CSV or XLSX.

Each line has the row number as the spreadsheet shows it, the column, the
reason and the row's own cells, so the report can be corrected and imported
again as it is. CSV is written with a BOM, which Excel needs to show Chinese.
The report holds the rows' personal data, so its file is created mode 0600.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path

from openpyxl import Workbook

from qiao.plugins.leads.importing.reader import Cell
from qiao.plugins.leads.importing.runner import Problem

HEADER = ("行号 row", "列 column", "类型 kind", "原因 reason")
KINDS = {"error": "错误 error", "duplicate": "重复 duplicate"}


def write(path: Path, problems: Sequence[Problem], columns: Sequence[str]) -> None:
    rows = [
        [p.row, p.column or "", KINDS.get(p.kind, p.kind), p.reason, *[_plain(c) for c in p.cells]]
        for p in problems
    ]
    header = [*HEADER, *columns]
    if path.suffix.lower() == ".xlsx":
        book = Workbook(write_only=True)
        sheet = book.create_sheet("问题行")
        sheet.append(header)
        for row in rows:
            sheet.append(row)
        with _private(path).open("wb") as out:
            book.save(out)
        return
    with _private(path).open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)


def _private(path: Path) -> Path:
    """``path`` emptied, or created, with mode 0600 before anything is written to it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    os.close(fd)
    return path


def _plain(cell: Cell) -> str | int | float | bool | dt.date | None:
    if isinstance(cell, float) and cell.is_integer():
        return int(cell)
    if isinstance(cell, dt.time | dt.timedelta):
        return str(cell)
    return cell
