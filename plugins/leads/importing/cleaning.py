"""From a spreadsheet cell to a value the records service accepts, or a reason why not.

Spreadsheets carry numbers as floats (a phone number becomes 13800138000.0),
dates as serial numbers or as text in half a dozen spellings, digits in
full width, phone numbers with +86, 0086, spaces and dashes, picklist values
as their Chinese labels. Each cell is cleaned for its target field's type
here; the records service then checks the value exactly as for any writer.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from qiao.api import FieldDef, FieldType, normalise_phone, normalise_width
from qiao.plugins.leads.importing.reader import Cell, is_empty

#: Excel's day zero (1900 date system, including its phantom 29 February 1900).
EXCEL_EPOCH = dt.date(1899, 12, 30)
#: Naive date-times in a sheet are read in this zone (China Standard Time).
SHEET_TIMEZONE = ZoneInfo("Asia/Shanghai")
_DATE_TEXT = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_PHONE_SPLIT = re.compile(r"[/,;，；、|]|\s{2,}")
_TRUE = {"是", "有", "yes", "y", "true", "t", "1", "√", "✓", "对"}
_FALSE = {"否", "无", "no", "n", "false", "f", "0", "×", "✗", "不"}
#: Picklist words seen in lead sources, beyond the values' own labels.
ENUM_SYNONYMS: dict[str, dict[str, str]] = {
    "source": {
        "展会": "TRADE_SHOW",
        "展览": "TRADE_SHOW",
        "会展": "TRADE_SHOW",
        "公众号": "WECHAT",
        "微信": "WECHAT",
        "小程序": "WECHAT",
        "官网": "WEB_FORM",
        "网站": "WEB_FORM",
        "表单": "WEB_FORM",
        "400": "HOTLINE",
        "热线": "HOTLINE",
        "电话": "HOTLINE",
        "介绍": "REFERRAL",
        "推荐": "REFERRAL",
        "导入": "IMPORT",
    }
}


def cleaner(field: FieldDef) -> Callable[[Cell], Any]:
    """A function from a cell to the field's input value (``None`` for an empty cell)."""
    convert = _BY_TYPE.get(field.type, _text)

    def clean(cell: Cell) -> Any:
        if is_empty(cell):
            return None
        if isinstance(cell, str):
            cell = cell.strip().removeprefix("'").strip()
        return convert(field, cell)

    return clean


def _text(field: FieldDef, cell: Cell) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, dt.datetime | dt.date):
        return cell.isoformat()
    return str(cell).replace("\u3000", " ").strip()


def _phone(field: FieldDef, cell: Cell) -> str:
    if isinstance(cell, float):
        if not cell.is_integer():
            raise ValueError(f"{cell} is not a phone number")
        return normalise_phone(str(int(cell)))
    if isinstance(cell, int):
        return normalise_phone(str(cell))
    text = normalise_width(str(cell)).strip()
    if re.fullmatch(r"\d(\.\d+)?e\+\d+", text.lower()):
        raise ValueError(
            f"{text!r} lost its digits to Excel's scientific notation; format the column as text"
        )
    candidates = [t.strip() for t in _PHONE_SPLIT.split(text) if t.strip()]
    errors = []
    for candidate in candidates or [text]:
        try:
            return normalise_phone(candidate)
        except ValueError as exc:
            errors.append(str(exc))
    raise ValueError(errors[0])


def _number(field: FieldDef, cell: Cell) -> Any:
    if isinstance(cell, float) and field.type is FieldType.INTEGER and cell.is_integer():
        return int(cell)
    if isinstance(cell, str):
        text = normalise_width(cell).strip().replace(",", "").replace("，", "")
        for unit, factor in (("万", 10_000), ("亿", 100_000_000)):
            if text.endswith(unit):
                try:
                    text = str(decimal.Decimal(text.removesuffix(unit)) * factor)
                except decimal.InvalidOperation:
                    raise ValueError(f"{cell!r} is not a number") from None
        if field.type is FieldType.INTEGER and re.fullmatch(r"[+-]?\d+\.0*", text):
            return int(float(text))
        return text
    return cell


def _date(field: FieldDef, cell: Cell) -> Any:
    if isinstance(cell, dt.datetime):
        return cell.date()
    if isinstance(cell, dt.date):
        return cell
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        return EXCEL_EPOCH + dt.timedelta(days=int(cell))
    text = normalise_width(str(cell)).strip()
    if re.fullmatch(r"\d{5}(\.\d+)?", text):
        return EXCEL_EPOCH + dt.timedelta(days=int(float(text)))
    found = _DATE_TEXT.match(text) or _COMPACT_DATE.match(text)
    if found:
        year, month, day = (int(g) for g in found.groups())
        try:
            return dt.date(year, month, day)
        except ValueError:
            raise ValueError(f"{text!r} is not a real date") from None
    return text


def _datetime(field: FieldDef, cell: Cell) -> Any:
    if isinstance(cell, dt.datetime):
        return cell if cell.tzinfo else cell.replace(tzinfo=SHEET_TIMEZONE)
    if isinstance(cell, dt.date):
        return dt.datetime.combine(cell, dt.time(), SHEET_TIMEZONE)
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        moment = dt.datetime.combine(EXCEL_EPOCH, dt.time()) + dt.timedelta(days=float(cell))
        return moment.replace(tzinfo=SHEET_TIMEZONE)
    text = normalise_width(str(cell)).strip().replace("/", "-")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        day = _date(field, text)
        if isinstance(day, dt.date):
            return dt.datetime.combine(day, dt.time(), SHEET_TIMEZONE)
        return text
    return moment if moment.tzinfo else moment.replace(tzinfo=SHEET_TIMEZONE)


def _enum(field: FieldDef, cell: Cell) -> str:
    text = normalise_width(_text(field, cell)).strip()
    for value in field.values:
        names = {value.value.lower()}
        if value.label is not None:
            names |= {n.lower() for n in (value.label.en, value.label.zh_cn) if n}
        if text.lower() in names:
            return value.value
    for word, value_name in ENUM_SYNONYMS.get(field.name, {}).items():
        if word in text and value_name in field.enum_values:
            return value_name
    allowed = "、".join((v.label.zh_cn or v.value) if v.label else v.value for v in field.values)
    raise ValueError(f"{text!r} is not one of: {allowed}")


def _boolean(field: FieldDef, cell: Cell) -> bool:
    if isinstance(cell, bool):
        return cell
    text = normalise_width(_text(field, cell)).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{text!r} is not yes or no (是/否)")


def _json(field: FieldDef, cell: Cell) -> Any:
    text = _text(field, cell)
    return [t.strip() for t in re.split(r"[,，;；、]", text) if t.strip()]


_BY_TYPE: dict[FieldType, Callable[[FieldDef, Cell], Any]] = {
    FieldType.STRING: _text,
    FieldType.TEXT: _text,
    FieldType.URL: _text,
    FieldType.EMAIL: lambda f, c: normalise_width(_text(f, c)).removeprefix("mailto:"),
    FieldType.PHONE: _phone,
    FieldType.INTEGER: _number,
    FieldType.DECIMAL: _number,
    FieldType.DATE: _date,
    FieldType.DATETIME: _datetime,
    FieldType.ENUM: _enum,
    FieldType.BOOLEAN: _boolean,
    FieldType.JSON: _json,
}
