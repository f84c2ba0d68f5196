"""Evaluating a checked formula in Python, exactly.

Numbers are Python ints and :class:`decimal.Decimal` computed in a context wide
enough that addition, subtraction and multiplication never round; the only
roundings are the ones the language defines (division and ROUND, both half-up),
and they are done on exact fractions. The SQL compiler implements the same
rules, and the tests hold the two to equal results.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from qiao.core.formula.checker import Formula
from qiao.core.formula.errors import FormulaEvaluationError
from qiao.core.formula.nodes import Binary, Call, Field, Literal, Node, Unary
from qiao.core.formula.types import Kind

#: TODAY() is the date on the wall clocks of this zone unless a Clock says otherwise.
DEFAULT_TIMEZONE = ZoneInfo("Asia/Shanghai")

# Wide enough for any product of stored values; Inexact guards the promise of exactness.
_EXACT = decimal.Context(
    prec=1000,
    rounding=decimal.ROUND_HALF_UP,
    traps=[decimal.InvalidOperation, decimal.Inexact, decimal.Overflow, decimal.DivisionByZero],
)
#: For the roundings the language defines; the same width, without the Inexact trap.
_ROUNDING = decimal.Context(prec=1000, rounding=decimal.ROUND_HALF_UP)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class WorkingCalendar(Protocol):
    """What WORKDAY and its kin ask of a business calendar.

    :class:`qiao.core.calendars.BusinessCalendar` is one; the formula engine
    names only these questions, so it does not depend on where calendars live.
    """

    def is_working_day(self, day: dt.date) -> bool: ...

    def next_working_day(self, day: dt.date) -> dt.date: ...

    def add_working_days(self, day: dt.date, count: int) -> dt.date: ...

    def working_days_between(self, start: dt.date, end: dt.date) -> int: ...


@dataclass(frozen=True)
class Clock:
    """Where TODAY() and NOW() come from; tests and scenario replays pass their own."""

    now: Callable[[], dt.datetime] = _utc_now
    timezone: dt.tzinfo = field(default=DEFAULT_TIMEZONE)
    #: Business calendars by name, for WORKDAY and its kin (the runtime's calendars).
    calendars: Callable[[str], WorkingCalendar] | None = None

    def calendar(self, name: str) -> WorkingCalendar:
        """The business calendar ``name``; an evaluation error where none are known."""
        if self.calendars is None:
            raise FormulaEvaluationError(f"no business calendars here to find {name!r} in")
        return self.calendars(name)

    def instant(self) -> dt.datetime:
        """NOW(): the current instant, in UTC."""
        value = self.now()
        if value.tzinfo is None:
            raise ValueError("the clock must give time-zone-aware date-times")
        return value.astimezone(dt.UTC)

    def today(self, instant: dt.datetime | None = None) -> dt.date:
        """TODAY(): the date in the clock's time zone at ``instant`` (default: now)."""
        return (instant or self.instant()).astimezone(self.timezone).date()


def evaluate(formula: Formula, values: Mapping[str, Any], clock: Clock | None = None) -> Any:
    """The formula's value for a record whose field values ``values`` holds by dotted path.

    ``values`` holds stored forms (int, Decimal, str, bool, date, aware datetime or
    None) for every path in ``formula.fields``. The result is of the formula's type:
    a Decimal carries exactly the type's decimal places.
    """
    clock = clock or Clock()
    missing = [path for path in formula.fields if path not in values]
    if missing:
        raise FormulaEvaluationError(f"no value given for {', '.join(missing)}")
    now = clock.instant() if formula.uses_clock else None
    with decimal.localcontext(_EXACT):
        result = _Evaluator(values, clock, now).eval(formula.tree)
        return conform(result, formula.type.kind, formula.type.scale)


def conform(value: Any, kind: Kind, scale: int) -> Any:
    """``value`` in the canonical Python form of its formula type."""
    if value is None:
        return None
    if kind is Kind.DECIMAL:
        number = decimal.Decimal(value).quantize(decimal.Decimal(1).scaleb(-scale))
        # -0.00 and 0.00 are one amount, as in stored values; keep one spelling of it.
        return number if number else abs(number)
    return value


def divide(dividend: int | decimal.Decimal, divisor: int | decimal.Decimal, scale: int) -> Any:
    """``dividend / divisor`` rounded half-up (away from zero) to ``scale`` places; None for /0."""
    if not divisor:
        return None
    exact = Fraction(dividend) / Fraction(divisor) * 10**scale
    rounded = (2 * abs(exact.numerator) + exact.denominator) // (2 * exact.denominator)
    sign = -1 if exact < 0 else 1
    return decimal.Decimal(sign * rounded).scaleb(-scale)


def round_half_up(value: decimal.Decimal, places: int) -> decimal.Decimal:
    """ROUND: half-up, away from zero (2.5 -> 3, -2.5 -> -3), the rounding of money."""
    return value.quantize(decimal.Decimal(1).scaleb(-places), context=_ROUNDING)


class _Evaluator:
    def __init__(self, values: Mapping[str, Any], clock: Clock, now: dt.datetime | None) -> None:
        self.values = values
        self.clock = clock
        self.now = now

    def eval(self, node: Node) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Field):
            return self.values[node.dotted]
        if isinstance(node, Unary):
            value = self.eval(node.operand)
            return None if value is None else -value
        if isinstance(node, Binary):
            return self.binary(node)
        assert isinstance(node, Call)
        return getattr(self, f"f_{node.name.lower()}")(node)

    def binary(self, node: Binary) -> Any:
        left, right = self.eval(node.left), self.eval(node.right)
        if node.op == "&":
            return (left or "") + (right or "")
        if left is None or right is None:
            return None
        assert node.type is not None
        match node.op:
            case "=":
                return left == right
            case "<>":
                return left != right
            case "<":
                return left < right
            case "<=":
                return left <= right
            case ">":
                return left > right
            case ">=":
                return left >= right
            case "/":
                return divide(left, right, node.type.scale)
            case "*":
                return left * right
        if isinstance(left, dt.date) and isinstance(right, dt.date):
            return (left - right).days
        if isinstance(left, dt.date) or isinstance(right, dt.date):
            return _shift(left, right, node.op)
        return left + right if node.op == "+" else left - right

    # Functions, one method each, named after the function.

    def f_if(self, node: Call) -> Any:
        condition, then, otherwise = node.args
        return self.eval(then) if self.eval(condition) is True else self.eval(otherwise)

    def f_and(self, node: Call) -> bool | None:
        # Kleene logic, as SQL: FALSE wins over NULL, NULL over TRUE.
        values = [self.eval(a) for a in node.args]
        if False in values:
            return False
        return None if None in values else True

    def f_or(self, node: Call) -> bool | None:
        values = [self.eval(a) for a in node.args]
        if True in values:
            return True
        return None if None in values else False

    def f_not(self, node: Call) -> bool | None:
        value = self.eval(node.args[0])
        return None if value is None else not value

    def f_round(self, node: Call) -> Any:
        value_node, places_node = node.args
        assert isinstance(places_node, Literal) and isinstance(places_node.value, int)
        places = places_node.value
        if isinstance(value_node, Binary) and value_node.op == "/":
            # ROUND(a / b, n) rounds once, at n places, not first at the quotient's places.
            dividend, divisor = self.eval(value_node.left), self.eval(value_node.right)
            if dividend is None or divisor is None:
                return None
            return divide(dividend, divisor, places)
        value = self.eval(value_node)
        if value is None or isinstance(value, int):
            return value
        return round_half_up(value, places)

    def f_min(self, node: Call) -> Any:
        values = [v for v in (self.eval(a) for a in node.args) if v is not None]
        return min(values) if values else None

    def f_max(self, node: Call) -> Any:
        values = [v for v in (self.eval(a) for a in node.args) if v is not None]
        return max(values) if values else None

    def f_abs(self, node: Call) -> Any:
        value = self.eval(node.args[0])
        return None if value is None else abs(value)

    def f_isblank(self, node: Call) -> bool:
        return self.eval(node.args[0]) in (None, "")

    def f_blankvalue(self, node: Call) -> Any:
        value = self.eval(node.args[0])
        return self.eval(node.args[1]) if value in (None, "") else value

    def f_case(self, node: Call) -> Any:
        value, *rest = node.args
        subject = self.eval(value)
        if subject is not None:
            for match, result in zip(rest[0:-1:2], rest[1:-1:2], strict=True):
                if self.eval(match) == subject:
                    return self.eval(result)
        return self.eval(rest[-1])

    def f_concat(self, node: Call) -> str:
        return "".join(self.eval(a) or "" for a in node.args)

    def f_today(self, node: Call) -> dt.date:
        return self.clock.today(self.now)

    def f_now(self, node: Call) -> dt.datetime:
        assert self.now is not None
        return self.now

    def f_datediff(self, node: Call) -> int | None:
        unit = "day"
        if len(node.args) == 3:
            assert isinstance(node.args[0], Literal) and isinstance(node.args[0].value, str)
            unit = node.args[0].value
        start, end = (self.eval(a) for a in node.args[-2:])
        if start is None or end is None:
            return None
        return datediff(unit, start, end)

    def f_year(self, node: Call) -> int | None:
        value = self.eval(node.args[0])
        return None if value is None else value.year

    def f_quarter(self, node: Call) -> int | None:
        value = self.eval(node.args[0])
        return None if value is None else (value.month + 2) // 3

    def f_month(self, node: Call) -> int | None:
        value = self.eval(node.args[0])
        return None if value is None else value.month

    def f_day(self, node: Call) -> int | None:
        value = self.eval(node.args[0])
        return None if value is None else value.day

    def _calendar_of(self, node: Node) -> WorkingCalendar:
        assert isinstance(node, Literal) and isinstance(node.value, str)
        return self.clock.calendar(node.value)

    def f_workday(self, node: Call) -> dt.date | None:
        day, count = self.eval(node.args[0]), self.eval(node.args[1])
        if day is None or count is None:
            return None
        return self._calendar_of(node.args[2]).add_working_days(day, count)

    def f_networkdays(self, node: Call) -> int | None:
        start, end = self.eval(node.args[0]), self.eval(node.args[1])
        if start is None or end is None:
            return None
        return self._calendar_of(node.args[2]).working_days_between(start, end)

    def f_isworkday(self, node: Call) -> bool | None:
        day = self.eval(node.args[0])
        return None if day is None else self._calendar_of(node.args[1]).is_working_day(day)

    def f_nextworkday(self, node: Call) -> dt.date | None:
        day = self.eval(node.args[0])
        return None if day is None else self._calendar_of(node.args[1]).next_working_day(day)


def datediff(unit: str, start: dt.date, end: dt.date) -> int:
    """``end`` minus ``start`` in ``unit``: days, or calendar boundaries crossed."""
    match unit:
        case "day":
            return (end - start).days
        case "month":
            return (end.year * 12 + end.month) - (start.year * 12 + start.month)
        case "quarter":
            return (end.year * 4 + (end.month - 1) // 3) - (start.year * 4 + (start.month - 1) // 3)
    return end.year - start.year


def _shift(left: Any, right: Any, op: str) -> dt.date:
    date, days = (left, right) if isinstance(left, dt.date) else (right, left)
    try:
        return date + dt.timedelta(days=days if op == "+" else -days)
    except OverflowError:
        raise FormulaEvaluationError("the date falls outside the years 1 to 9999") from None
