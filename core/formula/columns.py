"""Computed fields as SQL expressions over an entity's table, for SELECT, WHERE and ORDER BY.

A rollup is always a correlated subquery. A formula field compiles with
:func:`~qiao.core.formula.sql.compile_formula`, reading related fields through
correlated subqueries too; where it cannot be exact in the database's SQL
(SQLite's 64-bit integers), the reason is kept instead: such a field is
computed in Python when read, and filtering or ordering by it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Numeric, case, cast, null, select, type_coerce

from qiao.core.catalog import Catalog
from qiao.core.errors import BadUserInput
from qiao.core.formula.computed import computed_fields
from qiao.core.formula.errors import NotCompilable
from qiao.core.formula.evaluator import Clock
from qiao.core.formula.rollup import rollup_column
from qiao.core.formula.scope import RowScope, scoped
from qiao.core.formula.sql import compile_formula
from qiao.core.formula.types import MAX_PRECISION
from qiao.core.metadata.model import EntityDef, FieldDef, FieldType
from qiao.core.metadata.rollup import RollupSpec
from qiao.core.storage.types import ExactDecimal


@dataclass(frozen=True)
class ComputedColumns:
    """The SQL of an entity's computed fields by name, or why a field has none."""

    columns: dict[str, ColumnElement[Any]] = field(default_factory=dict)
    #: Formula fields that do not compile here, with the reason.
    refused: dict[str, str] = field(default_factory=dict)

    def column(self, name: str) -> ColumnElement[Any]:
        """The SQL of ``name``, or BAD_USER_INPUT saying why it cannot be filtered or sorted."""
        found = self.columns.get(name)
        if found is not None:
            return found
        reason = self.refused.get(name, "it is not a computed field of this entity")
        raise BadUserInput(
            f"cannot filter or sort by {name} on this database: its formula cannot be "
            f"computed exactly in SQL ({reason}); it is computed when records are read",
            field=name,
        )


def computed_columns(
    catalog: Catalog,
    entity_name: str,
    table: FromClause,
    dialect: str,
    clock: Clock | None = None,
    *,
    scope: RowScope | None,
) -> ComputedColumns:
    """The computed fields of ``entity_name`` over ``table`` (the table or an alias of it).

    ``scope`` is the reader's row rules (:mod:`qiao.core.formula.scope`): related records
    and children outside it are not read, except by ``system_computed`` fields. None
    reads every record, for readers whose rules admit all (the system actor).
    """
    entity = catalog.entity(entity_name)
    result = ComputedColumns()
    if not entity.computed_fields:
        return result
    computed = computed_fields(catalog.registry).of(entity_name)
    readers = {False: _Reader(_Related(catalog, entity, table, dialect, scope))}
    if scope is not None and any(c.field.system_computed for c in computed.values()):
        readers[True] = _Reader(_Related(catalog, entity, table, dialect, None))
    for name, c in computed.items():
        reader = readers[c.field.system_computed and scope is not None]
        if c.rollup is not None:
            result.columns[name] = _at_scale(reader.own[name], c.field, dialect)
            continue
        assert c.formula is not None
        try:
            sql = compile_formula(
                c.formula,
                dialect=dialect,
                columns=reader.own,
                related=reader.related,
                clock=clock,
            )
        except NotCompilable as exc:
            result.refused[name] = exc.describe()
            continue
        result.columns[name] = _at_scale(sql, c.field, dialect)
    return result


def _at_scale(sql: ColumnElement[Any], field: FieldDef, dialect: str) -> ColumnElement[Any]:
    """A decimal at exactly the field's places, as PostgreSQL shows a stored NUMERIC(p, s).

    PostgreSQL's NUMERIC arithmetic keeps the places its operands happen to have
    (a SUM of no rows is ``0``); the cast gives every value the declared scale, in
    SQL as in the API's JSON. SQLite's scaled integers are at the scale already.
    """
    if dialect != "postgresql" or field.type is not FieldType.DECIMAL:
        return sql
    scale = field.effective_scale
    return type_coerce(cast(sql, Numeric(1000, scale)), ExactDecimal(MAX_PRECISION, scale))


class _Reader:
    """An entity's columns for formulas, its rollups included, read within one scope."""

    def __init__(self, related: _Related) -> None:
        self.related = related
        entity, table = related.entity, related.table
        self.own: dict[str, ColumnElement[Any]] = {
            f.name: table.c[f.column] for f in entity.stored_fields
        }
        for name, c in computed_fields(related.catalog.registry).of(entity.name).items():
            if c.rollup is not None:
                self.own[name] = related.rollup(entity, c.rollup, table.c.id, table)


class _Related:
    """Dotted paths as correlated scalar subqueries, following relations from ``table``.

    Each record read on the way (a hop, the last record, a rollup's children) must be
    within ``scope``: past a record the reader may not see, the path is null.
    """

    def __init__(
        self,
        catalog: Catalog,
        entity: EntityDef,
        table: FromClause,
        dialect: str,
        scope: RowScope | None,
    ):
        self.catalog = catalog
        self.entity = entity
        self.table = table
        self.dialect = dialect
        self.scope = scope

    def __call__(self, path: tuple[str, ...]) -> ColumnElement[Any]:
        current = self.entity
        reference: ColumnElement[Any] = self.table.c[self._relation(current, path[0]).column]
        current = self.catalog.entity(self._target(current, path[0]))
        for step in path[1:-1]:
            hop = self.catalog.table(current.name).alias()
            column = hop.c[self._relation(current, step).column]
            reference = (
                select(column)
                .where(hop.c.id == reference, *scoped(self.scope, current.name, hop))
                .scalar_subquery()
            )
            current = self.catalog.entity(self._target(current, step))
        last = current.field(path[-1])
        assert last is not None
        row = self.catalog.table(current.name).alias()
        visible = scoped(self.scope, current.name, row)
        if last.rollup is not None:
            spec = computed_fields(self.catalog.registry).field(current.name, last.name).rollup
            assert spec is not None
            rollup = self.rollup(current, spec, reference, row, by_id=True)
            if not visible:
                return rollup
            # A rollup of a record the reader may not see is null, like its other fields.
            seen = select(row.c.id).where(row.c.id == reference, *visible).exists()
            return case((seen, rollup), else_=null())
        return select(row.c[last.column]).where(row.c.id == reference, *visible).scalar_subquery()

    def rollup(
        self,
        parent: EntityDef,
        spec: RollupSpec,
        parent_id: ColumnElement[Any],
        parent_table: FromClause,
        *,
        by_id: bool = False,
    ) -> ColumnElement[Any]:
        """A rollup of ``parent``; ``by_id`` when ``parent_table`` is not the outer row."""

        def column(name: str) -> ColumnElement[Any]:
            found = parent.field(name)
            assert found is not None
            if by_id:
                return (
                    select(parent_table.c[found.column])
                    .where(parent_table.c.id == parent_id)
                    .scalar_subquery()
                )
            return parent_table.c[found.column]

        child_table = self.catalog.table(spec.entity).alias()
        child = self.catalog.entity(spec.entity)
        return rollup_column(
            spec,
            child,
            child_table,
            parent_id,
            self.dialect,
            column,
            only=scoped(self.scope, spec.entity, child_table),
        )

    @staticmethod
    def _relation(entity: EntityDef, name: str) -> Any:
        found = entity.field(name)
        assert found is not None, f"{entity.name}.{name} was checked with the formula"
        return found

    def _target(self, entity: EntityDef, name: str) -> str:
        target = self._relation(entity, name).target
        assert target is not None
        return target
