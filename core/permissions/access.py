"""A caller's access, as SQL: row filters per entity and right, and field checks.

Every reader and writer asks the same :class:`Access`: the GraphQL compiler
adds :meth:`Access.row_filter` to each table it reads (lists, single records,
relations both ways, counts), and the records service checks writes with it.
So every path sees the same rows, and nothing is filtered after the fact.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import ColumnElement, FromClause, false, or_

from qiao.core import query
from qiao.core.catalog import Catalog
from qiao.core.errors import Forbidden
from qiao.core.formula.computed import computed_fields
from qiao.core.formula.scope import RowScope
from qiao.core.masking import Mask, mask_of
from qiao.core.metadata.model import EntityDef, FieldType
from qiao.core.permissions.rights import FieldAccess, FilterScope, Right, Scope, ScopeValue
from qiao.core.permissions.subject import Subject

#: Field access that does not show a value in clear.
_UNCLEAR = frozenset({FieldAccess.NONE, FieldAccess.MASKED})
_ACCESS_ORDER = {
    FieldAccess.NONE: 0,
    FieldAccess.MASKED: 1,
    FieldAccess.READ: 2,
    FieldAccess.WRITE: 3,
}


class Access:
    """What one caller may do; ``Access.unrestricted()`` for administrators and the system."""

    def __init__(self, catalog: Catalog, subject: Subject | None) -> None:
        self.catalog = catalog
        self.subject = subject
        #: Identifies the SQL this access produces, for caches of compiled queries.
        self.key = "admin" if subject is None else _key(subject)

    @classmethod
    def unrestricted(cls, catalog: Catalog) -> Access:
        return cls(catalog, None)

    @property
    def is_unrestricted(self) -> bool:
        return self.subject is None

    @property
    def reads_audit(self) -> bool:
        return self.subject is None or any(r.audit for r in self.subject.roles)

    # -- Entities -----------------------------------------------------------------------

    def scopes(self, entity: str, right: Right) -> list[ScopeValue]:
        assert self.subject is not None
        return [r.for_entity(entity).scope(right) for r in self.subject.roles]

    def can(self, entity: str, right: Right) -> bool:
        """Whether the caller may ``right`` at least some records of ``entity``."""
        if self.subject is None:
            return True
        shared = right in {"read", "update"}
        return shared or any(s != Scope.NONE for s in self.scopes(entity, right))

    def require(self, entity: str, right: Right) -> None:
        if not self.can(entity, right):
            raise Forbidden(f"you may not {right} {entity} records", entity=entity)

    def row_filter(
        self, entity: str, table: FromClause, right: Right
    ) -> ColumnElement[bool] | None:
        """The condition a row of ``table`` must meet; None when every row qualifies."""
        if self.subject is None:
            return None
        definition = self.catalog.entity(entity)
        conditions = []
        for scope in self.scopes(entity, right):
            if scope == Scope.ALL:
                return None
            condition = self._scope_condition(definition, table, scope)
            if condition is not None:
                conditions.append(condition)
        if right in {"read", "update"}:
            shared = self._shared(entity, table, write=right == "update")
            if shared is not None:
                conditions.append(shared)
        return or_(*conditions) if conditions else false()

    def row_scope(self) -> RowScope | None:
        """The caller's read rules for the records computed fields read; None for all.

        Formulas over relations and rollups read through it, so a computed value never
        counts or shows a record the caller may not read (docs/formulas.md#permissions).
        """
        if self.subject is None:
            return None
        return lambda entity, table: self.row_filter(entity, table, "read")

    def _scope_condition(
        self, entity: EntityDef, table: FromClause, scope: ScopeValue
    ) -> ColumnElement[bool] | None:
        subject = self.subject
        assert subject is not None
        if isinstance(scope, FilterScope):
            values: dict[str, Any] = {"$me": subject.user_id, "$team": subject.team_id}
            # A relation the caller's user record leaves empty matches no record.
            values.update({f"$me.{k}": v or NO_RECORD for k, v in subject.links.items()})
            spec = _substitute(scope.filter, values)
            return query.compile_filter(entity, table, spec, relations=self.catalog)  # type: ignore[arg-type]
        owner = table.c[owner_column(entity)]
        users = {
            Scope.OWN: {subject.user_id},
            Scope.TEAM: subject.team_users,
            Scope.SUBTREE: subject.subtree_users,
            Scope.REGION: subject.region_users,
        }.get(Scope(scope))
        if users is None:  # Scope.NONE
            return None
        if len(users) == 1:
            return owner == next(iter(users))
        return owner.in_(sorted(users))

    def _shared(self, entity: str, table: FromClause, *, write: bool) -> ColumnElement[bool] | None:
        """Records explicitly shared with the caller or a team above them."""
        subject = self.subject
        assert subject is not None
        readable, writable = subject.shared.get(entity, (frozenset(), frozenset()))
        ids = writable if write else readable
        return table.c.id.in_(sorted(ids)) if ids else None

    # -- Fields ---------------------------------------------------------------------------

    def field_access(self, entity: str, field: str) -> FieldAccess:
        """The most any of the caller's roles that reach ``entity`` allows on ``field``."""
        if self.subject is None:
            return FieldAccess.WRITE
        field = self._field_name(entity, field)
        if not self.subject.roles:
            return FieldAccess.READ  # a role-less user sees only what is shared, read-only
        granting = [
            r for r in self.subject.roles if r.for_entity(entity).scope("read") != Scope.NONE
        ]
        best = FieldAccess.NONE
        for rights in granting or self.subject.roles:
            access = rights.fields.get(entity, {}).get(field, FieldAccess.WRITE)
            if _ACCESS_ORDER[access] > _ACCESS_ORDER[best]:
                best = access
        if best is FieldAccess.MASKED and self.mask(entity, field) is None:
            return FieldAccess.NONE  # a field no mask fits is hidden rather than shown
        return best

    def unclear_source(self, entity: str, field: str) -> tuple[str, str] | None:
        """The first field a computed ``field`` is computed from that the caller cannot
        read in clear (a computed field would tell it); None when there is none."""
        definition = self.catalog.entity(entity).field(self._field_name(entity, field))
        if self.subject is None or definition is None or not definition.computed:
            return None
        for source, source_field in sorted(
            computed_fields(self.catalog.registry).field(entity, definition.name).depends_on
        ):
            if self.field_access(source, source_field) in _UNCLEAR:
                return source, source_field
        return None

    def effective_access(self, entity: str, field: str) -> FieldAccess:
        """What the caller may do with ``field`` through the API, computed fields included
        (read-only, and hidden when built on a value the caller cannot read in clear)."""
        access = self.field_access(entity, field)
        definition = self.catalog.entity(entity).field(self._field_name(entity, field))
        if definition is None or not definition.computed:
            return access
        if self.unclear_source(entity, field) is not None or access is FieldAccess.NONE:
            return FieldAccess.NONE
        return FieldAccess.READ

    def mask(self, entity: str, field: str) -> Mask | None:
        """The mask of ``entity.field`` (by name or column), or None when it has none."""
        definition = self.catalog.entity(entity).field(self._field_name(entity, field))
        return mask_of(definition) if definition is not None else None

    def masked(self, entity: str, field: str) -> Mask | None:
        """The mask this caller reads ``field`` through; None when they read it plainly."""
        if self.field_access(entity, field) is not FieldAccess.MASKED:
            return None
        return self.mask(entity, field)

    def masks(self, entity: str) -> dict[str, Mask]:
        """Column -> mask of every field of ``entity`` this caller reads masked."""
        if self.subject is None:
            return {}
        found: dict[str, Mask] = {}
        for f in self.catalog.entity(entity).fields:
            mask = self.masked(entity, f.name)
            if mask is not None:
                found[f.column] = mask
        return found

    def _field_name(self, entity: str, name: str) -> str:
        """A field's name given its name or its column (filters and orders use columns)."""
        definition = self.catalog.entity(entity)
        if definition.field(name) is not None:
            return name
        by_column = next((f for f in definition.fields if f.column == name), None)
        return by_column.name if by_column is not None else name

    def require_readable(self, entity: str, field: str) -> None:
        if self.field_access(entity, field) is FieldAccess.NONE:
            raise Forbidden(f"you may not read {entity}.{field}", field=field)

    def require_clear(self, entity: str, field: str, use: str) -> None:
        """Refuse ``use`` (filtering, ordering, computing) of a field not readable in clear.

        Filtering or ordering by a masked field would tell its value a character
        at a time, so it needs the same right as reading it unmasked. A computed field
        needs every field it is computed from, as reading it does
        (docs/formulas.md#permissions).
        """
        access = self.field_access(entity, field)
        if access is FieldAccess.MASKED:
            raise Forbidden(
                f"you read {entity}.{field} masked, so you may not {use} it", field=field
            )
        if access is FieldAccess.NONE:
            raise Forbidden(f"you may not read {entity}.{field}", field=field)
        unclear = self.unclear_source(entity, field)
        if unclear is not None:
            raise Forbidden(
                f"you may not {use} {entity}.{field}: it is computed from "
                f"{unclear[0]}.{unclear[1]}, which you may not read in clear",
                field=field,
            )

    def require_writable(self, entity: str, fields: list[str]) -> None:
        for name in fields:
            if self.field_access(entity, name) is not FieldAccess.WRITE:
                raise Forbidden(f"you may not change {entity}.{name}", field=name)


#: An id no record has (the nil UUID): what ``"$me.<relation>"`` stands for when it is empty.
NO_RECORD = "00000000-0000-0000-0000-000000000000"


def owner_column(entity: EntityDef) -> str:
    """The column that says whose a record is: ``owner`` if declared, else its creator."""
    if entity.name == "user":
        return "id"
    owner = entity.field("owner")
    if owner is not None and owner.type is FieldType.RELATION and owner.target == "user":
        return owner.column
    return "created_by_id"


def _substitute(spec: Any, values: dict[str, Any]) -> Any:
    if isinstance(spec, dict):
        return {k: _substitute(v, values) for k, v in spec.items()}
    if isinstance(spec, list):
        return [_substitute(v, values) for v in spec]
    if isinstance(spec, str) and spec in values:
        return values[spec]
    return spec


def _key(subject: Subject) -> str:
    data = {
        "me": subject.user_id,
        "team": subject.team_id,
        "t": sorted(subject.team_users),
        "s": sorted(subject.subtree_users),
        "r": sorted(subject.region_users),
        "st": sorted(subject.share_teams),
        "links": subject.links,
        "sh": {e: [sorted(r), sorted(w)] for e, (r, w) in sorted(subject.shared.items())},
        "roles": [r.model_dump(mode="json") for r in subject.roles],
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
