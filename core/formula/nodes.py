"""The syntax tree of a formula.

The parser builds these nodes without types; the checker returns a copy with a
:class:`~qiao.core.formula.types.FormulaType` on every node, which is what the
evaluator and the SQL compiler consume. Nodes are immutable and hashable, so a
checked formula can be cached and shared between threads.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass

from qiao.core.formula.errors import Position
from qiao.core.formula.types import FieldInfo, FormulaType


@dataclass(frozen=True)
class Node:
    position: Position
    #: Filled in by the checker; None in a tree fresh from the parser.
    type: FormulaType | None


@dataclass(frozen=True)
class Literal(Node):
    """A constant: a number (int or exact Decimal), text, TRUE/FALSE or NULL."""

    value: int | decimal.Decimal | str | bool | None


@dataclass(frozen=True)
class Field(Node):
    """A field of the record (``amount``) or of a related one (``account.region``)."""

    path: tuple[str, ...]
    info: FieldInfo | None = None

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class Unary(Node):
    """Unary minus (``-x``); unary plus is dropped by the parser."""

    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    """An operator: ``+ - * /``, ``&``, or a comparison ``= <> < <= > >=``."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call(Node):
    """A function call; ``name`` is upper-case whatever case the formula used."""

    name: str
    args: tuple[Node, ...]
