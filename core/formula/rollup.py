"""Rollup fields: COUNT, COUNT DISTINCT, SUM, MIN, MAX or AVG over a parent's child records, in SQL.

A rollup is a correlated subquery, computed when read, so it always equals a
recomputation from scratch: there is no stored total for concurrent writes to
child records to leave stale. Its optional filter is the filter language of
list queries (:func:`qiao.core.query.compile_filter`), so "this
quarter's paid purchases" means the same in a rollup and in a list.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    MetaData,
    Numeric,
    Table,
    case,
    func,
    literal,
    select,
    type_coerce,
)

from qiao.core.errors import BadUserInput
from qiao.core.formula.checker import DIVISION_SCALE
from qiao.core.formula.metadata import field_info
from qiao.core.formula.types import INTEGER, MAX_PRECISION, FieldInfo, Kind, decimal_type
from qiao.core.metadata.model import STRING_TYPES, EntityDef, FieldDef, FieldType
from qiao.core.metadata.rollup import ParentOperator, RollupSpec
from qiao.core.query import compile_filter
from qiao.core.schema.tables import build_table
from qiao.core.storage.types import ExactDecimal

#: Gives a parent's column by field name (the parent's row of a correlated subquery).
ParentColumns = Callable[[str], ColumnElement[Any]]
_NUMERIC_FIELDS = frozenset({FieldType.INTEGER, FieldType.DECIMAL})
_ORDERED_FIELDS = _NUMERIC_FIELDS | {FieldType.DATE, FieldType.DATETIME}
_COMPARABLE_FIELDS = _ORDERED_FIELDS | STRING_TYPES | {FieldType.ENUM}
#: abs() of the smallest 64-bit integer is SQLite's one way to stop a query with an error.
_SQLITE_INT_MIN = -(2**63)


def check_spec(spec: RollupSpec, child: EntityDef, parent: EntityDef) -> None:
    """Refuse a spec that does not fit the declarations (ValueError with the reason)."""
    if child.name != spec.entity:
        raise ValueError(f"the rollup is over {spec.entity}, not {child.name}")
    link = child.field(spec.link)
    target = parent.name
    if spec.via is not None:
        via = parent.field(spec.via)
        if via is None or via.type is not FieldType.RELATION:
            raise ValueError(f"via: {parent.name}.{spec.via} is not a relation")
        target = str(via.target)
    if link is None or link.type is not FieldType.RELATION or link.target != target:
        raise ValueError(f"{child.name}.{spec.link} is not a relation to {target}")
    _check_filter(child, spec.filter)
    _check_parent_filter(child, parent, spec.parent_filter)
    if spec.field is None:
        return
    field = child.field(spec.field)
    if spec.function == "count_distinct":
        allowed = _COMPARABLE_FIELDS | {FieldType.RELATION}
    elif spec.function in {"sum", "avg"}:
        allowed = _NUMERIC_FIELDS
    else:
        allowed = _ORDERED_FIELDS
    if field is None or field.computed or field.encrypted or field.type not in allowed:
        kinds = {
            "count_distinct": "stored, unencrypted",
            "sum": "number",
            "avg": "number",
        }.get(spec.function, "number, date or date-time")
        raise ValueError(f"{spec.function} needs a {kinds} field of {child.name}")


def spec_info(spec: RollupSpec, child: EntityDef) -> FieldInfo:
    """What a formula reading this rollup needs to know about it."""
    if spec.field is None or spec.function == "count_distinct":
        return FieldInfo(INTEGER)
    field = _field(child, spec.field)
    own = field_info(field)
    assert own is not None
    if spec.function == "sum":
        if own.type.kind is Kind.INTEGER:
            return FieldInfo(INTEGER, bound=10**spec.precision - 1)
        return FieldInfo(own.type, precision=spec.precision)
    if spec.function == "avg":
        # An average is no larger than the largest value, at more places.
        scale = average_scale(field)
        digits = field.effective_precision if field.type is FieldType.DECIMAL else 10
        return FieldInfo(decimal_type(scale), precision=digits + scale - own.type.scale)
    return own


def _check_filter(child: EntityDef, spec: dict[str, Any] | None) -> None:
    """A filter that list queries would refuse is refused when the rollup is defined."""
    try:
        compile_filter(child, build_table(child, MetaData(), with_fks=False), spec)
    except BadUserInput as exc:
        raise ValueError(f"filter: {exc.message}") from None


def _check_parent_filter(
    child: EntityDef, parent: EntityDef, spec: dict[str, dict[ParentOperator, str]] | None
) -> None:
    """Each condition compares a stored child field with a stored parent field of its type."""
    for child_name, conditions in (spec or {}).items():
        mine = child.field(child_name)
        if mine is None or mine.computed or mine.type not in _COMPARABLE_FIELDS:
            raise ValueError(
                f"parent_filter: {child.name}.{child_name} is not a stored number, date, "
                "date-time or text field"
            )
        for parent_name in conditions.values():
            theirs = parent.field(parent_name)
            if theirs is None or theirs.computed or not _comparable(mine, theirs):
                raise ValueError(
                    f"parent_filter: {parent.name}.{parent_name} is not a stored field "
                    f"comparable with {child.name}.{child_name}"
                )


def _comparable(a: FieldDef, b: FieldDef) -> bool:
    if a.encrypted or b.encrypted:
        return False
    if a.type in _NUMERIC_FIELDS:
        return b.type in _NUMERIC_FIELDS
    if a.type in STRING_TYPES:
        return b.type in STRING_TYPES
    return a.type is b.type


def average_scale(field: FieldDef) -> int:
    """AVG keeps the places of a quotient: at least six, more when the field has more."""
    scale = field.effective_scale if field.type is FieldType.DECIMAL else 0
    return max(DIVISION_SCALE, scale)


def _field(child: EntityDef, name: str) -> FieldDef:
    field = child.field(name)
    assert field is not None, "check() the spec first"
    return field


def rollup_column(
    spec: RollupSpec,
    child: EntityDef,
    child_table: Table,
    parent_id: ColumnElement[Any],
    dialect: str,
    parent: ParentColumns | None = None,
    *,
    only: Sequence[ColumnElement[bool]] = (),
) -> ColumnElement[Any]:
    """The rollup as a correlated scalar subquery, for a parent whose id is ``parent_id``.

    Selected, it yields Python values (int, Decimal at the field's scale, date);
    as a column of :func:`~qiao.core.formula.sql.compile_formula` it is in stored
    form, like any column. COUNT and SUM of no children are 0; MIN, MAX and AVG NULL.
    ``parent`` gives the parent's columns by field name, for ``via`` and ``parent_filter``;
    ``only`` are conditions on ``child_table`` a counted child must meet as well (the
    reader's row rules, :mod:`qiao.core.formula.scope`).
    The spec must have passed :meth:`RollupSpec.check` when it was defined.
    """
    link = _field(child, spec.link)
    if spec.via is not None:
        assert parent is not None, "a rollup with via needs the parent's columns"
        parent_id = parent(spec.via)
    where = [
        child_table.c[link.column] == parent_id,
        compile_filter(child, child_table, spec.filter),
        *only,
    ]
    for child_name, conditions in (spec.parent_filter or {}).items():
        mine = child_table.c[_field(child, child_name).column]
        assert parent is not None, "a parent_filter needs the parent's columns"
        for op, parent_name in conditions.items():
            where.append(_compare(op, mine, parent(parent_name)))
    if spec.field is None:
        return select(func.count()).where(*where).scalar_subquery()
    field = _field(child, spec.field)
    column = child_table.c[field.column]
    if spec.function == "count_distinct":
        return select(func.count(column.distinct())).where(*where).scalar_subquery()
    if spec.function in {"min", "max"}:
        aggregate = func.min(column) if spec.function == "min" else func.max(column)
        return select(aggregate).where(*where).scalar_subquery()
    if spec.function == "sum":
        total: ColumnElement[Any] = func.coalesce(func.sum(column), literal(0, column.type))
        if dialect == "sqlite":
            total = _within(total, 10**spec.precision - 1)
        return select(type_coerce(total, column.type)).where(*where).scalar_subquery()
    scale = average_scale(field)
    stored = field.effective_scale if field.type is FieldType.DECIMAL else 0
    average = _average(column, stored, scale, dialect == "sqlite")
    result_type = ExactDecimal(MAX_PRECISION, scale)
    return select(type_coerce(average, result_type)).where(*where).scalar_subquery()


def _compare(op: str, left: Any, right: Any) -> ColumnElement[bool]:
    match op:
        case "eq":
            return left == right
        case "neq":
            return left != right
        case "lt":
            return left < right
        case "lte":
            return left <= right
        case "gt":
            return left > right
    return left >= right


def _within(total: ColumnElement[Any], limit: int) -> ColumnElement[Any]:
    """``total``, or an "integer overflow" error when it breaks the declared precision."""
    raw = type_coerce(total, BigInteger())
    overflow = func.abs(literal(_SQLITE_INT_MIN, BigInteger()))
    return case((func.abs(raw) > literal(limit, BigInteger()), overflow), else_=raw)


def _average(column: Any, stored: int, scale: int, sqlite: bool) -> ColumnElement[Any]:
    """AVG as an exact SUM / COUNT rounded half-up, the way the formula language divides.

    The databases' own AVG works in floating point on SQLite and with its own
    number of places on PostgreSQL; neither would match a recomputation to the fen.
    """
    count = func.count(column)
    if sqlite:
        # Stored values are integers scaled by 10**stored; the quotient is wanted at 10**scale.
        number = type_coerce(column, BigInteger())
        n = func.sum(number) * literal(10 ** (scale - stored), BigInteger())
        magnitude = (2 * func.abs(n) + count) // (2 * count)
        value = case((n < 0, -magnitude), else_=magnitude)
    else:
        number = type_coerce(column, Numeric())
        n = func.sum(number) * literal(decimal.Decimal(10) ** scale, Numeric())
        magnitude = func.div(2 * func.abs(n) + count, 2 * count)
        unit = literal(decimal.Decimal(1).scaleb(-scale), Numeric())
        value = case((n < 0, -magnitude), else_=magnitude) * unit
    return case((count == 0, None), else_=value)
