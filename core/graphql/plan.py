"""What each generated GraphQL field means in terms of metadata.

The schema builder records, for every object type it generates, what each of
its fields reads (a column, a to-one relation, a reverse connection). The read
compiler walks queries with this map instead of re-deriving names, so the
schema and the SQL can't disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qiao.core.metadata.model import FieldDef
from qiao.core.metadata.registry import Reverse


@dataclass(frozen=True)
class ColumnField:
    """A stored value; ``field`` is None for system columns (id, createdAt ...)."""

    column: str
    field: FieldDef | None


@dataclass(frozen=True)
class ToOneField:
    """A many-to-one relation returning the related object (or null)."""

    field: FieldDef


@dataclass(frozen=True)
class ToManyField:
    """The reverse side of a relation: a connection of the records pointing here."""

    reverse: Reverse


@dataclass(frozen=True)
class TypenameField:
    type_name: str


FieldMeaning = ColumnField | ToOneField | ToManyField | TypenameField


@dataclass(frozen=True)
class RootGet:
    entity: str


@dataclass(frozen=True)
class RootList:
    entity: str


@dataclass(frozen=True)
class RootNode:
    """``node(id:)``: one record of whichever entity holds the id."""


@dataclass(frozen=True)
class RootNodes:
    """``nodes(ids:)``: the records of these ids, in their order, null where not readable."""


@dataclass(frozen=True)
class RootAggregate:
    """``<entity>Aggregate``: groups of the entity's records and their aggregates.

    ``compile`` is the aggregate compiler (core/graphql/aggregates.py), carried here so
    the read compiler, which that module builds on, calls it without importing it.
    """

    entity: str
    compile: Callable[..., Any]


#: The most ids one ``nodes(ids:)`` takes: a page's worth, each an argument of one SQL
#: function call (PostgreSQL's functions take at most 100).
MAX_NODES = 100


#: The key under which a node's JSON carries its object type's name when strawberry
#: resolves the Node interface; not a GraphQL name, so no response key can clash with it.
NODE_TYPE_KEY = "@type"


@dataclass
class SchemaPlan:
    """Generated types and root fields, by GraphQL name."""

    #: type name -> (entity name, field name -> meaning)
    objects: dict[str, tuple[str, dict[str, FieldMeaning]]] = field(default_factory=dict)
    #: root query field name -> what it reads
    roots: dict[str, RootGet | RootList | RootNode | RootNodes | RootAggregate] = field(
        default_factory=dict
    )
    #: mutation field name -> (operation, entity name)
    mutations: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: entity name -> its GraphQL object type name
    type_names: dict[str, str] = field(default_factory=dict)
