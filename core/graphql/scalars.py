"""Custom scalars whose wire form is exact: decimals and instants travel as strings.

Values compiled by the database already arrive in wire form (strings), while
plugin resolvers return Python objects; serialisation accepts both.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any, NewType

import strawberry
from strawberry.scalars import JSON


def _serialize_datetime(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return str(value)


def _serialize_date(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _parse_datetime(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime takes an ISO 8601 string such as 2026-11-25T09:30:00+08:00")
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("DateTime needs a time-zone offset, such as +08:00 or Z")
    try:
        return parsed.astimezone(dt.UTC)  # in range in UTC too, or refused here
    except OverflowError:
        raise ValueError(f"{value!r} is outside the years 1 to 9999 in UTC") from None


def _parse_date(value: Any) -> dt.date:
    if not isinstance(value, str):
        raise ValueError("Date takes a string such as 2026-11-25")
    return dt.date.fromisoformat(value)


def _parse_decimal(value: Any) -> decimal.Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError('Decimal takes a string such as "1234.50"')
    try:
        number = decimal.Decimal(repr(value) if isinstance(value, float) else value)
    except decimal.InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None
    if not number.is_finite():
        raise ValueError("Decimal must be finite")
    return number


DateTime = NewType("DateTime", dt.datetime)
Date = NewType("Date", dt.date)
Decimal = NewType("Decimal", decimal.Decimal)

#: Strawberry's ``scalar_map``: how each of Qiao's scalar types travels on the wire.
SCALAR_MAP = {
    DateTime: strawberry.scalar(
        name="DateTime",
        description="An instant with a time-zone offset, ISO 8601; returned in UTC.",
        serialize=_serialize_datetime,
        parse_value=_parse_datetime,
    ),
    Date: strawberry.scalar(
        name="Date",
        description="A calendar date, ISO 8601 (YYYY-MM-DD).",
        serialize=_serialize_date,
        parse_value=_parse_date,
    ),
    Decimal: strawberry.scalar(
        name="Decimal",
        description='An exact decimal number as a string, e.g. "1234.50" (money is in CNY).',
        serialize=str,
        parse_value=_parse_decimal,
    ),
}

__all__ = ["JSON", "SCALAR_MAP", "Date", "DateTime", "Decimal"]
