"""The bridge from Qiao's metadata to the formula language: what a formula may read.

A formula on an entity reads its own fields by name and, through many-to-one
relations, fields of related records (``account.owner.display_name``). Fields
whose values have no formula type (json) cannot be read, and neither can a
relation itself except through one of its target's fields.
"""

from __future__ import annotations

from collections.abc import Mapping

from qiao.core.formula.types import (
    BOOLEAN,
    DATE,
    DATETIME,
    INTEGER,
    STRING,
    FieldInfo,
    Resolver,
    decimal_type,
)
from qiao.core.metadata.model import STRING_TYPES, EntityDef, FieldDef, FieldType

#: How many relations a path may follow: account.owner.team.name is three.
MAX_PATH_DEPTH = 3

_PLAIN = {
    FieldType.INTEGER: INTEGER,
    FieldType.BOOLEAN: BOOLEAN,
    FieldType.DATE: DATE,
    FieldType.DATETIME: DATETIME,
}


def field_info(field: FieldDef) -> FieldInfo | None:
    """What a formula knows of ``field``; None for fields it cannot read (json, relations)."""
    if field.type is FieldType.DECIMAL:
        return FieldInfo(decimal_type(field.effective_scale), precision=field.effective_precision)
    if field.type in STRING_TYPES:
        return FieldInfo(STRING)
    if field.type is FieldType.ENUM:
        return FieldInfo(STRING, enum_values=field.enum_values)
    plain = _PLAIN.get(field.type)
    return None if plain is None else FieldInfo(plain)


def entity_resolver(entities: Mapping[str, EntityDef], entity: str) -> Resolver:
    """A resolver for formulas on ``entity``, following relations through ``entities``."""

    def resolve(path: tuple[str, ...]) -> FieldInfo | None:
        if len(path) > MAX_PATH_DEPTH + 1:
            raise LookupError(f"a path follows at most {MAX_PATH_DEPTH} relations")
        current = entities[entity]
        for step in path[:-1]:
            relation = current.field(step)
            if relation is None or relation.type is not FieldType.RELATION:
                raise LookupError(f"{current.name} has no relation {step}")
            assert relation.target is not None
            current = entities[relation.target]
        field = current.field(path[-1])
        if field is None:
            return None
        if field.write_only:
            raise LookupError(f"{path[-1]} is write-only; formulas cannot read it")
        if field.type is FieldType.RELATION:
            raise LookupError(
                f"{path[-1]} is a relation; read one of its fields, such as {path[-1]}.name"
            )
        info = field_info(field)
        if info is None:
            raise LookupError(f"{field.type.value} field {path[-1]} cannot be used in a formula")
        return info

    return resolve
