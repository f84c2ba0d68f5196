"""Turning what callers send into the exact values Qiao stores.

Every writer (GraphQL, CLI, importers, connectors) passes its values through
:func:`coerce`, so a phone number, a decimal or a timestamp is checked and
normalised the same way whichever door it came through. Errors are
:class:`ValueError` with a sentence a person can act on; the records service
attaches the field name.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from qiao.core.ids import is_record_id
from qiao.core.metadata.fieldtypes import FieldType
from qiao.core.normalise import normalise_phone, normalise_width

if TYPE_CHECKING:
    from qiao.core.metadata.model import FieldDef

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MAX_JSON_BYTES = 1_000_000
#: Integers travel as GraphQL ``Int``, which is a signed 32-bit number.
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1


def coerce(field: FieldDef, value: Any) -> Any:
    """The stored form of ``value`` for ``field``; ``None`` stays ``None``."""
    if value is None:
        return None
    converter = _CONVERTERS[field.type]
    result = converter(field, value)
    _check_limits(field, result)
    return result


def coerce_for_query(field: FieldDef, value: Any) -> Any:
    """Like :func:`coerce`, without length and range limits: a filter may ask for
    ``amount > -1`` even when amounts cannot be negative."""
    if value is None:
        return None
    return _CONVERTERS[field.type](field, value)


def coerce_default(field: FieldDef) -> Any:
    """The field's declared default in stored form (raises ValueError if it does not fit)."""
    return coerce(field, field.default)


def _string(field: FieldDef, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {_kind(value)}")
    if "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    return value


def _integer(field: FieldDef, value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number, got a boolean")
    if isinstance(value, str):
        value = normalise_width(value).strip()
        if not re.fullmatch(r"[+-]?\d+", value):
            raise ValueError(f"{value!r} is not a whole number")
        value = int(value)
    elif isinstance(value, float | decimal.Decimal):
        if value != int(value):
            raise ValueError(f"{value} is not a whole number")
        value = int(value)
    if not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {_kind(value)}")
    if not INT_MIN <= value <= INT_MAX:
        raise ValueError(f"{value} is out of range: whole numbers go from {INT_MIN} to {INT_MAX}")
    return value


def _decimal(field: FieldDef, value: Any) -> decimal.Decimal:
    if isinstance(value, bool):
        raise ValueError("expected a decimal number, got a boolean")
    if isinstance(value, float):
        # Floats are inexact; repr gives the shortest decimal that round-trips.
        value = repr(value)
    if isinstance(value, str):
        value = normalise_width(value).strip().replace(",", "")
    try:
        number = decimal.Decimal(value)
    except (decimal.InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{value!r} is not a decimal number") from None
    if not number.is_finite():
        raise ValueError("the number must be finite")
    scale = field.effective_scale
    integer_digits = field.effective_precision - scale
    # Checked before quantizing: quantizing a number wider than the decimal context's
    # precision raises InvalidOperation instead of giving a person a reason.
    if number and number.adjusted() >= integer_digits:
        raise ValueError(f"at most {integer_digits} digits before the decimal point are allowed")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    step = decimal.Decimal(1).scaleb(-scale)
    if -exponent > scale and number != number.quantize(step):
        raise ValueError(f"at most {scale} decimal places are allowed")
    # -0.00 and 0.00 are one amount; keep one spelling of it.
    number = abs(number.quantize(step)) if not number else number.quantize(step)
    if abs(number) >= decimal.Decimal(10) ** integer_digits:
        raise ValueError(f"at most {integer_digits} digits before the decimal point are allowed")
    return number


def _boolean(field: FieldDef, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"expected true or false, got {_kind(value)}")


def _date(field: FieldDef, value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        raise ValueError("expected a date without a time")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    raise ValueError(f"expected a date, got {_kind(value)}")


def _datetime(field: FieldDef, value: Any) -> dt.datetime:
    if isinstance(value, str):
        text = value.strip()
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an ISO 8601 date-time") from None
    if not isinstance(value, dt.datetime):
        raise ValueError(f"expected a date-time, got {_kind(value)}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("the date-time needs a time-zone offset, such as +08:00 or Z")
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("the date-time is outside the years 1 to 9999 in UTC") from None


def _enum(field: FieldDef, value: Any) -> str:
    if hasattr(value, "value") and not isinstance(value, str):
        value = value.value
    if not isinstance(value, str) or value not in field.enum_values:
        allowed = ", ".join(field.enum_values)
        raise ValueError(f"{value!r} is not one of: {allowed}")
    return value


def _email(field: FieldDef, value: Any) -> str:
    text = normalise_width(_string(field, value)).strip()
    if not _EMAIL_RE.match(text):
        raise ValueError(f"{text!r} is not an e-mail address")
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}"


def _phone(field: FieldDef, value: Any) -> str:
    return normalise_phone(_string(field, value))


def _url(field: FieldDef, value: Any) -> str:
    text = _string(field, value).strip()
    parts = urlsplit(text)
    if any(c.isspace() for c in text):
        raise ValueError(f"{text!r} contains spaces; encode them as %20")
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(f"{text!r} is not an http(s) URL")
    return text


def _json(field: FieldDef, value: Any) -> Any:
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        raise ValueError("the value is not representable as JSON") from None
    if len(encoded.encode()) > _MAX_JSON_BYTES:
        raise ValueError("the JSON value is larger than 1 MB")
    # What was encoded is what is stored: tuples become lists, number keys strings.
    return json.loads(encoded)


def _relation(field: FieldDef, value: Any) -> str:
    if not is_record_id(value):
        raise ValueError(f"{value!r} is not a record id")
    return value


_CONVERTERS = {
    FieldType.STRING: _string,
    FieldType.TEXT: _string,
    FieldType.INTEGER: _integer,
    FieldType.DECIMAL: _decimal,
    FieldType.BOOLEAN: _boolean,
    FieldType.DATE: _date,
    FieldType.DATETIME: _datetime,
    FieldType.ENUM: _enum,
    FieldType.EMAIL: _email,
    FieldType.PHONE: _phone,
    FieldType.URL: _url,
    FieldType.JSON: _json,
    FieldType.RELATION: _relation,
}


def _check_limits(field: FieldDef, value: Any) -> None:
    if isinstance(value, str) and field.type is not FieldType.RELATION:
        limit = field.effective_max_length
        if limit is not None and len(value) > limit:
            raise ValueError(f"at most {limit} characters are allowed, got {len(value)}")
        if field.min_length is not None and len(value) < field.min_length:
            raise ValueError(f"at least {field.min_length} characters are required")
    if isinstance(value, int | decimal.Decimal) and not isinstance(value, bool):
        if field.min is not None and value < field.min:
            raise ValueError(f"must be at least {field.min}")
        if field.max is not None and value > field.max:
            raise ValueError(f"must be at most {field.max}")


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def to_json(field: FieldDef, value: Any) -> Any:
    """The API form of a stored value: decimals and instants as exact strings."""
    if value is None:
        return None
    if field.type is FieldType.DECIMAL:
        return str(value)
    if field.type is FieldType.DATETIME:
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    if field.type is FieldType.DATE:
        return value.isoformat()
    return value
