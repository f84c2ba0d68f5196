"""Compiling a checked formula to a SQLAlchemy expression, for filters and ORDER BY.

The expression computes exactly what :func:`~qiao.core.formula.evaluator.evaluate`
computes, on SQLite and on PostgreSQL, over values in their stored form:

- PostgreSQL: numbers are NUMERIC (arbitrary precision), so every formula compiles.
- SQLite stores a decimal as a 64-bit integer scaled by 10**scale (see
  core/storage/types.py). Formulas compile to integer arithmetic on those
  scaled values. SQLite silently turns an overflowing integer product into a
  float, so the compiler bounds every intermediate value from the fields'
  declared precision; when a bound exceeds 64 bits the formula is refused with
  :class:`NotCompilable` and the caller evaluates it in Python instead.

Division and ROUND round half-up (away from zero) with integer arithmetic on
both databases, never with the databases' own decimal division.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Date,
    Integer,
    Numeric,
    String,
    TypeDecorator,
    and_,
    case,
    cast,
    extract,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    true,
    type_coerce,
)
from sqlalchemy.sql.elements import Grouping
from sqlalchemy.types import TypeEngine

from qiao.core.formula.checker import Formula
from qiao.core.formula.errors import FormulaError, NotCompilable
from qiao.core.formula.evaluator import Clock
from qiao.core.formula.nodes import Binary, Call, Field, Literal, Node, Unary
from qiao.core.formula.types import BOOLEAN, MAX_PRECISION, FormulaType, Kind
from qiao.core.storage.types import ExactDecimal, UtcDateTime

#: The largest integer SQLite computes without turning it into a float.
INT64_MAX = 2**63 - 1
#: No count of days, months or years between dates of years 1 to 9999 is larger.
_DATE_NUMBER_BOUND = 3_652_059

#: Gives the SQL of a related path (``("account", "region")``), typically a correlated
#: scalar subquery; it returns the column in its stored form.
RelatedColumn = Callable[[tuple[str, ...]], ColumnElement[Any]]


class _Whole(TypeDecorator[int]):
    """Whole-number results, which PostgreSQL computes as NUMERIC, read back as int."""

    impl = BigInteger
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> int | None:
        return None if value is None else int(value)


def compile_formula(
    formula: Formula,
    *,
    dialect: str,
    columns: Mapping[str, ColumnElement[Any]],
    related: RelatedColumn | None = None,
    clock: Clock | None = None,
) -> ColumnElement[Any]:
    """The SQL of ``formula`` on ``dialect`` ("sqlite" or "postgresql").

    ``columns`` maps the record's own field paths (``amount``) to their columns;
    ``related`` gives dotted paths (``account.region``). TODAY() and NOW() become
    parameters read from ``clock`` now. Selecting the result yields the same Python
    value as the evaluator; raises :class:`NotCompilable` when that cannot be exact.
    """
    clock = clock or Clock()
    now = clock.instant() if formula.uses_clock else None
    compiler = _Compiler(dialect, columns, related, clock, now)
    try:
        value = compiler.visit(formula.tree)
    except FormulaError as exc:
        raise exc.located(formula.source) from None
    # Grouped: type_coerce on a bare parameter would re-bind it through the result type.
    return type_coerce(Grouping(value.sql), _result_type(formula.type))


def _result_type(t: FormulaType) -> TypeEngine[Any]:
    match t.kind:
        case Kind.DECIMAL:
            return ExactDecimal(MAX_PRECISION, t.scale)
        case Kind.INTEGER:
            return _Whole()
        case Kind.BOOLEAN:
            return Boolean()
        case Kind.DATE:
            return Date()
        case Kind.DATETIME:
            return UtcDateTime()
    return String()


@dataclass(frozen=True)
class _Sql:
    """A compiled node: its SQL and, for numbers, the largest magnitude its SQL can take."""

    sql: ColumnElement[Any]
    bound: int = 0


class _Compiler:
    def __init__(
        self,
        dialect: str,
        columns: Mapping[str, ColumnElement[Any]],
        related: RelatedColumn | None,
        clock: Clock,
        now: dt.datetime | None,
    ) -> None:
        if dialect not in {"sqlite", "postgresql"}:
            raise NotCompilable(f"formulas do not compile to {dialect} SQL")
        self.sqlite = dialect == "sqlite"
        self.columns = columns
        self.related = related
        self.clock = clock
        self.now = now

    # Representation: what a value of each type looks like in SQL.

    def number_type(self) -> TypeEngine[Any]:
        return BigInteger() if self.sqlite else Numeric()

    def rep_type(self, t: FormulaType) -> TypeEngine[Any]:
        match t.kind:
            case Kind.INTEGER | Kind.DECIMAL:
                return self.number_type()
            case Kind.BOOLEAN:
                return Boolean()
            case Kind.DATE:
                return Date()
            case Kind.DATETIME:
                return UtcDateTime()
        return String()

    def null(self, type_: TypeEngine[Any]) -> ColumnElement[Any]:
        """A NULL of a type; PostgreSQL cannot infer the type of a bare NULL in -NULL."""
        return type_coerce(null(), type_) if self.sqlite else cast(null(), type_)

    def checked(self, bound: int, node: Node) -> int:
        if self.sqlite and bound > INT64_MAX:
            raise NotCompilable(
                "values here could exceed SQLite's 64-bit integers; declare smaller precisions "
                "on the fields, or evaluate the formula in Python",
                node.position,
            )
        return bound

    def number(self, value: int) -> _Sql:
        literal_value: int | decimal.Decimal = value if self.sqlite else decimal.Decimal(value)
        return _Sql(literal(literal_value, self.number_type()), abs(value))

    def rescale(self, value: _Sql, source: FormulaType, target: int, node: Node) -> _Sql:
        """A number at ``target`` decimal places (SQLite's scaled integers only)."""
        shift = target - (source.scale if source.kind is Kind.DECIMAL else 0)
        if not self.sqlite or shift == 0:
            return value
        assert shift > 0
        bound = self.checked(value.bound * 10**shift, node)
        return _Sql(value.sql * self.number(10**shift).sql, bound)

    def aligned(self, node: Node, target: FormulaType) -> _Sql:
        """``node`` compiled in the representation of ``target`` (IF branches, CASE, MIN)."""
        value = self.visit(node)
        if _type(node).kind is Kind.NULL:
            return _Sql(self.null(self.rep_type(target)))
        if target.kind is Kind.DECIMAL:
            return self.rescale(value, _type(node), target.scale, node)
        return value

    # Nodes

    def visit(self, node: Node) -> _Sql:
        t = _type(node)
        if isinstance(node, Literal):
            return self.literal(node, t)
        if isinstance(node, Field):
            return self.field(node)
        if isinstance(node, Unary):
            if t.kind is Kind.NULL:
                return _Sql(self.null(self.number_type()))
            operand = self.visit(node.operand)
            return _Sql(-operand.sql, operand.bound)
        if isinstance(node, Binary):
            return self.binary(node)
        assert isinstance(node, Call)
        method: Callable[[Call], _Sql] = getattr(self, f"f_{node.name.lower()}")
        return method(node)

    def literal(self, node: Literal, t: FormulaType) -> _Sql:
        value = node.value
        if value is None:
            return _Sql(self.null(self.rep_type(t)))
        if isinstance(value, bool):
            return _Sql(true() if value else false())
        if isinstance(value, int):
            return self.number(value)
        if isinstance(value, decimal.Decimal):
            if self.sqlite:
                return self.number(int(value.scaleb(t.scale)))
            return _Sql(literal(value, Numeric()), 0)
        return _Sql(literal(value, String()))

    def field(self, node: Field) -> _Sql:
        info = node.info
        assert info is not None
        if len(node.path) == 1 and node.dotted in self.columns:
            column = self.columns[node.dotted]
        elif len(node.path) > 1 and self.related is not None:
            column = self.related(node.path)
        else:
            raise NotCompilable(f"no column for {node.dotted}", node.position)
        # Re-typed so SQLAlchemy binds our literals as plain numbers, not through
        # the column's own type (ExactDecimal would scale them a second time).
        sql = type_coerce(column, self.rep_type(info.type))
        return _Sql(sql, info.max_abs if info.type.kind in {Kind.INTEGER, Kind.DECIMAL} else 0)

    def binary(self, node: Binary) -> _Sql:
        t, lt, rt = _type(node), _type(node.left), _type(node.right)
        if node.op == "&":
            return _Sql(self.text(node.left).concat(self.text(node.right)))
        if Kind.NULL in {lt.kind, rt.kind}:
            return _Sql(self.null(self.rep_type(t)))
        if node.op == "/":
            return self.divide(node.left, node.right, t.scale, node)
        if node.op in {"+", "-"} and Kind.DATE in {lt.kind, rt.kind}:
            return self.date_arithmetic(node)
        if node.op in {"+", "-", "*"}:
            left, right = self.visit(node.left), self.visit(node.right)
            if node.op == "*":
                bound = self.checked(left.bound * right.bound, node)
                return _Sql(left.sql * right.sql, bound)
            scale = t.scale
            left, right = (
                self.rescale(left, lt, scale, node),
                self.rescale(right, rt, scale, node),
            )
            bound = self.checked(left.bound + right.bound, node)
            sql = left.sql + right.sql if node.op == "+" else left.sql - right.sql
            return _Sql(sql, bound)
        return _Sql(self.compare(node.op, node.left, node.right))

    def compare(self, op: str, left_node: Node, right_node: Node) -> ColumnElement[bool]:
        lt, rt = _type(left_node), _type(right_node)
        left, right = self.visit(left_node), self.visit(right_node)
        if lt.kind in {Kind.INTEGER, Kind.DECIMAL}:
            scale = max(lt.scale, rt.scale)
            left = self.rescale(left, lt, scale, left_node)
            right = self.rescale(right, rt, scale, right_node)
        a, b = left.sql, right.sql
        if lt.kind is Kind.STRING and not self.sqlite and op not in {"=", "<>"}:
            # Code-point order, as Python and SQLite compare, not the database locale's.
            a, b = a.collate("C"), b.collate("C")
        match op:
            case "=":
                return a == b
            case "<>":
                return a != b
            case "<":
                return a < b
            case "<=":
                return a <= b
            case ">":
                return a > b
        return a >= b

    def text(self, node: Node) -> ColumnElement[Any]:
        if _type(node).kind is Kind.NULL:
            return literal("", String())
        return func.coalesce(self.visit(node).sql, literal("", String()))

    def divide(self, left_node: Node, right_node: Node, scale: int, node: Node) -> _Sql:
        """``left / right`` rounded half-up to ``scale`` places; NULL when dividing by zero."""
        lt, rt = _type(left_node), _type(right_node)
        if Kind.NULL in {lt.kind, rt.kind} or (
            isinstance(right_node, Literal) and right_node.value == 0
        ):
            # PostgreSQL folds constants before CASE could skip them: 1 / 0 must not reach it.
            return _Sql(self.null(self.number_type()))
        left, right = self.visit(left_node), self.visit(right_node)
        if self.sqlite:
            # left/10**ls / (right/10**rs) * 10**scale == left * 10**(scale - ls + rs) / right
            shift = scale - lt.scale + rt.scale
            n = left.sql * self.number(10**shift).sql if shift > 0 else left.sql
            d = right.sql * self.number(10 ** (-shift)).sql if shift < 0 else right.sql
            n_bound = left.bound * 10 ** max(shift, 0)
            d_bound = right.bound * 10 ** max(-shift, 0)
            self.checked(2 * n_bound + d_bound, node)
            self.checked(2 * d_bound, node)
            bound = n_bound + 1
        else:
            n = left.sql * literal(decimal.Decimal(10) ** scale, Numeric())
            d = right.sql
            bound = 0
        two = self.number(2).sql
        # Both sides are positive, so SQLite's truncating integer division is floor.
        magnitude = (two * func.abs(n) + func.abs(d)) // (two * func.abs(d))
        if not self.sqlite:
            magnitude = func.div(two * func.abs(n) + func.abs(d), two * func.abs(d))
        signed = case(((n < 0) == (d < 0), magnitude), else_=-magnitude)
        result = case((d == self.number(0).sql, null()), else_=signed)
        if not self.sqlite:
            result = result * literal(decimal.Decimal(1).scaleb(-scale), Numeric())
        return _Sql(result, bound)

    def date_arithmetic(self, node: Binary) -> _Sql:
        lt, rt = _type(node.left), _type(node.right)
        left, right = self.visit(node.left), self.visit(node.right)
        if lt.kind is Kind.DATE and rt.kind is Kind.DATE:
            return _Sql(self.days_between(right.sql, left.sql), _DATE_NUMBER_BOUND)
        date, days = (left, right) if lt.kind is Kind.DATE else (right, left)
        if days.bound > 2**31:
            raise NotCompilable("a date moves by at most 2147483647 days in SQL", node.position)
        offset = days.sql if node.op == "+" else -days.sql
        if self.sqlite:
            return _Sql(type_coerce(func.date(date.sql, offset.concat(" days")), Date()))
        return _Sql(type_coerce(date.sql + cast(offset, Integer), Date()))

    def days_between(self, start: ColumnElement[Any], end: ColumnElement[Any]) -> Any:
        if self.sqlite:
            return cast(func.julianday(end) - func.julianday(start), BigInteger)
        return cast(end - start, Numeric())

    def part(self, unit: str, value: ColumnElement[Any]) -> ColumnElement[Any]:
        if self.sqlite:
            if unit == "quarter":
                return (self.part("month", value) + 2) // 3
            pattern = {"year": "%Y", "month": "%m", "day": "%d"}[unit]
            return cast(func.strftime(pattern, value), BigInteger)
        return cast(extract(unit, value), Numeric())

    # Functions, one method each, named after the function.

    def f_if(self, node: Call) -> _Sql:
        t = _type(node)
        condition = self.aligned(node.args[0], BOOLEAN)
        then, otherwise = self.aligned(node.args[1], t), self.aligned(node.args[2], t)
        return _Sql(
            case((condition.sql, then.sql), else_=otherwise.sql), max(then.bound, otherwise.bound)
        )

    def f_and(self, node: Call) -> _Sql:
        return _Sql(and_(*(self.aligned(a, BOOLEAN).sql for a in node.args)))

    def f_or(self, node: Call) -> _Sql:
        return _Sql(or_(*(self.aligned(a, BOOLEAN).sql for a in node.args)))

    def f_not(self, node: Call) -> _Sql:
        return _Sql(not_(self.aligned(node.args[0], BOOLEAN).sql))

    def f_round(self, node: Call) -> _Sql:
        value_node, places_node = node.args
        assert isinstance(places_node, Literal) and isinstance(places_node.value, int)
        places = places_node.value
        vt = _type(value_node)
        if vt.kind is Kind.NULL:
            return _Sql(self.null(self.number_type()))
        if isinstance(value_node, Binary) and value_node.op == "/":
            return self.divide(value_node.left, value_node.right, places, node)
        value = self.visit(value_node)
        if vt.kind is Kind.INTEGER:
            return value
        if not self.sqlite:
            return _Sql(func.round(value.sql, places))
        if places >= vt.scale:
            return self.rescale(value, vt, places, node)
        unit = 10 ** (vt.scale - places)
        self.checked(value.bound + unit, node)
        magnitude = (func.abs(value.sql) + self.number(unit // 2).sql) // self.number(unit).sql
        signed = case((value.sql < 0, -magnitude), else_=magnitude)
        return _Sql(signed, value.bound // unit + 1)

    def extreme(self, node: Call, largest: bool) -> _Sql:
        t = _type(node)
        values = [self.aligned(a, t) for a in node.args]
        bound = max(v.bound for v in values)
        if len(values) == 1:
            return values[0]
        if not self.sqlite:
            pick = func.greatest if largest else func.least
            return _Sql(pick(*(v.sql for v in values)), bound)
        # SQLite's scalar min()/max() give NULL when any argument is NULL. Each COALESCE
        # starts from another argument, so NULLs are skipped and the rest all compared.
        sqls = [v.sql for v in values]
        rotations = [func.coalesce(*sqls[i:], *sqls[:i]) for i in range(len(sqls))]
        pick = func.max if largest else func.min
        return _Sql(type_coerce(pick(*rotations), self.rep_type(t)), bound)

    def f_min(self, node: Call) -> _Sql:
        return self.extreme(node, largest=False)

    def f_max(self, node: Call) -> _Sql:
        return self.extreme(node, largest=True)

    def f_abs(self, node: Call) -> _Sql:
        value = self.visit(node.args[0])
        return _Sql(func.abs(value.sql), value.bound)

    def f_isblank(self, node: Call) -> _Sql:
        (arg,) = node.args
        if _type(arg).kind is Kind.NULL:
            return _Sql(true())
        return _Sql(self.blank(arg, self.visit(arg).sql))

    def blank(self, node: Node, sql: ColumnElement[Any]) -> ColumnElement[bool]:
        if _type(node).kind is Kind.STRING:
            return or_(sql.is_(None), sql == literal("", String()))
        return sql.is_(None)

    def f_blankvalue(self, node: Call) -> _Sql:
        t = _type(node)
        value, default = self.aligned(node.args[0], t), self.aligned(node.args[1], t)
        if _type(node.args[0]).kind is Kind.NULL:
            return default
        return _Sql(
            case((self.blank(node.args[0], value.sql), default.sql), else_=value.sql),
            max(value.bound, default.bound),
        )

    def f_case(self, node: Call) -> _Sql:
        t = _type(node)
        subject, *rest = node.args
        whens = []
        bounds = []
        for match, result in zip(rest[0:-1:2], rest[1:-1:2], strict=True):
            compiled = self.aligned(result, t)
            if _type(subject).kind is not Kind.NULL:
                whens.append((self.compare("=", subject, match), compiled.sql))
                bounds.append(compiled.bound)
        default = self.aligned(rest[-1], t)
        if not whens:
            return default
        return _Sql(case(*whens, else_=default.sql), max(*bounds, default.bound))

    def f_concat(self, node: Call) -> _Sql:
        parts = [self.text(a) for a in node.args]
        sql = parts[0]
        for part in parts[1:]:
            sql = sql.concat(part)
        return _Sql(sql)

    def _calendar(self, node: Call) -> _Sql:
        raise NotCompilable(
            f"{node.name} reads a business calendar, which is data: it is computed in Python",
            node.position,
        )

    f_workday = f_networkdays = f_isworkday = f_nextworkday = _calendar

    def f_today(self, node: Call) -> _Sql:
        return _Sql(literal(self.clock.today(self.now), Date()))

    def f_now(self, node: Call) -> _Sql:
        return _Sql(literal(self.now, UtcDateTime()))

    def f_datediff(self, node: Call) -> _Sql:
        unit = "day"
        if len(node.args) == 3:
            assert isinstance(node.args[0], Literal) and isinstance(node.args[0].value, str)
            unit = node.args[0].value
        start_node, end_node = node.args[-2:]
        if Kind.NULL in {_type(start_node).kind, _type(end_node).kind}:
            return _Sql(self.null(self.number_type()))
        start, end = self.visit(start_node).sql, self.visit(end_node).sql
        if unit == "day":
            return _Sql(self.days_between(start, end), _DATE_NUMBER_BOUND)
        per_year = {"year": 1, "quarter": 4, "month": 12}[unit]

        def index(value: ColumnElement[Any]) -> Any:
            years = self.part("year", value)
            if unit == "year":
                return years
            return years * per_year + self.part(unit, value)

        return _Sql(index(end) - index(start), _DATE_NUMBER_BOUND)

    def date_part(self, node: Call, unit: str) -> _Sql:
        (arg,) = node.args
        if _type(arg).kind is Kind.NULL:
            return _Sql(self.null(self.number_type()))
        return _Sql(self.part(unit, self.visit(arg).sql), _DATE_NUMBER_BOUND)

    def f_year(self, node: Call) -> _Sql:
        return self.date_part(node, "year")

    def f_quarter(self, node: Call) -> _Sql:
        return self.date_part(node, "quarter")

    def f_month(self, node: Call) -> _Sql:
        return self.date_part(node, "month")

    def f_day(self, node: Call) -> _Sql:
        return self.date_part(node, "day")


def _type(node: Node) -> FormulaType:
    assert node.type is not None, "compile a checked formula"
    return node.type
