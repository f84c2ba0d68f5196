"""The one place that reaches into strawberry's private attributes.

Qiao compiles a whole GraphQL selection to one SQL statement, so it needs the
graphql-core objects strawberry wraps (the schema, a resolver's raw info), and
it rebuilds schemas at run time, which strawberry's per-class type-lookup cache
does not expect. Strawberry offers no public accessor for these. Keeping every
such access here, with strawberry pinned to the minor release CI tests
(pyproject.toml), makes an upgrade a review of this module alone;
tests/test_architecture.py fails when another module reaches for them.
"""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLResolveInfo, GraphQLSchema


def graphql_schema(schema: strawberry.Schema) -> GraphQLSchema:
    """The graphql-core schema a strawberry schema was built into."""
    core: GraphQLSchema = schema._schema
    return core


def resolve_info(info: Any) -> GraphQLResolveInfo:
    """The graphql-core resolve info behind a strawberry ``Info``."""
    raw: GraphQLResolveInfo = info._raw_info
    return raw


def forget_type_lookups() -> None:
    """Drop strawberry's memoised type lookups after a schema is built or thrown away.

    ``Schema.get_type_by_name`` is cached on the class, keyed by schema object;
    a deployment that rebuilds its schema on metadata changes would otherwise
    keep every old schema alive through that cache.
    """
    strawberry.Schema.get_type_by_name.cache_clear()  # type: ignore[attr-defined]
