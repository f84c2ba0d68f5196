"""Entities and picklist values as a GraphQL client names them.

Entities go by their type name (``Account``): hand-written fields that take or
return an entity (``auditTrail``, ``submitForApproval``, ``pendingApprovals``,
notifications' ``linkEntity``) use the name ``__typename`` gives the client,
never metadata's snake_case name.

Picklist values go by their names in capitals (``ZH_CN``) while the database
keeps the value the manifest wrote (``zh_CN``). The schema, compiled reads, sync's
wire format and sync's pushed edits all translate through :func:`enum_name` and
:func:`stored_value`, so a client sees one name whichever path serves it.
"""

from __future__ import annotations

from collections.abc import Iterable

from qiao.core.errors import BadUserInput
from qiao.core.graphql.context import RequestContext
from qiao.core.metadata.model import FieldDef
from qiao.core.metadata.registry import type_name


def entity_named(ctx: RequestContext, name: str, argument: str = "entity") -> str:
    """The metadata name of the entity whose GraphQL type is ``name``, or BAD_USER_INPUT
    on ``argument``; a snake_case name is refused with the type name to use instead."""
    return entity_of_type(ctx.built.catalog.registry.entities, name, argument)


def entity_of_type(entities: Iterable[str], name: str, argument: str = "entity") -> str:
    """:func:`entity_named` among ``entities`` (metadata names), for callers outside GraphQL."""
    entities = list(entities)
    by_type = {type_name(e): e for e in entities}
    if name in by_type:
        return by_type[name]
    hint = f"; use its type name {type_name(name)!r}" if name in entities else ""
    raise BadUserInput(f"there is no entity type {name!r}{hint}", field=argument)


def enum_name(value: str) -> str:
    """The GraphQL name of a stored enum value (``zh_CN`` -> ``ZH_CN``): GraphQL names
    enum values in capitals."""
    return value.upper()


def stored_value(field: FieldDef, name: str) -> str:
    """The value the database keeps for the GraphQL name of one of ``field``'s picklist
    values (``ZH_CN`` -> ``zh_CN``); any other name comes back unchanged, for the
    records service to refuse with the values it allows."""
    return {enum_name(v.value): v.value for v in field.values}.get(name, name)
