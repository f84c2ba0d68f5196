"""Which other records a computed field reads: those its reader may see.

A formula over a relation (``account.region``) and a rollup over children read records
other than the one being read. Unless a field is declared ``system_computed``
(docs/formulas.md#permissions), they read them under the reader's row rules: a related
record the reader may not see is as if absent (its fields are null, a child is not
counted), so a computed value never tells of records the reader's rules hide.

The formula layer sits below permissions, so the rules arrive as a function: given an
entity and the table (or alias) a subquery reads it from, the condition its rows must
meet, or None when every row qualifies.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import ColumnElement, FromClause

#: ``scope(entity, table)``: the reader's condition on ``table``'s rows, or None for all.
RowScope = Callable[[str, FromClause], ColumnElement[bool] | None]


def scoped(scope: RowScope | None, entity: str, table: FromClause) -> list[ColumnElement[bool]]:
    """The WHERE conditions ``scope`` puts on ``table``: none when unscoped or unrestricted."""
    if scope is None:
        return []
    condition = scope(entity, table)
    return [] if condition is None else [condition]
