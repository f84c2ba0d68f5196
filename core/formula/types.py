"""The value types of the formula language, and what a formula needs to know about a field.

The checker works on these instead of :class:`~qiao.core.metadata.model.FieldDef`
so the language stays independent of where fields come from: an entity's own
fields, related entities' fields, rollups, or other formulas.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qiao.core.formula.checker import Formula

#: Qiao's integers are GraphQL ``Int`` (signed 32-bit); the default bound of an integer field.
INT_BOUND = 2**31
#: The largest decimal precision Qiao stores (see core/metadata/model.py).
MAX_PRECISION = 18


class Kind(StrEnum):
    """The kinds of value a formula computes."""

    INTEGER = "integer"
    DECIMAL = "decimal"
    STRING = "string"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    #: The type of the literal NULL, which fits wherever a value of any kind does.
    NULL = "null"


NUMERIC = frozenset({Kind.INTEGER, Kind.DECIMAL})

#: How the kinds are named in error messages.
KIND_NAMES = {
    Kind.INTEGER: "integer",
    Kind.DECIMAL: "decimal",
    Kind.STRING: "text",
    Kind.BOOLEAN: "boolean",
    Kind.DATE: "date",
    Kind.DATETIME: "date-time",
    Kind.NULL: "NULL",
}


@dataclass(frozen=True)
class FormulaType:
    """A kind plus, for decimals, the number of places after the point."""

    kind: Kind
    scale: int = 0

    def __str__(self) -> str:
        if self.kind is Kind.DECIMAL:
            return f"decimal({self.scale})"
        return self.kind.value

    @property
    def name(self) -> str:
        """The kind as error messages say it: 'text', 'decimal'."""
        return KIND_NAMES[self.kind]


INTEGER = FormulaType(Kind.INTEGER)
STRING = FormulaType(Kind.STRING)
BOOLEAN = FormulaType(Kind.BOOLEAN)
DATE = FormulaType(Kind.DATE)
DATETIME = FormulaType(Kind.DATETIME)
NULL = FormulaType(Kind.NULL)


def decimal_type(scale: int) -> FormulaType:
    return FormulaType(Kind.DECIMAL, scale)


@dataclass(frozen=True)
class FieldInfo:
    """What the checker and the SQL compiler need to know about a referenced field.

    ``precision`` (total digits of a decimal) and ``bound`` (largest magnitude of an
    integer) let the SQL compiler prove that SQLite's 64-bit arithmetic cannot
    overflow; ``enum_values`` lets the checker refuse a comparison with a picklist
    value that does not exist.
    """

    type: FormulaType
    precision: int = MAX_PRECISION
    bound: int = INT_BOUND
    enum_values: tuple[str, ...] = ()

    @property
    def max_abs(self) -> int:
        """The largest magnitude of the stored representation (scaled for decimals)."""
        if self.type.kind is Kind.DECIMAL:
            return 10**self.precision - 1
        return self.bound


#: Looks up a field path such as ``("account", "region")``: a FieldInfo, a checked Formula
#: (for formula fields, read through their own formula), or None when there is no such
#: field. It may raise :class:`LookupError` with a sentence saying why a path is wrong.
Resolver = Callable[[tuple[str, ...]], "FieldInfo | Formula | None"]
