"""SQLAlchemy tables derived from a metadata registry.

One entity is one table, one field one column: ``account.name`` is the column
``account.name``, a relation ``contact.account`` is ``contact.account_id``.
Formula and rollup fields have no column: they are computed when read.
Every table also carries the system columns id, created_at, updated_at,
created_by_id, updated_by_id and version (for optimistic concurrency).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeEngine

from qiao.core.lru import LRU
from qiao.core.metadata.model import EntityDef, FieldDef, FieldType, OnDelete
from qiao.core.metadata.registry import Registry
from qiao.core.storage.types import ExactDecimal, RecordId, UtcDateTime

_ON_DELETE_SQL = {
    OnDelete.SET_NULL: "SET NULL",
    OnDelete.RESTRICT: "RESTRICT",
    OnDelete.CASCADE: "CASCADE",
}


def column_type(field: FieldDef) -> TypeEngine[object]:
    """The SQL type of a field's column."""
    if field.encrypted:
        return Text()  # a sealed value (docs/encryption.md) is longer than its plaintext
    match field.type:
        case FieldType.STRING | FieldType.EMAIL | FieldType.PHONE | FieldType.URL:
            return String(field.effective_max_length)
        case FieldType.TEXT:
            return Text()
        case FieldType.INTEGER:
            return BigInteger()
        case FieldType.DECIMAL:
            return ExactDecimal(field.effective_precision, field.effective_scale)
        case FieldType.BOOLEAN:
            return Boolean()
        case FieldType.DATE:
            return Date()
        case FieldType.DATETIME:
            return UtcDateTime()
        case FieldType.ENUM:
            return String(64)
        case FieldType.JSON:
            return JSON().with_variant(JSONB(), "postgresql")
        case FieldType.RELATION:
            return RecordId()
    raise AssertionError(f"no column type for {field.type}")


def field_column(entity: EntityDef, field: FieldDef, *, with_fk: bool = True) -> Column[object]:
    """The column of one field; relations get a foreign key unless ``with_fk`` is false."""
    args: list[object] = []
    if field.type is FieldType.RELATION and with_fk:
        assert field.target is not None
        args.append(
            ForeignKey(
                f"{field.target}.id",
                name=fk_name(entity.name, field),
                ondelete=_ON_DELETE_SQL[field.on_delete],
            )
        )
    return Column(field.column, column_type(field), *args, nullable=True)


def blind_index_column(field: FieldDef) -> Column[object] | None:
    """The blind-index column of a searchable encrypted field (``<column>_bidx``), if any."""
    if not (field.encrypted and field.searchable):
        return None
    return Column(f"{field.column}_bidx", String(64), nullable=True)


def stored_columns(entity: EntityDef) -> dict[str, FieldDef]:
    """Every column the fields of ``entity`` store, blind indexes included, to its field."""
    columns: dict[str, FieldDef] = {}
    for f in entity.stored_fields:
        columns[f.column] = f
        bidx = blind_index_column(f)
        if bidx is not None:
            columns[bidx.name] = f
    return columns


def fk_name(entity: str, field: FieldDef) -> str:
    return _short(f"fk_{entity}_{field.column}")


def index_name(entity: str, columns: tuple[str, ...], unique: bool) -> str:
    return _short(f"{'uq' if unique else 'ix'}_{entity}_{'_'.join(columns)}")


def _short(name: str) -> str:
    """Identifiers are limited to 63 bytes on PostgreSQL; keep names deterministic."""
    if len(name) <= 63:
        return name
    return f"{name[:54]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def system_columns() -> list[Column[object]]:
    return [
        Column("id", RecordId(), primary_key=True),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
        Column("created_by_id", RecordId(), nullable=True),
        Column("updated_by_id", RecordId(), nullable=True),
        Column("version", Integer(), nullable=False, server_default="1"),
    ]


@dataclass(frozen=True)
class IndexSpec:
    name: str
    columns: tuple[str, ...]
    unique: bool


def index_specs(entity: EntityDef) -> list[IndexSpec]:
    """Indexes a table needs: unique and indexed fields, relations, declared composites."""
    specs: dict[str, IndexSpec] = {}
    for f in entity.stored_fields:
        if f.unique or f.indexed or f.type is FieldType.RELATION:
            cols = (f.column,)
            name = index_name(entity.name, cols, f.unique)
            specs[name] = IndexSpec(name, cols, f.unique)
        if f.encrypted and f.searchable:
            cols = (f"{f.column}_bidx",)
            name = index_name(entity.name, cols, False)
            specs[name] = IndexSpec(name, cols, False)
    for declared in entity.indexes:
        cols = tuple(entity.field(n).column for n in declared)  # type: ignore[union-attr]
        name = index_name(entity.name, cols, False)
        specs[name] = IndexSpec(name, cols, False)
    specs[f"ix_{entity.name}_created_at"] = IndexSpec(
        f"ix_{entity.name}_created_at", ("created_at",), False
    )
    return list(specs.values())


def build_table(entity: EntityDef, metadata: MetaData, *, with_fks: bool = True) -> Table:
    """The table of ``entity`` in ``metadata``, columns, keys and indexes included."""
    fields = entity.stored_fields
    columns = system_columns() + [field_column(entity, f, with_fk=with_fks) for f in fields]
    columns += [c for f in fields if (c := blind_index_column(f)) is not None]
    table = Table(entity.name, metadata, *columns)
    for spec in index_specs(entity):
        Index(spec.name, *(table.c[c] for c in spec.columns), unique=spec.unique)
    return table


class Tables:
    """The tables of a set of entity declarations, by entity name.

    Tables follow from the declarations alone, so use :meth:`of`: registry snapshots
    whose entities are the same (a new metadata version that changed a setting, every
    runtime of one deployment in a process) then share one set instead of building
    tables again, which takes about 20 ms for the standard CRM. Tables are never
    changed once built; DDL builds its own.
    """

    def __init__(self, entities: Iterable[EntityDef]) -> None:
        metadata = MetaData()
        self._tables = {entity.name: build_table(entity, metadata) for entity in entities}

    @staticmethod
    def of(registry: Registry) -> Tables:
        """The tables of ``registry``'s entities, shared with snapshots declaring the same."""
        key = registry.declarations
        tables = _SHARED.get(key)
        if tables is None:
            tables = Tables(registry.entities.values())
            _SHARED.put(key, tables)
        return tables

    def __getitem__(self, entity: str) -> Table:
        return self._tables[entity]


#: The last few sets of tables built in this process, one per deployment or metadata
#: shape it works with, by the declarations they were built from.
_SHARED: LRU[tuple[tuple[str, str], ...], Tables] = LRU(8)
