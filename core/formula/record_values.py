"""The values a formula reads, loaded for one stored record.

:func:`~qiao.core.formula.evaluator.evaluate` takes values by dotted path
(``amount``, ``account.region``); this module fetches them for a record of an
entity: its own fields from the record, related fields by following relations
(each related record read once), rollups with their SQL, and formula fields
through their own formulas. Validation rules, formula fields that do not
compile to SQL and rule engines evaluate through here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, literal, select

from qiao.core.catalog import Catalog
from qiao.core.formula.checker import Formula
from qiao.core.formula.computed import computed_fields
from qiao.core.formula.evaluator import Clock, evaluate
from qiao.core.formula.rollup import rollup_column
from qiao.core.formula.scope import RowScope, scoped
from qiao.core.metadata.model import EntityDef, FieldType

__all__ = ["evaluate_on_record", "load_paths", "load_values"]


def load_values(
    conn: Connection,
    catalog: Catalog,
    entity_name: str,
    record: Mapping[str, Any],
    formula: Formula,
    *,
    scope: RowScope | None = None,
) -> dict[str, Any]:
    """The values ``formula`` reads for ``record``, by dotted path, in stored form.

    ``record`` is a record of ``entity_name`` as the records service returns it
    (stored values by column, relations as ``<name>_id``), or the values a record
    will have after a write; a record not yet stored has no children, so its
    rollups are those of no records. Related records and children are read within
    ``scope``, a reader's row rules (:mod:`qiao.core.formula.scope`); None reads all,
    as validation, automation and migrations do: they judge the data, not a view of it.
    """
    return load_paths(conn, catalog, entity_name, record, formula.fields, scope=scope)


def load_paths(
    conn: Connection,
    catalog: Catalog,
    entity_name: str,
    record: Mapping[str, Any],
    paths: Iterable[str],
    *,
    scope: RowScope | None = None,
) -> dict[str, Any]:
    """Like :func:`load_values` for the paths of several formulas, reading each record once."""
    loader = _Loader(conn, catalog, scope)
    entity = catalog.entity(entity_name)
    return {path: loader.value(entity, record, path.split(".")) for path in paths}


def evaluate_on_record(
    conn: Connection,
    catalog: Catalog,
    entity_name: str,
    record: Mapping[str, Any],
    formula: Formula,
    clock: Clock | None = None,
    *,
    scope: RowScope | None = None,
) -> Any:
    """``formula``'s value for ``record`` (see :func:`load_values`)."""
    values = load_values(conn, catalog, entity_name, record, formula, scope=scope)
    return evaluate(formula, values, clock)


class _Loader:
    """Reads related records once each while the values of one formula are gathered."""

    def __init__(self, conn: Connection, catalog: Catalog, scope: RowScope | None) -> None:
        self.conn = conn
        self.catalog = catalog
        self.scope = scope
        self.rows: dict[tuple[str, str], Mapping[str, Any] | None] = {}

    def value(self, entity: EntityDef, record: Mapping[str, Any], path: list[str]) -> Any:
        field = entity.field(path[0])
        if field is None:
            raise LookupError(f"{entity.name} has no field {path[0]}")
        if len(path) > 1:
            if field.type is not FieldType.RELATION or field.target is None:
                raise LookupError(f"{entity.name}.{field.name} is not a relation")
            related = self.row(field.target, record.get(field.column))
            if related is None:
                return None
            return self.value(self.catalog.entity(field.target), related, path[1:])
        if not field.computed:
            return record.get(field.column)
        if field.name in record:
            return record[field.name]
        computed = computed_fields(self.catalog.registry).field(entity.name, field.name)
        if computed.formula is not None:
            values = {p: self.value(entity, record, p.split(".")) for p in computed.formula.fields}
            return evaluate(computed.formula, values)
        return self.rollup(entity, record, field.name)

    def row(self, entity_name: str, record_id: Any) -> Mapping[str, Any] | None:
        if record_id is None:
            return None
        key = (entity_name, str(record_id))
        if key not in self.rows:
            table = self.catalog.table(entity_name)
            visible = scoped(self.scope, entity_name, table)
            found = self.conn.execute(
                select(table).where(table.c.id == record_id, *visible)
            ).first()
            self.rows[key] = None if found is None else dict(found._mapping)
        return self.rows[key]

    def rollup(self, entity: EntityDef, record: Mapping[str, Any], name: str) -> Any:
        spec = computed_fields(self.catalog.registry).field(entity.name, name).rollup
        assert spec is not None
        table = self.catalog.table(entity.name)

        def parent(field_name: str) -> Any:
            field = entity.field(field_name)
            assert field is not None
            return literal(record.get(field.column), table.c[field.column].type)

        child = self.catalog.entity(spec.entity)
        child_table = self.catalog.table(spec.entity).alias()
        column = rollup_column(
            spec,
            child,
            child_table,
            literal(record.get("id"), table.c.id.type),
            self.conn.dialect.name,
            parent,
            only=scoped(self.scope, spec.entity, child_table),
        )
        return self.conn.execute(select(column)).scalar_one()
