"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has no exact decimal, no time-zone-aware timestamp and no UUID type, so
these decorators choose a faithful storage form per dialect: decimals become
integers scaled by 10**scale (exact, ordered, summable), timestamps become
fixed-width UTC ISO strings (ordered as text), ids become 36-character strings.
PostgreSQL gets its native NUMERIC, TIMESTAMPTZ and UUID.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Numeric, String, TypeDecorator
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeEngine

UTC_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"


def utc_text(value: dt.datetime) -> str:
    """An instant as fixed-width UTC ISO text: :data:`UTC_FORMAT`, the year always 4 digits.

    (``%Y`` writes the year 999 as "999" on some platforms, which then neither
    parses back nor sorts with the others.)
    """
    value = value.astimezone(dt.UTC)
    return f"{value.year:04d}" + value.strftime(UTC_FORMAT.removeprefix("%Y"))


class ExactDecimal(TypeDecorator[decimal.Decimal]):
    """A fixed-point decimal: NUMERIC(p, s) on PostgreSQL, scaled BIGINT on SQLite."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__()
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return to_scaled_int(decimal.Decimal(value), self.scale)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> decimal.Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return decimal.Decimal(int(value)).scaleb(-self.scale)
        return decimal.Decimal(value).quantize(decimal.Decimal(1).scaleb(-self.scale))


def to_scaled_int(value: decimal.Decimal, scale: int) -> int:
    """``Decimal('12.5')`` at scale 2 -> ``1250``; refuses to drop digits."""
    scaled = value.scaleb(scale)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more than {scale} decimal places")
    return int(scaled)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """An instant: TIMESTAMPTZ on PostgreSQL, fixed-width UTC ISO text on SQLite."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("a datetime needs a time zone")
        value = value.astimezone(dt.UTC)
        return utc_text(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return dt.datetime.fromisoformat(value)
        return value.astimezone(dt.UTC)


class RecordId(TypeDecorator[str]):
    """A record id (UUID text form): native UUID on PostgreSQL, CHAR(36) on SQLite."""

    impl = String(36)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.UUID(as_uuid=False))
        return dialect.type_descriptor(String(36))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value)
