"""Run-time metadata in the database: admins' custom entities and fields, and the version.

The version number is the single fact every process checks to know whether its
GraphQL schema is current; each change also leaves a row in the change history.
Validation rules admins add to an entity a plugin declares are kept beside the
custom fields, in rows named ``rule:<name>`` (no field name contains a colon);
a custom entity keeps its rules in its own definition.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Table, delete, insert, select, update

from qiao.core.errors import MetadataError
from qiao.core.metadata.model import EntityDef, FieldDef, ValidationRule, describe_validation_error
from qiao.core.metadata.registry import Extension
from qiao.core.storage import system


def read_version(conn: Connection) -> int:
    """The current metadata version (0 before the first change)."""
    row = conn.execute(select(system.metadata_version.c.version)).first()
    return 0 if row is None else int(row[0])


def lock_version(conn: Connection) -> int:
    """Read the version, holding a lock on it until the transaction ends.

    Two admins changing metadata at once queue here instead of interleaving DDL.
    """
    stmt = select(system.metadata_version.c.version).where(system.metadata_version.c.id == 1)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        now = dt.datetime.now(dt.UTC)
        conn.execute(insert(system.metadata_version).values(id=1, version=0, updated_at=now))
        return 0
    return int(row[0])


#: The name prefix of stored validation rules in the custom field table.
RULE_PREFIX = "rule:"


def load_custom(conn: Connection) -> tuple[list[EntityDef], list[Extension]]:
    """Custom entities and custom fields (on any entity) as stored by admins."""
    entities = []
    for name, definition in conn.execute(
        select(system.custom_entity.c.name, system.custom_entity.c.definition)
    ):
        try:
            entities.append(EntityDef.model_validate({**definition, "source": "custom"}))
        except ValidationError as exc:
            reason = describe_validation_error(exc)
            raise MetadataError(f"stored custom entity {name!r} is invalid: {reason}") from exc
    extensions = []
    rows = conn.execute(
        select(
            system.custom_field.c.entity,
            system.custom_field.c.name,
            system.custom_field.c.definition,
        ).order_by(system.custom_field.c.created_at, system.custom_field.c.name)
    )
    for entity, name, definition in rows:
        if name.startswith(RULE_PREFIX):
            extensions.append(_rule_extension(entity, name, definition))
            continue
        try:
            field = FieldDef.model_validate(definition)
        except ValidationError as exc:
            reason = describe_validation_error(exc)
            raise MetadataError(
                f"stored custom field {entity}.{name} is invalid: {reason}"
            ) from exc
        extensions.append(Extension(entity=entity, fields=(field,), source="custom"))
    return entities, extensions


def _rule_extension(entity: str, name: str, definition: Any) -> Extension:
    try:
        rule = ValidationRule.model_validate(definition)
    except ValidationError as exc:
        reason = describe_validation_error(exc)
        raise MetadataError(
            f"stored validation rule {entity}.{name.removeprefix(RULE_PREFIX)} is invalid: {reason}"
        ) from exc
    return Extension(entity=entity, fields=(), source="custom", validation_rules=(rule,))


def record_change(
    conn: Connection,
    *,
    version: int,
    operation: str,
    entity: str,
    field: str | None = None,
    definition: dict[str, Any] | None = None,
    actor_id: str | None = None,
    note: str | None = None,
) -> int:
    """Write the change history row and move the version to ``version + 1``."""
    now = dt.datetime.now(dt.UTC)
    new_version = version + 1
    conn.execute(
        insert(system.metadata_change).values(
            version=new_version,
            at=now,
            actor_id=actor_id,
            operation=operation,
            entity=entity,
            field=field,
            definition=definition,
            note=note,
        )
    )
    conn.execute(
        update(system.metadata_version)
        .where(system.metadata_version.c.id == 1)
        .values(version=new_version, updated_at=now)
    )
    return new_version


def history(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    """The latest metadata changes, newest first."""
    t = system.metadata_change
    rows = conn.execute(select(t).order_by(t.c.version.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]


def custom_field_names(conn: Connection) -> set[tuple[str, str]]:
    """(entity, field) of every field admins added to an entity a plugin declares."""
    t = system.custom_field
    rows = conn.execute(select(t.c.entity, t.c.name))
    return {(e, n) for e, n in rows if not n.startswith(RULE_PREFIX)}


def custom_rule_names(conn: Connection) -> set[tuple[str, str]]:
    """(entity, rule) of every validation rule admins added to an entity a plugin declares."""
    t = system.custom_field
    rows = conn.execute(select(t.c.entity, t.c.name).where(t.c.name.startswith(RULE_PREFIX)))
    return {(e, n.removeprefix(RULE_PREFIX)) for e, n in rows}


def save_custom_rule(conn: Connection, entity: str, rule: ValidationRule) -> None:
    """Store a validation rule admins add to an entity a plugin declares."""
    key = {"entity": entity, "name": RULE_PREFIX + rule.name}
    _save(conn, system.custom_field, key, rule.model_dump(mode="json", exclude_none=True))


def delete_custom_rule(conn: Connection, entity: str, name: str) -> None:
    t = system.custom_field
    conn.execute(delete(t).where(t.c.entity == entity, t.c.name == RULE_PREFIX + name))


def save_custom_entity(conn: Connection, entity: EntityDef) -> None:
    """Insert or replace the stored definition of a custom entity."""
    _save(conn, system.custom_entity, {"name": entity.name}, entity.as_data())


def delete_custom_entity(conn: Connection, name: str) -> None:
    t = system.custom_entity
    conn.execute(delete(t).where(t.c.name == name))


def save_custom_field(conn: Connection, entity: str, field: FieldDef) -> None:
    """Insert or replace the stored definition of a custom field on a plugin's entity."""
    _save(conn, system.custom_field, {"entity": entity, "name": field.name}, field.as_data())


def delete_custom_field(conn: Connection, entity: str, name: str) -> None:
    t = system.custom_field
    conn.execute(delete(t).where(t.c.entity == entity, t.c.name == name))


def _save(conn: Connection, table: Table, key: dict[str, str], definition: dict[str, Any]) -> None:
    now = dt.datetime.now(dt.UTC)
    where = [table.c[k] == v for k, v in key.items()]
    if conn.execute(select(table.c.created_at).where(*where)).first() is None:
        conn.execute(
            insert(table).values(**key, definition=definition, created_at=now, updated_at=now)
        )
    else:
        conn.execute(update(table).where(*where).values(definition=definition, updated_at=now))
