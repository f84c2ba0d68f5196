"""Value coercion: what each field type accepts, how it is normalised, and what it refuses."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qiao.core.errors import BadUserInput
from qiao.core.ids import new_id
from qiao.core.metadata.model import FieldDef
from qiao.core.metadata.values import (
    INT_MAX,
    INT_MIN,
    coerce,
    coerce_default,
    coerce_for_query,
    normalise_width,
    to_json,
)
from qiao.core.normalise import normalise_phone, parse_phone
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime

LABEL = {"en": "Label", "zh-CN": "标签"}
D = decimal.Decimal


def fld(type_: str, **options: Any) -> FieldDef:
    return FieldDef.model_validate({"name": "x", "type": type_, "label": LABEL, **options})


def refused(field: FieldDef, value: Any, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        coerce(field, value)
    assert fragment in str(caught.value), str(caught.value)


def test_none_is_kept_for_every_type() -> None:
    for type_ in ("string", "integer", "decimal", "boolean", "date", "json", "phone"):
        assert coerce(fld(type_), None) is None
        assert coerce_for_query(fld(type_), None) is None


# -- Strings --------------------------------------------------------------------------------


def test_strings_are_kept_as_given() -> None:
    assert coerce(fld("string"), "  苏州精工  ") == "  苏州精工  "
    assert coerce(fld("text"), "第一行\n第二行") == "第一行\n第二行"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [(5, "expected text, got a number"), (True, "got a boolean"), (["a"], "got a list")],
)
def test_strings_refuse_other_types(value: Any, fragment: str) -> None:
    refused(fld("string"), value, fragment)


def test_strings_refuse_nul_characters() -> None:
    refused(fld("text"), "a\x00b", "NUL")


def test_lengths_count_characters_not_bytes() -> None:
    name = fld("string", max_length=4, min_length=2)
    assert coerce(name, "精工机械") == "精工机械"
    refused(name, "精工机械厂", "at most 4 characters are allowed, got 5")
    refused(name, "精", "at least 2 characters are required")
    assert coerce(name, "🙂🙂") == "🙂🙂"


def test_default_maximum_lengths() -> None:
    assert coerce(fld("string"), "字" * 255)
    refused(fld("string"), "字" * 256, "at most 255 characters")
    assert coerce(fld("text"), "x" * 100_000)


def test_queries_ignore_length_limits() -> None:
    assert coerce_for_query(fld("string", max_length=2), "abc") == "abc"


# -- Integers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42, 42),
        (-7, -7),
        ("12", 12),
        (" +5 ", 5),
        ("１２３", 123),
        (3.0, 3),
        (D("2.00"), 2),
        (INT_MAX, 2**31 - 1),
        (INT_MIN, -(2**31)),
    ],
)
def test_integers_accept_whole_numbers(value: Any, expected: int) -> None:
    result = coerce(fld("integer"), value)
    assert result == expected and type(result) is int


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (1.5, "is not a whole number"),
        ("1.5", "is not a whole number"),
        ("1e3", "is not a whole number"),
        ("", "is not a whole number"),
        (True, "got a boolean"),
        ([1], "got a list"),
        (2**31, "2147483648 is out of range"),
        (-(2**31) - 1, "-2147483649 is out of range"),
        ("9999999999", "out of range"),
    ],
)
def test_integers_refuse_fractions_other_types_and_values_beyond_graphql_int(
    value: Any, fragment: str
) -> None:
    refused(fld("integer"), value, fragment)


def test_integer_ranges() -> None:
    probability = fld("integer", min=0, max=100)
    assert coerce(probability, 100) == 100
    refused(probability, 101, "must be at most 100")
    refused(probability, -1, "must be at least 0")
    assert coerce_for_query(probability, -1) == -1


@given(st.integers())
def test_any_integer_is_stored_exactly_or_refused_by_range(value: int) -> None:
    if INT_MIN <= value <= INT_MAX:
        assert coerce(fld("integer"), value) == value
        assert coerce(fld("integer"), str(value)) == value
    else:
        refused(fld("integer"), value, "out of range")


# -- Decimals -------------------------------------------------------------------------------


def test_money_has_two_places_by_default() -> None:
    amount = fld("decimal", currency="CNY")
    assert coerce(amount, "1234.5") == D("1234.50")
    assert str(coerce(amount, 7)) == "7.00"
    assert to_json(amount, coerce(amount, "1234.5")) == "1234.50"


def test_decimals_are_exact() -> None:
    amount = fld("decimal")
    total = coerce(amount, "0.1") + coerce(amount, "0.2")
    assert total == D("0.3")
    assert coerce(amount, 0.1) + coerce(amount, 0.2) == D("0.30")
    assert coerce(amount, "99999999999999.99") == D("99999999999999.99")
    assert coerce(amount, 1234567.89) == D("1234567.89")


def test_decimals_refuse_more_places_than_the_scale_instead_of_rounding() -> None:
    amount = fld("decimal", scale=2)
    refused(amount, "1.005", "at most 2 decimal places are allowed")
    refused(amount, 0.125, "at most 2 decimal places are allowed")
    refused(amount, "1e-5", "at most 2 decimal places")
    assert coerce(amount, "1.500") == D("1.50")
    assert coerce(fld("decimal", precision=10, scale=0), "12.0") == D("12")


def test_decimal_precision_limits_the_integer_digits() -> None:
    small = fld("decimal", precision=4, scale=2)
    assert coerce(small, "99.99") == D("99.99")
    assert coerce(small, "-99.99") == D("-99.99")
    refused(small, "100", "at most 2 digits before the decimal point")
    refused(fld("decimal"), "1" + "0" * 16, "at most 16 digits before the decimal point")


@pytest.mark.parametrize("value", ["1e100", "9" * 40, "9" * 30 + ".5", D("1E+30"), 10**40, 1e300])
def test_huge_decimals_are_refused_with_a_reason(value: Any) -> None:
    refused(fld("decimal"), value, "digits before the decimal point")


def test_decimal_input_forms() -> None:
    amount = fld("decimal")
    assert coerce(amount, "１２３．４５") == D("123.45")
    assert coerce(amount, "1,234,567.80") == D("1234567.80")
    assert coerce(amount, " 12 ") == D("12.00")
    assert coerce(amount, "1E+2") == D("100.00")
    assert str(coerce(amount, "-0.00")) == "0.00"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("abc", "is not a decimal number"),
        ("", "is not a decimal number"),
        ("NaN", "must be finite"),
        ("Infinity", "must be finite"),
        (float("inf"), "must be finite"),
        (True, "got a boolean"),
        ([1], "is not a decimal number"),
    ],
)
def test_decimals_refuse_what_is_not_a_number(value: Any, fragment: str) -> None:
    refused(fld("decimal"), value, fragment)


def test_decimal_ranges() -> None:
    price = fld("decimal", min=0, max="9999.99", precision=10, scale=2)
    refused(price, "-0.01", "must be at least 0")
    refused(price, "10000", "must be at most 9999.99")
    assert coerce_for_query(price, "-1") == D("-1.00")


_SCALES = st.integers(min_value=0, max_value=6)


@given(_SCALES, st.data())
def test_decimals_within_precision_and_scale_round_trip_exactly(scale: int, data: Any) -> None:
    precision = 18
    field = fld("decimal", precision=precision, scale=scale)
    limit = 10 ** (precision - scale) - 1
    whole = data.draw(st.integers(min_value=-limit, max_value=limit))
    places = data.draw(st.integers(min_value=0, max_value=10**scale - 1)) if scale else 0
    sign = "-" if whole < 0 else ""
    text = f"{sign}{abs(whole)}" + (f".{places:0{scale}d}" if scale else "")
    stored = coerce(field, text)
    assert stored == D(text)
    assert stored.as_tuple().exponent == -scale
    assert coerce(field, to_json(field, stored)) == stored


@given(st.decimals(allow_nan=False, allow_infinity=False, places=4))
def test_decimals_with_extra_places_are_never_rounded(value: decimal.Decimal) -> None:
    field = fld("decimal", scale=2)
    try:
        stored = coerce(field, value)
    except ValueError as exc:
        if abs(value) >= 10**16:
            assert "at most 16 digits before the decimal point" in str(exc)
        else:
            assert value != value.quantize(D("0.01"))
            assert "at most 2 decimal places" in str(exc)
    else:
        assert stored == value


# -- Booleans, dates and date-times ---------------------------------------------------------


def test_booleans_are_strict() -> None:
    assert coerce(fld("boolean"), True) is True
    assert coerce(fld("boolean"), False) is False
    refused(fld("boolean"), "true", "expected true or false, got text")
    refused(fld("boolean"), 1, "expected true or false, got a number")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-02-29", dt.date(2024, 2, 29)),
        (" 2026-11-25 ", dt.date(2026, 11, 25)),
        (dt.date(2025, 1, 1), dt.date(2025, 1, 1)),
    ],
)
def test_dates(value: Any, expected: dt.date) -> None:
    assert coerce(fld("date"), value) == expected
    assert to_json(fld("date"), expected) == expected.isoformat()


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2023-02-29", "is not a date (YYYY-MM-DD)"),
        ("2024/01/01", "is not a date"),
        ("2024-1-1", "is not a date"),
        (dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "expected a date without a time"),
        (20240101, "expected a date, got a number"),
    ],
)
def test_bad_dates_are_refused(value: Any, fragment: str) -> None:
    refused(fld("date"), value, fragment)


def test_datetimes_are_converted_to_utc() -> None:
    when = fld("datetime")
    beijing = coerce(when, "2026-11-25T09:30:00+08:00")
    assert beijing == dt.datetime(2026, 11, 25, 1, 30, tzinfo=dt.UTC)
    assert beijing.utcoffset() == dt.timedelta(0)
    assert coerce(when, "2026-11-25T01:30:00Z") == beijing
    aware = dt.datetime(2026, 11, 25, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert coerce(when, aware) == beijing
    assert to_json(when, beijing) == "2026-11-25T01:30:00.000000+00:00"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2026-11-25T09:30:00", "needs a time-zone offset, such as +08:00 or Z"),
        (dt.datetime(2026, 11, 25, 9, 30), "needs a time-zone offset"),
        ("yesterday", "is not an ISO 8601 date-time"),
        (dt.date(2026, 11, 25), "expected a date-time, got date"),
        (1700000000, "expected a date-time, got a number"),
        ("0001-01-01T00:00:00+08:00", "outside the years 1 to 9999"),
        ("9999-12-31T23:00:00-08:00", "outside the years 1 to 9999"),
    ],
)
def test_bad_datetimes_are_refused(value: Any, fragment: str) -> None:
    refused(fld("datetime"), value, fragment)


_OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)


@given(
    st.datetimes(
        min_value=dt.datetime(1900, 1, 1),
        max_value=dt.datetime(2200, 1, 1),
        timezones=_OFFSETS,
    )
)
def test_any_aware_datetime_is_the_same_instant_in_utc(value: dt.datetime) -> None:
    stored = coerce(fld("datetime"), value)
    assert stored.tzinfo is dt.UTC
    assert stored == value
    assert coerce(fld("datetime"), to_json(fld("datetime"), stored)) == stored


# -- Picklists ------------------------------------------------------------------------------


STAGE = fld(
    "enum",
    values=[
        {"value": "NEW", "label": {"en": "New", "zh-CN": "新建"}},
        {"value": "CLOSED_WON", "label": {"en": "Won", "zh-CN": "赢单"}},
    ],
)


class Stage(enum.Enum):
    NEW = "NEW"


def test_enums_accept_declared_values_only() -> None:
    assert coerce(STAGE, "CLOSED_WON") == "CLOSED_WON"
    assert coerce(STAGE, Stage.NEW) == "NEW"
    refused(STAGE, "closed_won", "'closed_won' is not one of: NEW, CLOSED_WON")
    refused(STAGE, "赢单", "is not one of")
    refused(STAGE, 1, "is not one of")


def test_enum_defaults() -> None:
    with_default = fld("enum", values=[{"value": "A"}, {"value": "B"}], default="B")
    assert coerce_default(with_default) == "B"


# -- E-mail, URL and phone ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Zhang.San@Example.COM", "Zhang.San@example.com"),
        (" li@qiao.cn ", "li@qiao.cn"),
        ("ｗａｎｇ＠ｅｘａｍｐｌｅ．ｃｎ", "wang@example.cn"),
        ("sales+cn@mail.公司.中国", "sales+cn@mail.公司.中国"),
    ],
)
def test_emails_are_normalised(value: str, expected: str) -> None:
    assert coerce(fld("email"), value) == expected


@pytest.mark.parametrize("value", ["no-at-sign", "a@b", "a b@c.cn", "@example.com", "a@"])
def test_bad_emails_are_refused(value: str) -> None:
    refused(fld("email"), value, "is not an e-mail address")


@pytest.mark.parametrize(
    "value", ["https://qiao.example.cn", "http://localhost:8000/x?a=1", "https://例子.中国/路径"]
)
def test_http_urls_are_accepted(value: str) -> None:
    assert coerce(fld("url"), value) == value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("example.com", "is not an http(s) URL"),
        ("ftp://example.com", "is not an http(s) URL"),
        ("javascript:alert(1)", "is not an http(s) URL"),
        ("http://", "is not an http(s) URL"),
        ("https://example.com/a b", "contains spaces"),
    ],
)
def test_bad_urls_are_refused(value: str, fragment: str) -> None:
    refused(fld("url"), value, fragment)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("0086 13800138000", "+8613800138000"),
        ("１３８００１３８０００", "+8613800138000"),
        ("＋８６ １３８００１３８０００", "+8613800138000"),
        ("19912345678", "+8619912345678"),
        ("010-12345678", "+861012345678"),
        ("(0755) 8888 8888", "+8675588888888"),
        ("0512 6532 8888", "+8651265328888"),
        ("+86 21 6666 6666", "+862166666666"),
        ("400-800-1234", "+864008001234"),
        ("+1 650 253 0000", "+16502530000"),
        ("+852 2123 4567", "+85221234567"),
    ],
)
def test_phones_are_stored_in_e164_with_china_as_the_default(value: str, expected: str) -> None:
    assert coerce(fld("phone"), value) == expected


@pytest.mark.parametrize(
    "value",
    ["13800138000", "(0755) 8888 8888", "400-800-1234", "+1 650 253 0000", "+852 2123 4567"],
)
def test_a_numbers_e164_form_normalises_to_itself_as_remembered(value: str) -> None:
    """normalise_phone remembers the E.164 form it gives as its own normal form; parsing
    that form afresh must agree."""
    e164 = normalise_phone(value)
    assert parse_phone(e164) == e164
    assert normalise_phone(e164) == e164


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("12345", "is not a valid phone number"),
        ("1380013800", "is not a valid phone number"),
        ("12345678", "is not a valid phone number"),
        ("call me", "is not a phone number"),
        ("+86 10 1234 5678 ext. 9", "has an extension"),
        (13800138000, "expected text, got a number"),
    ],
)
def test_bad_phones_are_refused(value: Any, fragment: str) -> None:
    refused(fld("phone"), value, fragment)


_MOBILE_PREFIXES = st.sampled_from(["130", "135", "138", "139", "150", "158", "186", "199"])


@given(_MOBILE_PREFIXES, st.integers(min_value=0, max_value=99_999_999), st.data())
def test_any_spelling_of_a_chinese_mobile_gives_one_e164_number(
    prefix: str, rest: int, data: Any
) -> None:
    digits = f"{prefix}{rest:08d}"
    expected = f"+86{digits}"
    spelling = data.draw(
        st.sampled_from(
            [
                digits,
                f"{digits[:3]} {digits[3:7]} {digits[7:]}",
                f"{digits[:3]}-{digits[3:7]}-{digits[7:]}",
                f"+86{digits}",
                f"+86 {digits}",
                f"0086{digits}",
                normalise_width(digits).translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"}),
            ]
        )
    )
    assert coerce(fld("phone"), spelling) == expected


def test_normalise_width_turns_full_width_ascii_half_width() -> None:
    assert normalise_width("１３８ＡＢＣ＠．") == "138ABC@."
    assert normalise_width("苏州") == "苏州"


# -- JSON and relations ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [{"a": 1, "b": [1, 2, {"c": None}]}, [1, "二", True], {"客户": "苏州"}, "text", 3, False, []],
)
def test_json_accepts_any_json_value(value: Any) -> None:
    assert coerce(fld("json"), value) == value


def test_json_is_stored_as_it_will_read_back() -> None:
    assert coerce(fld("json"), {"a": (1, 2), 3: "x"}) == {"a": [1, 2], "3": "x"}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (float("nan"), "not representable as JSON"),
        ({"a": {1, 2}}, "not representable as JSON"),
        ({"when": dt.date(2024, 1, 1)}, "not representable as JSON"),
        ("x" * 1_000_001, "larger than 1 MB"),
    ],
)
def test_json_refuses_what_json_cannot_hold(value: Any, fragment: str) -> None:
    refused(fld("json"), value, fragment)


def test_relations_take_record_ids() -> None:
    owner = fld("relation", target="user")
    record_id = new_id()
    assert coerce(owner, record_id) == record_id
    refused(owner, "not-an-id", "is not a record id")
    refused(owner, 42, "is not a record id")


def test_to_json_gives_exact_wire_forms() -> None:
    assert to_json(fld("decimal", scale=4), D("1.2300")) == "1.2300"
    assert to_json(fld("integer"), 5) == 5
    assert to_json(fld("json"), {"a": 1}) == {"a": 1}
    assert to_json(fld("string"), None) is None
    json.dumps(to_json(fld("datetime"), dt.datetime(2024, 1, 1, tzinfo=dt.UTC)))


# -- Through the records service ------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "field", "fragment"),
    [
        ({"employees": 2**31}, "employees", "out of range"),
        ({"annual_revenue": "1.005"}, "annual_revenue", "at most 2 decimal places"),
        ({"annual_revenue": "1e40"}, "annual_revenue", "digits before the decimal point"),
        ({"phone": "12345"}, "phone", "not a valid phone number"),
    ],
)
def test_the_service_names_the_field_and_writes_nothing(
    qiao_runtime: Runtime,
    count_rows: Any,
    values: dict[str, Any],
    field: str,
    fragment: str,
) -> None:
    records = qiao_runtime.records
    with (
        pytest.raises(BadUserInput) as caught,
        records.transaction(Actor.system(), Source.SYSTEM) as ctx,
    ):
        records.create(ctx, "account", {"name": "苏州精工", **values})
    assert caught.value.field == field
    assert caught.value.extensions()["code"] == "BAD_USER_INPUT"
    assert fragment in caught.value.message
    assert caught.value.message.startswith(f"{field}: ")
    assert count_rows("account") == 0
