"""The language itself: syntax, precedence, types, NULL rules, rounding and dates."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qiao.core.formula import (
    Clock,
    FieldInfo,
    FormulaSyntaxError,
    FormulaTypeError,
    check,
    decimal_type,
    evaluate,
)
from qiao.core.formula.types import BOOLEAN, DATE, DATETIME, INTEGER, STRING

D = decimal.Decimal
FIELDS = {
    ("amount",): FieldInfo(decimal_type(2)),
    ("rate",): FieldInfo(decimal_type(4)),
    ("qty",): FieldInfo(INTEGER),
    ("name",): FieldInfo(STRING),
    ("stage",): FieldInfo(STRING, enum_values=("OPEN", "CLOSED_WON")),
    ("flag",): FieldInfo(BOOLEAN),
    ("close_date",): FieldInfo(DATE),
    ("due_at",): FieldInfo(DATETIME),
    ("account", "region"): FieldInfo(STRING),
    ("account", "owner", "display_name"): FieldInfo(STRING),
}
NOON = Clock(now=lambda: dt.datetime(2026, 3, 31, 17, 30, tzinfo=dt.UTC))


def value(text: str, clock: Clock = NOON, **values: Any) -> Any:
    formula = check(text, FIELDS.get)
    given_values = dict.fromkeys(formula.fields) | {
        k.replace("__", "."): v for k, v in values.items()
    }
    return evaluate(formula, given_values, clock)


def refused(text: str) -> str:
    with pytest.raises((FormulaSyntaxError, FormulaTypeError)) as caught:
        check(text, FIELDS.get)
    return str(caught.value)


# -- Syntax ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("-2 * 3 + 1", -5),
        ("10 - 4 - 3", 3),
        ("2 * -3", -6),
        ("- - 4", 4),
        ("1 + 2 = 3", True),
        ('"a" & "b" = "ab"', True),
        ("1 <> 2", True),
        ("1 != 2", True),
        ("if(true, 1, 2)", 1),
        ('"说 ""好"""', '说 "好"'),
    ],
)
def test_precedence_and_literals_follow_excel(text: str, expected: Any) -> None:
    assert value(text) == expected


def test_numbers_are_exact_decimals() -> None:
    assert value("0.1 + 0.2") == D("0.3")
    assert value("0.1 + 0.2 = 0.3") is True
    assert value("1.10 * 3") == D("3.30")
    assert check("1.10 * 3", FIELDS.get).type == decimal_type(2)


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("1 +", "ends too early; expected a value", 4),
        ("(1 + 2", "expected ')'", 7),
        ("1 < 2 < 3", "comparisons do not chain", 7),
        ("金额 * 2", "field names are snake_case ASCII", 1),
        ('"open', 'no closing "', 1),
        ("round(1 2)", "unexpected '2'; expected an operator, ',' or ')'", 9),
        ("amount amount", "unexpected 'amount'", 8),
    ],
)
def test_syntax_errors_point_at_the_place(text: str, message: str, column: int) -> None:
    error = refused(text)
    assert message in error
    assert f"line 1, column {column}:" in error
    caret_line = error.splitlines()[-1]
    assert caret_line.index("^") == column + 1  # two spaces of indent, 1-based column


def test_errors_on_later_lines_name_the_line() -> None:
    error = refused("IF(flag,\n   amount,\n   name)")
    assert error.startswith("line 1, column 1: IF's results must be of one type")
    error = refused("IF(flag,\n   amount + name,\n   0)")
    assert error.splitlines()[0] == "line 2, column 11: cannot add decimal and text"
    assert error.splitlines()[1:] == ["     amount + name,", "            ^"]


# -- Types ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name + amount", "column 6: cannot add text and decimal"),
        ("amount - name", "column 8: cannot subtract text from decimal"),
        ("amount & name", "column 8: & joins text; its left side is decimal"),
        ("flag < TRUE", "boolean values have no order"),
        ("close_date = due_at", "cannot compare date with date-time"),
        ("amount = NULL", "use ISBLANK"),
        ("unknown_field * 2", "column 1: unknown field unknown_field"),
        ("account.country", "unknown field account.country"),
        ("Amount * 2", "'Amount' is not a field name"),
        ("FOO(1)", "unknown function FOO"),
        ("IF(flag, 1)", "IF takes 3 arguments, got 2"),
        ("TODAY(1)", "TODAY takes no arguments, got 1"),
        ("ROUND(amount, qty)", "ROUND's places must be a whole number"),
        ("IF(amount, 1, 2)", "IF needs a condition"),
        ('stage = "WON"', "stage has no value 'WON'; its values are OPEN, CLOSED_WON"),
        ('CASE(stage, "LOST", 1, 0)', "stage has no value 'LOST'"),
        ("CASE(qty, 1, 2)", "CASE takes at least 4 arguments, got 3"),
        ('CASE(qty, "1", 2, 3)', "CASE compares integer with text"),
        ('DATEDIFF("week", close_date, TODAY())', "DATEDIFF's unit must be one of"),
        ("YEAR(due_at)", "YEAR needs a date, not date-time"),
        ("MIN(name, name)", "MIN needs numbers, dates or date-times, not text"),
        ("NULL", "always NULL"),
    ],
)
def test_type_errors_name_the_problem(text: str, message: str) -> None:
    assert message in refused(text)


@pytest.mark.parametrize(
    ("text", "type_"),
    [
        ("qty * 2", "integer"),
        ("qty / 2", "decimal(6)"),
        ("amount * rate", "decimal(6)"),
        ("amount + rate", "decimal(4)"),
        ("ROUND(amount * rate, 2)", "decimal(2)"),
        ("IF(flag, qty, amount)", "decimal(2)"),
        ("close_date + 30", "date"),
        ("TODAY() - close_date", "integer"),
        ("account.owner.display_name & name", "string"),
        ("ISBLANK(account.region)", "boolean"),
    ],
)
def test_result_types_are_inferred(text: str, type_: str) -> None:
    assert str(check(text, FIELDS.get).type) == type_


def test_a_checked_formula_lists_what_it_reads() -> None:
    formula = check("IF(account.region = name, amount, amount * 2) + 1", FIELDS.get)
    assert formula.fields == ("account.region", "name", "amount")
    assert not formula.uses_clock
    assert check("close_date < TODAY()", FIELDS.get).uses_clock


# -- NULL -----------------------------------------------------------------------------------


def test_null_propagates_through_arithmetic_and_comparison() -> None:
    assert value("amount + 1") is None
    assert value("-amount") is None
    assert value("amount > 1") is None
    assert value("ROUND(amount, 0)") is None
    assert value("YEAR(close_date)") is None


def test_and_or_use_three_valued_logic_and_if_treats_null_as_false() -> None:
    assert value("AND(flag, FALSE)") is False
    assert value("AND(flag, TRUE)") is None
    assert value("OR(flag, TRUE)") is True
    assert value("OR(flag, FALSE)") is None
    assert value("NOT(flag)") is None
    assert value('IF(amount > 0, "yes", "no")') == "no"


def test_text_joins_treat_blank_as_empty() -> None:
    assert value('name & "!"') == "!"
    assert value('CONCAT(account.region, "-", name)', account__region="华东") == "华东-"


def test_isblank_and_blankvalue_count_empty_text_as_blank() -> None:
    assert value("ISBLANK(name)", name="") is True
    assert value("ISBLANK(name)", name=" ") is False
    assert value("ISBLANK(amount)", amount=D(0)) is False
    assert value('BLANKVALUE(name, "无名")', name="") == "无名"
    assert value("BLANKVALUE(amount, 0)") == D("0.00")


def test_min_and_max_skip_blanks() -> None:
    assert value("MAX(amount, qty, 3)", qty=5) == D("5.00")
    assert value("MIN(amount, qty)") is None


def test_case_matches_by_equality_and_falls_back_to_the_default() -> None:
    text = 'CASE(stage, "OPEN", 1, "CLOSED_WON", 2, 0)'
    assert value(text, stage="CLOSED_WON") == 2
    assert value(text, stage=None) == 0


# -- Division and rounding ------------------------------------------------------------------


def test_division_keeps_six_places_rounded_half_up_and_blank_for_zero() -> None:
    assert value("2 / 3") == D("0.666667")
    assert value("-2 / 3") == D("-0.666667")
    assert value("amount / 0", amount=D("5.00")) is None
    assert value("amount / qty", amount=D("5.00"), qty=0) is None


def test_round_is_half_up_away_from_zero() -> None:
    assert value("ROUND(2.5, 0)") == D("3")
    assert value("ROUND(-2.5, 0)") == D("-3")
    assert value("ROUND(1.005, 2)") == D("1.01")
    assert value("ROUND(0.125, 2)") == D("0.13")  # banker's rounding would give 0.12
    assert value("ROUND(-0.004, 2)") == D("0.00")


def test_round_of_a_quotient_rounds_once() -> None:
    # 0.0049999995 rounds to 0.00; rounding first at six places (0.005000) would give 0.01.
    assert value("ROUND(amount / 10000000, 2)", amount=D("49999.99")) == D("0.00")
    assert value("ROUND(amount / 10000000, 6)", amount=D("49999.99")) == D("0.005000")


@given(st.decimals(-(10**9), 10**9, places=2), st.decimals(-(10**5), 10**5, places=4).filter(bool))
def test_division_is_the_exact_quotient_rounded_half_up(a: D, b: D) -> None:
    got = value("amount / rate", amount=a, rate=b)
    exact = decimal.Context(prec=100).divide(a, b)
    assert abs(got - exact) <= D("0.0000005")
    assert got == exact.quantize(
        D("0.000001"), rounding=decimal.ROUND_HALF_UP, context=decimal.Context(prec=100)
    )


# -- Dates ----------------------------------------------------------------------------------


def test_today_is_the_date_in_shanghai_by_default() -> None:
    # 17:30 UTC on 31 March is 01:30 on 1 April in Shanghai.
    assert value("TODAY()") == dt.date(2026, 4, 1)
    utc = Clock(now=NOON.now, timezone=ZoneInfo("UTC"))
    assert value("TODAY()", clock=utc) == dt.date(2026, 3, 31)
    assert value("NOW()") == dt.datetime(2026, 3, 31, 17, 30, tzinfo=dt.UTC)


def test_date_arithmetic_and_parts() -> None:
    day = dt.date(2026, 1, 31)
    assert value("close_date + 30", close_date=day) == dt.date(2026, 3, 2)
    assert value("close_date - 31", close_date=day) == dt.date(2025, 12, 31)
    assert value("TODAY() - close_date", close_date=day) == 60
    assert value("YEAR(close_date) * 100 + MONTH(close_date)", close_date=day) == 202601
    assert value("QUARTER(close_date)", close_date=dt.date(2026, 10, 1)) == 4
    assert value("DAY(close_date)", close_date=day) == 31


@pytest.mark.parametrize(
    ("unit", "start", "end", "expected"),
    [
        ("day", "2026-01-31", "2026-02-01", 1),
        ("month", "2026-01-31", "2026-02-01", 1),
        ("month", "2026-02-01", "2026-02-28", 0),
        ("quarter", "2026-03-31", "2026-04-01", 1),
        ("year", "2026-12-31", "2027-01-01", 1),
        ("year", "2027-01-01", "2026-12-31", -1),
    ],
)
def test_datediff_counts_days_or_calendar_boundaries(
    unit: str, start: str, end: str, expected: int
) -> None:
    start_date, end_date = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    text = f'DATEDIFF("{unit}", close_date, TODAY())'
    clock = Clock(now=lambda: dt.datetime.combine(end_date, dt.time(12), tzinfo=dt.UTC))
    assert value(text, clock=clock, close_date=start_date) == expected
    if unit == "day":
        assert value("DATEDIFF(close_date, TODAY())", clock=clock, close_date=start_date) == 1


@pytest.mark.parametrize(
    "text", ["1" + " + 1" * 150, "ABS(" * 120 + "1" + ")" * 120, "-" * 3000 + "1"]
)
def test_formulas_nested_beyond_reason_are_refused(text: str) -> None:
    assert "nests more than 100 levels deep" in refused(text)
