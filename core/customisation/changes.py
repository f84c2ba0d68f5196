"""Admins' run-time changes to metadata: custom entities and fields, applied live.

Every change is one write transaction. It locks the metadata version, builds
the new registry and checks it as a whole (and as a GraphQL schema), checks the
data already stored against the new declaration, alters the tables with
Alembic's operations, stores the definition and a history row, and moves the
version on. SQLite and PostgreSQL both run DDL inside transactions, so a
refused or failing change leaves nothing behind. After the commit this process
installs the new catalog; other processes see the new version at their next
check (``metadata_check_interval``).

A column's type changes by adding a new column, copying every value converted
in Python (with the conversion the records service applies to input), dropping
the old column and renaming the new one. That works alike on both databases and
never recreates a table: on SQLite, dropping a table that others reference runs
their ON DELETE actions, which would clear or delete related records.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alembic.migration import MigrationContext
from alembic.operations import Operations
from pydantic import ValidationError
from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    MetaData,
    Table,
    bindparam,
    func,
    inspect,
    select,
    update,
)
from strawberry.exceptions import StrawberryException

from qiao.core import audit
from qiao.core.catalog import Catalog
from qiao.core.errors import ConfigurationError, Conflict, Forbidden, MetadataError, NotFound
from qiao.core.formula.computed import check_computed
from qiao.core.graphql.service import shared_schema
from qiao.core.metadata import store
from qiao.core.metadata.model import (
    STRING_TYPES,
    EntityDef,
    FieldDef,
    FieldType,
    ValidationRule,
    describe_validation_error,
)
from qiao.core.metadata.registry import Registry
from qiao.core.metadata.values import coerce, coerce_default
from qiao.core.permissions.hiding import load_hiding
from qiao.core.records.context import Actor, Source
from qiao.core.schema import ddl
from qiao.core.schema.tables import Tables, column_type, index_specs
from qiao.core.storage.types import RecordId

if TYPE_CHECKING:
    from qiao.core.runtime import Runtime

#: An entity or field as a manifest writes it, or already parsed.
EntityInput = EntityDef | Mapping[str, Any]
FieldInput = FieldDef | Mapping[str, Any]


@dataclass(frozen=True)
class Change:
    """What a change did: the metadata version it created, and what it touched."""

    version: int
    operation: str
    entity: str
    field: str | None = None


class MetadataChanges:
    """Applies admins' metadata changes to one runtime's database, then installs them."""

    def __init__(
        self, runtime: Runtime, source: Source = Source.CLI, request_id: str | None = None
    ) -> None:
        self.runtime = runtime
        #: Where the changes come from and which request, for the audit log.
        self.source = source
        self.request_id = request_id or uuid.uuid4().hex

    # -- Entities -------------------------------------------------------------------------

    def create_entity(
        self, definition: EntityInput, *, actor: Actor, note: str | None = None
    ) -> Change:
        """Create a custom entity and its table."""
        entity = parse_entity(definition)

        def apply(conn: Connection, current: Registry) -> dict[str, Any] | None:
            if entity.name in current.entities:
                raise MetadataError(f"entity {entity.name!r} exists already", field="name")
            registry = self._candidate(conn, [*current.entities.values(), entity], "name")
            ddl.apply_entities(conn, registry)
            store.save_custom_entity(conn, entity)
            return entity.as_data()

        return self._run(actor, "create_entity", entity.name, None, note, apply)

    def drop_entity(
        self, name: str, *, actor: Actor, force: bool = False, note: str | None = None
    ) -> Change:
        """Drop a custom entity; one holding records only with ``force``."""

        def apply(conn: Connection, current: Registry) -> dict[str, Any] | None:
            entity = _entity(current, name)
            if entity.source != "custom":
                raise MetadataError(
                    f"entity {name!r} is declared by plugin {entity.source!r}; "
                    "only custom entities can be dropped"
                )
            for rev in current.referencing(name):
                if rev.entity != name:
                    raise MetadataError(
                        f"{rev.entity}.{rev.field.name} points at {name}; drop that field first",
                        field=rev.field.name,
                    )
            self._candidate(conn, [e for e in current.entities.values() if e.name != name], None)
            rows = _count(conn, Tables.of(current)[name])
            if rows and not force:
                raise Conflict(
                    f"{name} has {rows} records; pass force to drop the entity and its data",
                    records=rows,
                )
            _operations(conn).drop_table(name)
            store.delete_custom_entity(conn, name)
            return None

        return self._run(actor, "drop_entity", name, None, note, apply)

    # -- Fields ---------------------------------------------------------------------------

    def add_field(
        self, entity: str, definition: FieldInput, *, actor: Actor, note: str | None = None
    ) -> Change:
        """Add a custom field (a column) to any entity; existing records get its default."""
        field = parse_field(definition)

        def apply(conn: Connection, current: Registry) -> dict[str, Any] | None:
            base = _entity(current, entity)
            if base.field(field.name) is not None:
                raise MetadataError(f"{entity}.{field.name} exists already", field=field.name)
            updated = _edited(lambda: base.with_field(field), field.name)
            registry = self._candidate(conn, _replacing(current, updated), field.name)
            table = Tables.of(registry)[entity]
            rows = _count(conn, table)
            if rows and field.required and field.default is None:
                raise MetadataError(
                    f"{entity} has {rows} records; a required field needs a default for them",
                    field=field.name,
                )
            if rows > 1 and field.unique and field.default is not None:
                raise Conflict(
                    f"{entity} has {rows} records, which would all get the same value in the "
                    f"unique field {field.name}",
                    field=field.name,
                )
            ddl.apply_entities(conn, registry)
            if rows and field.default is not None:
                conn.execute(update(table).values({field.column: coerce_default(field)}))
            _store_field(conn, updated, field)
            return field.as_data()

        return self._run(actor, "add_field", entity, field.name, note, apply)

    def alter_field(
        self,
        entity: str,
        name: str,
        definition: FieldInput,
        *,
        actor: Actor,
        force: bool = False,
        note: str | None = None,
    ) -> Change:
        """Replace a custom field's declaration, converting its stored values.

        A change that would lose stored values (a narrower type or length, fewer
        decimal places, a removed picklist value) is refused unless ``force``,
        which clears the values that do not fit.
        """
        data = definition.as_data() if isinstance(definition, FieldDef) else definition
        if not isinstance(data, Mapping):
            raise MetadataError("a field definition is a mapping in the manifest format")

        def apply(conn: Connection, current: Registry) -> dict[str, Any]:
            base = _entity(current, entity)
            old = _field(base, name)
            _require_custom(conn, base, name)
            field = parse_field({"name": name, **data})
            if field.name != name:
                raise MetadataError(
                    f"fields cannot be renamed ({name} -> {field.name}); add a new field instead",
                    field=name,
                )
            _check_relation_change(entity, old, field)
            _check_computed_change(entity, old, field)
            updated = _edited(lambda: _with_replaced(base, field), name)
            registry = self._candidate(conn, _replacing(current, updated), name)
            if not field.computed:
                _convert(conn, Tables.of(current)[entity], entity, old, field, force)
            _drop_indexes(conn, entity, _index_names(base) - _index_names(updated))
            ddl.apply_entities(conn, registry)
            _store_field(conn, updated, field)
            return field.as_data()

        return self._run(actor, "alter_field", entity, name, note, apply)

    def encrypt_field(
        self, entity: str, name: str, *, actor: Actor, note: str | None = None
    ) -> Change:
        """Make a standard field's column ready for ciphertext, after qiao.toml declared it.

        The caller has added ``entity.name`` to ``[encryption] fields``, so the
        registry built here has the field encrypted and searchable. Its indexes
        go (ciphertext is random), its column becomes TEXT (a sealed value is
        longer than the plaintext's limit), and its blind-index column is added.
        Moving the metadata version on makes every running process rebuild its
        registry, and so seal the field's new values, at its next check. The
        stored values are sealed afterwards, in batches
        (:func:`qiao.core.encryption.conversion.encrypt_values`).
        """

        def apply(conn: Connection, current: Registry) -> dict[str, Any]:
            field = _field(_entity(current, entity), name)
            if not (field.encrypted and field.searchable):
                raise MetadataError(
                    f"{entity}.{name} is not declared in [encryption] fields of qiao.toml",
                    field=name,
                )
            table = Tables.of(current)[entity].name
            _drop_indexes(conn, table, _indexes_on(conn, table, field.column))
            if conn.dialect.name == "postgresql":
                _operations(conn).alter_column(table, field.column, type_=column_type(field))
            ddl.apply_entities(conn, current)
            return field.as_data()

        return self._run(actor, "encrypt_field", entity, name, note, apply)

    def drop_field(
        self,
        entity: str,
        name: str,
        *,
        actor: Actor,
        force: bool = False,
        note: str | None = None,
    ) -> Change:
        """Drop a custom field and its column; one holding values only with ``force``."""

        def apply(conn: Connection, current: Registry) -> dict[str, Any] | None:
            base = _entity(current, entity)
            field = _field(base, name)
            _require_custom(conn, base, name)
            updated = _edited(lambda: base.without_field(name), name)
            self._candidate(conn, _replacing(current, updated), name)
            if not field.computed:
                _drop_column(conn, Tables.of(current)[entity], field, force)
            if updated.source == "custom":
                store.save_custom_entity(conn, updated)
            else:
                store.delete_custom_field(conn, entity, name)
            return None

        return self._run(actor, "drop_field", entity, name, note, apply)

    # -- Validation rules -----------------------------------------------------------------

    def add_validation_rule(
        self,
        entity: str,
        definition: ValidationRule | Mapping[str, Any],
        *,
        actor: Actor,
        note: str | None = None,
    ) -> Change:
        """Add a validation rule to any entity; it applies to writes from now on."""
        rule = parse_rule(definition)

        def apply(conn: Connection, current: Registry) -> dict[str, Any] | None:
            base = _entity(current, entity)
            if any(r.name == rule.name for r in base.validation_rules):
                raise MetadataError(f"{entity} has a rule {rule.name} already", field=rule.name)
            rules = (*base.validation_rules, rule)
            updated = _edited(lambda: _with_rules(base, rules), rule.name)
            self._candidate(conn, _replacing(current, updated), rule.name)
            if updated.source == "custom":
                store.save_custom_entity(conn, updated)
            else:
                store.save_custom_rule(conn, entity, rule)
            return rule.model_dump(mode="json", exclude_none=True)

        return self._run(actor, "add_validation_rule", entity, rule.name, note, apply)

    def drop_validation_rule(
        self, entity: str, name: str, *, actor: Actor, note: str | None = None
    ) -> Change:
        """Remove a validation rule admins added (or any rule of a custom entity)."""

        def apply(conn: Connection, current: Registry) -> dict[str, Any] | None:
            base = _entity(current, entity)
            if not any(r.name == name for r in base.validation_rules):
                raise NotFound(f"{entity} has no validation rule {name!r}", field=name)
            if base.source == "custom":
                rules = tuple(r for r in base.validation_rules if r.name != name)
                updated = _edited(lambda: _with_rules(base, rules), name)
                store.save_custom_entity(conn, updated)
                return None
            if (entity, name) not in store.custom_rule_names(conn):
                raise MetadataError(
                    f"{entity}.{name} is declared by a plugin; only rules added by "
                    "administrators can be removed",
                    field=name,
                )
            store.delete_custom_rule(conn, entity, name)
            return None

        return self._run(actor, "drop_validation_rule", entity, name, note, apply)

    # -- The transaction ------------------------------------------------------------------

    def _run(
        self,
        actor: Actor,
        operation: str,
        entity: str,
        field: str | None,
        note: str | None,
        apply: Callable[[Connection, Registry], dict[str, Any] | None],
    ) -> Change:
        if not actor.is_admin:
            raise Forbidden("only administrators may change entities and fields")
        with self.runtime.db.write() as conn:
            version = store.lock_version(conn)
            definition = apply(conn, self.runtime.build_registry(conn))
            new_version = store.record_change(
                conn,
                version=version,
                operation=operation,
                entity=entity,
                field=field,
                definition=definition,
                actor_id=actor.user_id,
                note=note,
            )
            audit.record(
                conn,
                actor=actor,
                source=self.source,
                request_id=self.request_id,
                operation=f"metadata.{operation}",
                entity=entity,
                changes={
                    "field": field,
                    "version": new_version,
                    "definition": definition,
                    "note": note,
                },
            )
            # Built from what was stored, exactly as other processes will build it.
            registry = self.runtime.build_registry(conn)
        self.runtime.install(Catalog.of(registry))
        return Change(new_version, operation, entity, field)

    def _candidate(
        self, conn: Connection, entities: Iterable[EntityDef], field: str | None
    ) -> Registry:
        """The registry after the change, refused if it or its GraphQL schema is invalid.

        The schema is built as the GraphQL service will serve it (with what the
        stored roles hide), so the service finds it built once the change is in.
        """
        try:
            registry = check_computed(Registry.build(entities))
        except MetadataError as exc:
            raise MetadataError(exc.message, field=field, **exc.details) from None
        catalog = Catalog.of(registry)
        try:
            shared_schema(catalog, self.runtime.plugins.graphql_types(), load_hiding(conn, catalog))
        except (ConfigurationError, StrawberryException) as exc:
            message = getattr(exc, "message", None) or str(exc)
            raise MetadataError(f"{message}; choose another name", field=field) from None
        return registry


# -- Parsing ------------------------------------------------------------------------------


def parse_entity(definition: EntityInput) -> EntityDef:
    """A custom entity from manifest data, or :class:`MetadataError` naming the problem."""
    data = definition.as_data() if isinstance(definition, EntityDef) else definition
    if not isinstance(data, Mapping):
        raise MetadataError("an entity definition is a mapping in the manifest format")
    try:
        return EntityDef.model_validate({**data, "source": "custom"})
    except ValidationError as exc:
        raise MetadataError(describe_validation_error(exc), field=_error_field(exc, data)) from None


def parse_field(definition: FieldInput) -> FieldDef:
    """A field from manifest data, or :class:`MetadataError` naming the field."""
    if isinstance(definition, FieldDef):
        return definition
    if not isinstance(definition, Mapping):
        raise MetadataError("a field definition is a mapping in the manifest format")
    try:
        return FieldDef.model_validate(dict(definition))
    except ValidationError as exc:
        name = definition.get("name")
        raise MetadataError(
            describe_validation_error(exc), field=name if isinstance(name, str) else "name"
        ) from None


def parse_rule(definition: ValidationRule | Mapping[str, Any]) -> ValidationRule:
    """A validation rule from manifest data, or :class:`MetadataError` naming it."""
    if isinstance(definition, ValidationRule):
        return definition
    if not isinstance(definition, Mapping):
        raise MetadataError("a validation rule is a mapping of name, formula, message and field")
    try:
        return ValidationRule.model_validate(dict(definition))
    except ValidationError as exc:
        name = definition.get("name")
        raise MetadataError(
            describe_validation_error(exc), field=name if isinstance(name, str) else "name"
        ) from None


def _error_field(exc: ValidationError, data: Mapping[str, Any]) -> str | None:
    """The field an entity's validation error is about (by its declared name if it has one)."""
    loc = exc.errors()[0]["loc"]
    if len(loc) >= 2 and loc[0] == "fields" and isinstance(loc[1], int):
        fields = data.get("fields")
        if isinstance(fields, list) and loc[1] < len(fields) and isinstance(fields[loc[1]], dict):
            name = fields[loc[1]].get("name")
            if isinstance(name, str):
                return name
        return "fields"
    return str(loc[0]) if loc else None


# -- Registry edits -----------------------------------------------------------------------


def _entity(registry: Registry, name: str) -> EntityDef:
    entity = registry.entities.get(name)
    if entity is None:
        raise NotFound(f"there is no entity {name!r}")
    return entity


def _field(entity: EntityDef, name: str) -> FieldDef:
    field = entity.field(name)
    if field is None:
        raise NotFound(f"{entity.name} has no field {name!r}", field=name)
    return field


def _require_custom(conn: Connection, entity: EntityDef, name: str) -> None:
    if entity.source == "custom" or (entity.name, name) in store.custom_field_names(conn):
        return
    raise MetadataError(
        f"{entity.name}.{name} is declared by a plugin; only fields added by administrators "
        "can be altered or dropped",
        field=name,
    )


def _check_relation_change(entity: str, old: FieldDef, new: FieldDef) -> None:
    """Relations keep their type, target and delete rule: those live in the foreign key."""
    relation = FieldType.RELATION
    if (old.type is relation) != (new.type is relation) or (
        old.type is relation and (old.target, old.on_delete) != (new.target, new.on_delete)
    ):
        raise MetadataError(
            f"{entity}.{old.name}: a relation's type, target and on_delete cannot change; "
            "add a new field instead",
            field=old.name,
        )


def _check_computed_change(entity: str, old: FieldDef, new: FieldDef) -> None:
    """A stored field stays stored and a computed one computed: one has a column, one not."""
    if old.computed != new.computed:
        raise MetadataError(
            f"{entity}.{old.name}: a stored field cannot become computed or the other way "
            "round; add a new field instead",
            field=old.name,
        )


def _with_rules(entity: EntityDef, rules: tuple[ValidationRule, ...]) -> EntityDef:
    return entity.model_copy(update={"validation_rules": rules}).revalidated()


def _edited(edit: Callable[[], EntityDef], field: str) -> EntityDef:
    try:
        return edit()
    except ValueError as exc:
        message = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
        raise MetadataError(message, field=field) from None


def _with_replaced(entity: EntityDef, field: FieldDef) -> EntityDef:
    """A copy with ``field`` in place of its namesake, keeping the field order."""
    fields = tuple(field if f.name == field.name else f for f in entity.fields)
    return entity.model_copy(update={"fields": fields}).revalidated()


def _replacing(registry: Registry, entity: EntityDef) -> list[EntityDef]:
    return [entity if e.name == entity.name else e for e in registry.entities.values()]


def _store_field(conn: Connection, entity: EntityDef, field: FieldDef) -> None:
    if entity.source == "custom":
        store.save_custom_entity(conn, entity)
    else:
        store.save_custom_field(conn, entity.name, field)


# -- Data ---------------------------------------------------------------------------------


def _count(conn: Connection, table: Table, *where: ColumnElement[bool]) -> int:
    return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def _drop_column(conn: Connection, table: Table, field: FieldDef, force: bool) -> None:
    """Drop a stored field's column; one holding values only with ``force``."""
    entity = table.name
    filled = _count(conn, table, table.c[field.column].is_not(None))
    if filled and not force:
        raise Conflict(
            f"{filled} {entity} records have a value in {field.name}; "
            "pass force to drop the field and its data",
            field=field.name,
            records=filled,
        )
    _drop_indexes(conn, entity, _indexes_on(conn, entity, field.column))
    _operations(conn).drop_column(entity, field.column)


def _as_input(value: Any, field: FieldDef) -> Any:
    """A stored value of another type in the form a writer would send for ``field``."""
    if isinstance(value, str) or field.type not in STRING_TYPES | {FieldType.ENUM}:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _storage(field: FieldDef) -> tuple[Any, ...]:
    """What decides a column's stored form; fields alike here share a column unchanged."""
    sql = column_type(field)
    return tuple(
        [type(sql).__name__]
        + [getattr(sql, attr, None) for attr in ("length", "precision", "scale")]
    )


def _convert(
    conn: Connection, table: Table, entity: str, old: FieldDef, new: FieldDef, force: bool
) -> None:
    """Check that every stored value survives the change, then store the converted values."""
    column = table.c[old.column]
    stored = conn.execute(select(table.c.id, column).where(column.is_not(None))).all()
    converted: list[Any] = []
    lost: list[tuple[Any, str]] = []
    for _record_id, value in stored:
        try:
            converted.append(coerce(new, _as_input(value, new)))
        except ValueError as exc:
            lost.append((value, str(exc)))
            converted.append(None)
    if lost and not force:
        example, reason = lost[0]
        raise Conflict(
            f"changing {entity}.{old.name} would lose the value of {len(lost)} of "
            f"{len(stored)} records (for example {example!r}: {reason}); pass force to change "
            "it anyway and clear those values",
            field=old.name,
            records=len(lost),
        )
    if new.unique:
        counts = Counter(v for v in converted if v is not None)
        repeated = sum(n - 1 for n in counts.values())
        if repeated:
            raise Conflict(
                f"{entity}.{old.name} cannot be unique: {repeated} records repeat a value",
                field=old.name,
            )
    default = coerce_default(new) if new.default is not None else None
    if new.required and default is None:
        empty = _count(conn, table) - len(stored) + len(lost)
        if empty:
            raise MetadataError(
                f"{empty} {entity} records have no {old.name}; a required field needs a "
                "default for them",
                field=old.name,
            )
    changed = _storage(old) != _storage(new)
    target = _temporary_column(conn, entity, new) if changed else old.column
    writer = Table(entity, MetaData(), Column("id", RecordId(), primary_key=True))
    writer.append_column(Column(target, column_type(new)))
    values = [
        {"record_id": record_id, "value": value}
        for (record_id, before), value in zip(stored, converted, strict=True)
        if changed or value != before
    ]
    if values:
        conn.execute(
            update(writer)
            .where(writer.c.id == bindparam("record_id"))
            .values({target: bindparam("value")}),
            values,
        )
    if new.required and default is not None:
        conn.execute(update(writer).where(writer.c[target].is_(None)).values({target: default}))
    if changed:
        ops = _operations(conn)
        _drop_indexes(conn, entity, _indexes_on(conn, entity, old.column))
        ops.drop_column(entity, old.column)
        ops.alter_column(entity, target, new_column_name=new.column)


def _temporary_column(conn: Connection, entity: str, field: FieldDef) -> str:
    name = f"qiao_new_{field.column}"
    _operations(conn).add_column(entity, Column(name, column_type(field), nullable=True))
    return name


# -- DDL ----------------------------------------------------------------------------------


def _operations(conn: Connection) -> Operations:
    return Operations(MigrationContext.configure(conn))


def _index_names(entity: EntityDef) -> set[str]:
    return {spec.name for spec in index_specs(entity)}


def _indexes_on(conn: Connection, table: str, column: str) -> set[str]:
    """Indexes of ``table`` that include ``column`` (SQLite drops no column they use)."""
    return {
        str(index["name"])
        for index in inspect(conn).get_indexes(table)
        if column in index["column_names"]
    }


def _drop_indexes(conn: Connection, table: str, names: set[str]) -> None:
    existing = {index["name"] for index in inspect(conn).get_indexes(table)}
    ops = _operations(conn)
    for name in sorted(names & existing):
        ops.drop_index(name, table_name=table)
