"""What the roles' rules can keep from someone: the schema's nullability follows it.

A field the manifest marks required has a value in every record, so the GraphQL
schema declares it non-null, unless some role's field rule can hide it (then a
reader of that role gets null with a FORBIDDEN error there, docs/graphql.md).
A required relation is non-null only when, besides, no role's read rule can
leave its target out: a sales rep may own an opportunity on an account of
another team, and reads that opportunity's ``account`` as null.

Roles are records that administrators edit, so this is read from them (and
cached with each caller's access, :mod:`qiao.core.permissions.engine`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from qiao.core.catalog import Catalog
from qiao.core.masking import mask_of
from qiao.core.permissions.rights import FieldAccess, Rights, Scope


@dataclass(frozen=True)
class Hiding:
    """Required fields some role may not read, and required relations' targets some role
    reads only in part."""

    #: (entity, field name) pairs of required fields some role's field rule hides.
    fields: frozenset[tuple[str, str]] = frozenset()
    #: Targets of required relations that some role reads fewer than all records of.
    rows: frozenset[str] = frozenset()

    def hides_field(self, entity: str, field: str) -> bool:
        return (entity, field) in self.fields

    def hides_rows(self, entity: str) -> bool:
        return entity in self.rows


#: No role hides anything (a deployment whose roles read everything, or a schema checked
#: for validity only).
NOTHING_HIDDEN = Hiding()


def hiding_of(catalog: Catalog, roles: list[Rights]) -> Hiding:
    """What ``roles`` can hide of ``catalog``'s entities, as far as the schema shows it.

    Only a required field can be non-null, and only a required relation's target
    can leave it null, so nothing else is kept: deployments, and the schemas built
    for them, whose roles differ in nothing else have equal hidings and share a
    schema (:func:`qiao.core.graphql.service.shared_schema`).
    """
    entities = catalog.registry.entities.values()
    required = [(e, f) for e in entities for f in e.fields if f.required and not f.computed]
    targets = {f.target for _, f in required if f.target is not None}
    fields: set[tuple[str, str]] = set()
    rows: set[str] = set()
    for rights in roles:
        rows |= {t for t in targets if rights.for_entity(t).read != Scope.ALL}
        for entity, field in required:
            granted = rights.fields.get(entity.name, {})
            for access in (granted.get(field.name), granted.get(field.column)):
                if access is FieldAccess.NONE or (
                    access is FieldAccess.MASKED and mask_of(field) is None
                ):
                    fields.add((entity.name, field.name))
    return Hiding(frozenset(fields), frozenset(rows))


def load_hiding(conn: Connection, catalog: Catalog) -> Hiding:
    """What the deployment's roles, as stored now, can hide."""
    roles = catalog.table("role")
    stored = conn.execute(select(roles.c.rights)).scalars()
    return hiding_of(catalog, [Rights.parse(data) for data in stored if data is not None])
