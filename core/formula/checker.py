"""Definition-time checking: every node gets a type, or the formula is refused with a position.

A formula field is checked when an admin saves it, not when a list query
first meets it, so mistakes surface in the form that made them. The rules
(which operators take which types, how decimal places combine) are listed in
docs/formulas.md; this module is their single implementation.
"""

from __future__ import annotations

import dataclasses
import decimal
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qiao.core.formula.errors import FormulaError, FormulaTypeError, Position
from qiao.core.formula.nodes import Binary, Call, Field, Literal, Node, Unary
from qiao.core.formula.parser import parse
from qiao.core.formula.types import (
    BOOLEAN,
    DATE,
    DATETIME,
    INTEGER,
    NULL,
    NUMERIC,
    STRING,
    FormulaType,
    Kind,
    Resolver,
    decimal_type,
)

#: Decimal places a quotient keeps at least (more when an operand has more).
DIVISION_SCALE = 6
#: The places ROUND may keep.
MAX_ROUND_PLACES = 18
DATEDIFF_UNITS = ("day", "month", "quarter", "year")
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_ORDERED = frozenset({Kind.INTEGER, Kind.DECIMAL, Kind.STRING, Kind.DATE, Kind.DATETIME})
_VERBS = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}


@dataclass(frozen=True)
class Formula:
    """A checked formula: its typed tree, result type and the fields it reads."""

    source: str
    tree: Node
    type: FormulaType
    #: Dotted paths of the fields read (``amount``, ``account.region``), in order of appearance.
    fields: tuple[str, ...]
    #: True when TODAY() or NOW() appear, so the value changes with time alone.
    uses_clock: bool


def check(source: str, resolver: Resolver, *, expect: Kind | None = None) -> Formula:
    """Parse and type ``source``; raises :class:`FormulaError` pointing at the mistake.

    ``expect`` requires a result kind (BOOLEAN for validation rules); an integer
    result is accepted where a decimal is expected.
    """
    try:
        tree = _Checker(resolver).visit(parse(source))
    except FormulaError as exc:
        raise exc.located(source) from None
    assert tree.type is not None
    if tree.type.kind is Kind.NULL:
        raise FormulaTypeError("the formula is always NULL", tree.position, source)
    widened = expect is Kind.DECIMAL and tree.type.kind is Kind.INTEGER
    if expect is not None and tree.type.kind is not expect and not widened:
        raise FormulaTypeError(
            f"the formula must give a {_KIND_WORDS[expect]}, not {tree.type.name}",
            tree.position,
            source,
        )
    fields: dict[str, None] = {}
    clock = False
    for node in walk(tree):
        if isinstance(node, Field):
            fields[node.dotted] = None
        elif isinstance(node, Call) and node.name in {"TODAY", "NOW"}:
            clock = True
    return Formula(source, tree, tree.type, tuple(fields), clock)


_KIND_WORDS = {
    Kind.BOOLEAN: "TRUE or FALSE",
    Kind.DECIMAL: "number",
    Kind.INTEGER: "whole number",
    Kind.STRING: "text",
    Kind.DATE: "date",
    Kind.DATETIME: "date-time",
}


def walk(node: Node) -> list[Node]:
    """``node`` and every node below it, parents first."""
    found = [node]
    if isinstance(node, Unary):
        found += walk(node.operand)
    elif isinstance(node, Binary):
        found += walk(node.left) + walk(node.right)
    elif isinstance(node, Call):
        for arg in node.args:
            found += walk(arg)
    return found


def _typed(node: Node, type_: FormulaType, **changes: object) -> Node:
    return dataclasses.replace(node, type=type_, **changes)


def _t(node: Node) -> FormulaType:
    assert node.type is not None
    return node.type


def unify(types: Sequence[FormulaType]) -> FormulaType | None:
    """The one type that values of ``types`` share, or None; NULL fits any type."""
    known = [t for t in types if t.kind is not Kind.NULL]
    if not known:
        return NULL
    if all(t.kind in NUMERIC for t in known):
        if all(t.kind is Kind.INTEGER for t in known):
            return INTEGER
        return decimal_type(max(t.scale for t in known))
    if all(t.kind is known[0].kind for t in known):
        return known[0]
    return None


def comparable(left: FormulaType, right: FormulaType) -> bool:
    if left.kind in NUMERIC and right.kind in NUMERIC:
        return True
    return left.kind is right.kind


class _Checker:
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver

    def visit(self, node: Node) -> Node:
        if isinstance(node, Literal):
            return _typed(node, _literal_type(node.value))
        if isinstance(node, Field):
            return self.field(node)
        if isinstance(node, Unary):
            operand = self.visit(node.operand)
            kind = _t(operand).kind
            if kind not in NUMERIC and kind is not Kind.NULL:
                raise FormulaTypeError(f"cannot negate {_t(operand).name}", node.position)
            return _typed(node, _t(operand), operand=operand)
        if isinstance(node, Binary):
            left, right = self.visit(node.left), self.visit(node.right)
            result = _binary_type(node.op, _t(left), _t(right), node.position)
            if node.op in {"=", "<>"}:
                _check_picklist(left, right)
                _check_picklist(right, left)
            return _typed(node, result, left=left, right=right)
        assert isinstance(node, Call)
        spec = FUNCTIONS.get(node.name)
        if spec is None:
            raise FormulaTypeError(f"unknown function {node.name}", node.position)
        low, high = spec.arity
        count = len(node.args)
        if count < low or (high is not None and count > high):
            raise FormulaTypeError(
                f"{node.name} takes {_arity(spec.arity)}, got {count}", node.position
            )
        args = tuple(self.visit(a) for a in node.args)
        return _typed(node, spec.check(node, args), args=args)

    def field(self, node: Field) -> Node:
        for part in node.path:
            if not _FIELD_NAME.match(part):
                raise FormulaTypeError(
                    f"{part!r} is not a field name: field names are snake_case, "
                    "lower-case ASCII (functions need their parentheses)",
                    node.position,
                )
        try:
            info = self.resolver(node.path)
        except LookupError as exc:
            raise FormulaTypeError(str(exc).strip("'\""), node.position) from None
        if info is None:
            raise FormulaTypeError(f"unknown field {node.dotted}", node.position)
        if isinstance(info, Formula):
            # Another formula field is read through its own checked tree, so evaluation,
            # SQL and the list of fields read all see the stored fields underneath.
            return info.tree
        return _typed(node, info.type, info=info)


def _literal_type(value: object) -> FormulaType:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, decimal.Decimal):
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)
        return decimal_type(max(0, -exponent))
    return STRING


def _binary_type(op: str, left: FormulaType, right: FormulaType, at: Position) -> FormulaType:
    lk, rk = left.kind, right.kind
    if op == "&":
        for side, t in (("left", left), ("right", right)):
            if t.kind not in {Kind.STRING, Kind.NULL}:
                raise FormulaTypeError(f"& joins text; its {side} side is {t.name}", at)
        return STRING
    if op in {"=", "<>", "<", "<=", ">", ">="}:
        if Kind.NULL in {lk, rk}:
            raise FormulaTypeError("a comparison with NULL is never true; use ISBLANK(...)", at)
        if not comparable(left, right):
            raise FormulaTypeError(f"cannot compare {left.name} with {right.name}", at)
        if op not in {"=", "<>"} and lk not in _ORDERED:
            raise FormulaTypeError(f"{left.name} values have no order; use = or <>", at)
        return BOOLEAN
    if Kind.NULL in {lk, rk}:
        other = right if lk is Kind.NULL else left
        if other.kind in NUMERIC or other.kind is Kind.NULL:
            return other if op != "/" else decimal_type(max(DIVISION_SCALE, other.scale))
        if other.kind is Kind.DATE and op in {"+", "-"}:
            return DATE
    elif lk in NUMERIC and rk in NUMERIC:
        if op == "/":
            return decimal_type(max(DIVISION_SCALE, left.scale, right.scale))
        if lk is Kind.INTEGER and rk is Kind.INTEGER:
            return INTEGER
        if op == "*":
            return decimal_type(left.scale + right.scale)
        return decimal_type(max(left.scale, right.scale))
    elif (op == "+" and {lk, rk} == {Kind.DATE, Kind.INTEGER}) or (
        op == "-" and lk is Kind.DATE and rk is Kind.INTEGER
    ):
        return DATE
    elif op == "-" and lk is Kind.DATE and rk is Kind.DATE:
        return INTEGER
    joiner = "from" if op == "-" else "by" if op in {"*", "/"} else "and"
    first, second = (right, left) if op == "-" else (left, right)
    raise FormulaTypeError(f"cannot {_VERBS[op]} {first.name} {joiner} {second.name}", at)


def _check_picklist(field: Node, other: Node) -> None:
    """``stage = "WON"`` when the picklist has no WON is a typo that would match nothing."""
    if not isinstance(field, Field) or field.info is None or not field.info.enum_values:
        return
    if (
        isinstance(other, Literal)
        and isinstance(other.value, str)
        and other.value not in field.info.enum_values
    ):
        raise FormulaTypeError(
            f"{field.dotted} has no value {other.value!r}; its values are "
            + ", ".join(field.info.enum_values),
            other.position,
        )


# -- Functions -------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionSpec:
    """A function's arity (high None: any number) and its typing rule."""

    arity: tuple[int, int | None]
    check: Callable[[Call, tuple[Node, ...]], FormulaType]


def _arity(arity: tuple[int, int | None]) -> str:
    low, high = arity
    if high is None:
        return f"at least {low} argument{'s' if low != 1 else ''}"
    if low == high:
        return f"{low} argument{'s' if low != 1 else ''}" if low else "no arguments"
    return f"{low} to {high} arguments"


def _need(call: Call, arg: Node, kinds: set[Kind], what: str) -> FormulaType:
    t = _t(arg)
    if t.kind is not Kind.NULL and t.kind not in kinds:
        raise FormulaTypeError(f"{call.name} needs {what}, not {t.name}", arg.position)
    return t


def _same(call: Call, args: Sequence[Node], what: str) -> FormulaType:
    result = unify([_t(a) for a in args])
    if result is None:
        names = ", ".join(sorted({_t(a).name for a in args}))
        raise FormulaTypeError(
            f"{call.name}'s {what} must be of one type, not {names}", call.position
        )
    return result


def _if(call: Call, args: tuple[Node, ...]) -> FormulaType:
    _need(call, args[0], {Kind.BOOLEAN}, "a condition (TRUE or FALSE) first")
    return _same(call, args[1:], "results")


def _logic(call: Call, args: tuple[Node, ...]) -> FormulaType:
    for arg in args:
        _need(call, arg, {Kind.BOOLEAN}, "conditions (TRUE or FALSE)")
    return BOOLEAN


def _round(call: Call, args: tuple[Node, ...]) -> FormulaType:
    value = _need(call, args[0], set(NUMERIC), "a number")
    places = args[1]
    if not (
        isinstance(places, Literal)
        and isinstance(places.value, int)
        and not isinstance(places.value, bool)
        and 0 <= places.value <= MAX_ROUND_PLACES
    ):
        raise FormulaTypeError(
            f"ROUND's places must be a whole number from 0 to {MAX_ROUND_PLACES}",
            places.position,
        )
    if value.kind is Kind.INTEGER:
        return INTEGER
    return decimal_type(places.value)


def _extreme(call: Call, args: tuple[Node, ...]) -> FormulaType:
    for arg in args:
        _need(call, arg, {*NUMERIC, Kind.DATE, Kind.DATETIME}, "numbers, dates or date-times")
    return _same(call, args, "arguments")


def _abs(call: Call, args: tuple[Node, ...]) -> FormulaType:
    return _need(call, args[0], set(NUMERIC), "a number")


def _isblank(call: Call, args: tuple[Node, ...]) -> FormulaType:
    return BOOLEAN


def _blankvalue(call: Call, args: tuple[Node, ...]) -> FormulaType:
    return _same(call, args, "arguments")


def _case(call: Call, args: tuple[Node, ...]) -> FormulaType:
    if len(args) % 2:
        raise FormulaTypeError(
            "CASE takes a value, then pairs of match and result, then a default", call.position
        )
    value, *rest = args
    matches, results = rest[0:-1:2], [*rest[1:-1:2], rest[-1]]
    for match in matches:
        if _t(match).kind is Kind.NULL:
            raise FormulaTypeError("CASE cannot match NULL; use ISBLANK(...)", match.position)
        if _t(value).kind is not Kind.NULL and not comparable(_t(value), _t(match)):
            raise FormulaTypeError(
                f"CASE compares {_t(value).name} with {_t(match).name}", match.position
            )
        _check_picklist(value, match)
    return _same(call, results, "results")


def _concat(call: Call, args: tuple[Node, ...]) -> FormulaType:
    for arg in args:
        _need(call, arg, {Kind.STRING}, "text")
    return STRING


def _today(call: Call, args: tuple[Node, ...]) -> FormulaType:
    return DATE


def _now(call: Call, args: tuple[Node, ...]) -> FormulaType:
    return DATETIME


def _datediff(call: Call, args: tuple[Node, ...]) -> FormulaType:
    if len(args) == 3:
        unit = args[0]
        if not (isinstance(unit, Literal) and unit.value in DATEDIFF_UNITS):
            raise FormulaTypeError(
                "DATEDIFF's unit must be one of \"" + '", "'.join(DATEDIFF_UNITS) + '"',
                unit.position,
            )
    for arg in args[-2:]:
        _need(call, arg, {Kind.DATE}, "dates")
    return INTEGER


def _date_part(call: Call, args: tuple[Node, ...]) -> FormulaType:
    _need(call, args[0], {Kind.DATE}, "a date")
    return INTEGER


def _calendar_name(call: Call, arg: Node) -> None:
    if not (isinstance(arg, Literal) and isinstance(arg.value, str) and arg.value):
        raise FormulaTypeError(
            f'{call.name}\'s calendar is the name of a business calendar in quotes, like "cn"',
            arg.position,
        )


def _workday(call: Call, args: tuple[Node, ...]) -> FormulaType:
    date, days, calendar = args
    _need(call, date, {Kind.DATE}, "a date")
    _need(call, days, {Kind.INTEGER}, "a whole number of working days")
    _calendar_name(call, calendar)
    return DATE


def _networkdays(call: Call, args: tuple[Node, ...]) -> FormulaType:
    for arg in args[:2]:
        _need(call, arg, {Kind.DATE}, "dates")
    _calendar_name(call, args[2])
    return INTEGER


def _isworkday(call: Call, args: tuple[Node, ...]) -> FormulaType:
    _need(call, args[0], {Kind.DATE}, "a date")
    _calendar_name(call, args[1])
    return BOOLEAN


def _nextworkday(call: Call, args: tuple[Node, ...]) -> FormulaType:
    _need(call, args[0], {Kind.DATE}, "a date")
    _calendar_name(call, args[1])
    return DATE


#: Functions over business calendars (docs/calendars.md): computed in Python, never in SQL.
CALENDAR_FUNCTIONS = frozenset({"WORKDAY", "NETWORKDAYS", "ISWORKDAY", "NEXTWORKDAY"})

FUNCTIONS: dict[str, FunctionSpec] = {
    "IF": FunctionSpec((3, 3), _if),
    "AND": FunctionSpec((1, None), _logic),
    "OR": FunctionSpec((1, None), _logic),
    "NOT": FunctionSpec((1, 1), _logic),
    "ROUND": FunctionSpec((2, 2), _round),
    "MIN": FunctionSpec((1, None), _extreme),
    "MAX": FunctionSpec((1, None), _extreme),
    "ABS": FunctionSpec((1, 1), _abs),
    "ISBLANK": FunctionSpec((1, 1), _isblank),
    "BLANKVALUE": FunctionSpec((2, 2), _blankvalue),
    "CASE": FunctionSpec((4, None), _case),
    "CONCAT": FunctionSpec((1, None), _concat),
    "TODAY": FunctionSpec((0, 0), _today),
    "NOW": FunctionSpec((0, 0), _now),
    "DATEDIFF": FunctionSpec((2, 3), _datediff),
    "YEAR": FunctionSpec((1, 1), _date_part),
    "QUARTER": FunctionSpec((1, 1), _date_part),
    "MONTH": FunctionSpec((1, 1), _date_part),
    "DAY": FunctionSpec((1, 1), _date_part),
    "WORKDAY": FunctionSpec((3, 3), _workday),
    "NETWORKDAYS": FunctionSpec((3, 3), _networkdays),
    "ISWORKDAY": FunctionSpec((2, 2), _isworkday),
    "NEXTWORKDAY": FunctionSpec((2, 2), _nextworkday),
}
