"""Bring the database to the metadata: kernel migrations and entity tables.

Kernel tables follow Alembic revision scripts. Entity tables are reconciled
with the registry using Alembic's operations: missing tables, columns and
indexes are created, and a column whose field became encrypted is widened to
TEXT (its sealed values are longer); nothing is dropped or narrowed here. Changes that could
lose data go through :mod:`qiao.core.customisation.changes`, which checks first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from alembic.command import upgrade
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.operations.ops import CreateTableOp
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, ForeignKeyConstraint, MetaData, String, Text, inspect

from qiao.core.metadata.model import EntityDef, FieldDef, FieldType
from qiao.core.metadata.registry import Registry
from qiao.core.schema.tables import (
    blind_index_column,
    build_table,
    field_column,
    fk_name,
    index_specs,
    stored_columns,
)


def _alembic_config(conn: Connection | None = None) -> Config:
    cfg = Config()
    location = resources.files("qiao.core.storage") / "migrations"
    cfg.set_main_option("script_location", str(location))
    cfg.attributes["connection"] = conn
    return cfg


def kernel_head() -> str | None:
    """The newest kernel revision this version of Qiao ships."""
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def kernel_revision(conn: Connection) -> str | None:
    ctx = MigrationContext.configure(conn, opts={"version_table": "qiao_alembic_version"})
    return ctx.get_current_revision()


def upgrade_kernel(conn: Connection) -> None:
    """Apply the kernel's Alembic revisions up to head on ``conn``."""
    upgrade(_alembic_config(conn), "head")


@dataclass
class SchemaPlan:
    """What reconciling entity tables with a registry would do, and what it would not."""

    create_tables: list[str] = field(default_factory=list)
    add_columns: list[tuple[str, str]] = field(default_factory=list)
    add_indexes: list[tuple[str, str]] = field(default_factory=list)
    #: Columns of fields that became encrypted, still of a bounded text type: sealed values are
    #: longer than their plaintext, so they become TEXT (PostgreSQL; SQLite does not bound).
    widen_columns: list[tuple[str, str]] = field(default_factory=list)
    #: Columns in the database that no field declares (left in place; see changes.drop_field).
    orphan_columns: list[tuple[str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.create_tables or self.add_columns or self.add_indexes or self.widen_columns
        )


def plan_entities(conn: Connection, registry: Registry) -> SchemaPlan:
    """Compare the database with ``registry`` without changing anything."""
    insp = inspect(conn)
    existing = set(insp.get_table_names())
    plan = SchemaPlan()
    for entity in registry.entities.values():
        if entity.name not in existing:
            plan.create_tables.append(entity.name)
            continue
        described = insp.get_columns(entity.name)
        columns = {c["name"] for c in described}
        declared = set(stored_columns(entity))
        if conn.dialect.name != "sqlite":
            plan.widen_columns += [
                (entity.name, c["name"]) for c in described if _bounded_but_sealed(entity, c)
            ]
        plan.add_columns += [(entity.name, c) for c in sorted(declared - columns)]
        system = {"id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version"}
        plan.orphan_columns += [(entity.name, c) for c in sorted(columns - declared - system)]
        indexes = {i["name"] for i in insp.get_indexes(entity.name)}
        plan.add_indexes += [
            (entity.name, spec.name) for spec in index_specs(entity) if spec.name not in indexes
        ]
    return plan


def apply_entities(conn: Connection, registry: Registry) -> SchemaPlan:
    """Create what the registry declares and the database lacks, in one transaction."""
    plan = plan_entities(conn, registry)
    if plan.empty:
        return plan
    ops = Operations(MigrationContext.configure(conn))
    sqlite = conn.dialect.name == "sqlite"
    new = [registry.entity(n) for n in plan.create_tables]
    # SQLite checks foreign keys only when rows change, so tables may reference tables
    # created after them; PostgreSQL needs every target first, then the constraints.
    for entity in new:
        table = build_table(entity, MetaData(), with_fks=sqlite)
        ops.invoke(CreateTableOp.from_table(table))
        for spec in index_specs(entity):
            ops.create_index(spec.name, entity.name, list(spec.columns), unique=spec.unique)
    if not sqlite:
        for entity in new:
            _add_foreign_keys(ops, entity, [f.column for f in entity.relations])
    for table_name, column in plan.add_columns:
        entity = registry.entity(table_name)
        f = stored_columns(entity)[column]
        if f.column != column:  # the blind index of a searchable encrypted field
            ops.add_column(table_name, blind_index_column(f))  # type: ignore[arg-type]
        elif f.type is not FieldType.RELATION:
            ops.add_column(table_name, field_column(entity, f))
        elif sqlite:
            _add_sqlite_relation(conn, entity, f)
        else:
            ops.add_column(table_name, field_column(entity, f, with_fk=False))
            _add_foreign_keys(ops, entity, [column])
    for table_name, column in plan.widen_columns:
        ops.alter_column(table_name, column, type_=Text(), existing_nullable=True)
    for table_name, index in plan.add_indexes:
        spec = next(s for s in index_specs(registry.entity(table_name)) if s.name == index)
        if table_name not in plan.create_tables:
            ops.create_index(spec.name, table_name, list(spec.columns), unique=spec.unique)
    return plan


def _bounded_but_sealed(entity: EntityDef, column: Mapping[str, Any]) -> bool:
    """Whether ``column`` holds an encrypted field but is still a VARCHAR of its plaintext."""
    declared = next((f for f in entity.fields if f.column == column["name"]), None)
    if declared is None or not declared.encrypted:
        return False
    return (
        isinstance(column["type"], String) and getattr(column["type"], "length", None) is not None
    )


def _add_foreign_keys(ops: Operations, entity: EntityDef, columns: list[str]) -> None:
    table = build_table(entity, MetaData(), with_fks=True)
    for constraint in table.constraints:
        if isinstance(constraint, ForeignKeyConstraint) and constraint.column_keys[0] in columns:
            f = next(f for f in entity.relations if f.column == constraint.column_keys[0])
            ops.create_foreign_key(
                fk_name(entity.name, f),
                entity.name,
                f.target or "",
                [f.column],
                ["id"],
                ondelete=constraint.ondelete,
            )


def _add_sqlite_relation(conn: Connection, entity: EntityDef, f: FieldDef) -> None:
    """Add a relation column with its foreign key inline, the one way SQLite accepts.

    Alembic adds a column's foreign key as a separate ALTER, which SQLite lacks.
    """
    column = field_column(entity, f)
    fk = next(iter(column.foreign_keys))
    quote = conn.dialect.identifier_preparer.quote
    conn.exec_driver_sql(
        f"ALTER TABLE {quote(entity.name)} ADD COLUMN {quote(f.column)} "
        f"{column.type.compile(dialect=conn.dialect)} CONSTRAINT {quote(fk_name(entity.name, f))} "
        f"REFERENCES {quote(f.target or '')} (id) ON DELETE {fk.ondelete}"
    )
