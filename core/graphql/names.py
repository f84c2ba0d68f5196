"""Entities as a GraphQL client names them: by their type name (``Account``).

Hand-written fields that take or return an entity (``auditTrail``,
``submitForApproval``, ``pendingApprovals``, notifications' ``linkEntity``)
use the name ``__typename`` gives the client, never metadata's snake_case name.
"""

from __future__ import annotations

from collections.abc import Iterable

from qiao.core.errors import BadUserInput
from qiao.core.graphql.context import RequestContext
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
