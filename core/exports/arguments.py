"""An export's filter and order, written exactly as a GraphQL list's arguments.

A frontend that shows ``opportunities(filter: $filter, orderBy: $orderBy)``
exports the same list by sending the same two variables. They are checked
against the generated ``OpportunityFilter`` and ``[OpportunityOrderBy!]``
input types by graphql-core's own variable coercion, and turned into the
records service's form by the compiler's :func:`~qiao.core.graphql.compiler.plain`,
so there is one filter language and one reading of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError, GraphQLInputType
from graphql.utilities import coerce_input_value, validate_input_value

from qiao.core.errors import BadUserInput, NotFound
from qiao.core.graphql.builder import BuiltSchema
from qiao.core.graphql.compiler import plain
from qiao.core.graphql.plan import RootList
from qiao.core.graphql.strawberry_internals import graphql_schema


@dataclass(frozen=True)
class ListArguments:
    """A list's filter and sort keys in the records service's form (snake_case)."""

    filter: dict[str, Any] | None
    order_by: list[dict[str, Any]] | None


def list_arguments(built: BuiltSchema, entity: str, filter: Any, order_by: Any) -> ListArguments:
    """``filter`` and ``order_by`` (GraphQL variables' JSON) checked for ``entity``'s list.

    Raises NOT_FOUND for an entity without a list, BAD_USER_INPUT naming the
    argument and the place within it for a value its input type refuses.
    """
    root = next(
        (
            name
            for name, meaning in built.plan.roots.items()
            if isinstance(meaning, RootList) and meaning.entity == entity
        ),
        None,
    )
    if root is None:
        raise NotFound(f"no entity named {entity!r} can be listed", field="entity")
    query_type = graphql_schema(built.schema).query_type
    assert query_type is not None
    arguments = query_type.fields[root].args
    return ListArguments(
        filter=_coerced("filter", filter, arguments["filter"].type),
        order_by=_coerced("orderBy", order_by, arguments["orderBy"].type),
    )


def _coerced(name: str, value: Any, type_: GraphQLInputType) -> Any:
    """``value`` as graphql-core coerces a variable of ``type_``; the first problem refused."""
    if value is None:
        return None
    problems: list[str] = []

    def collect(error: GraphQLError, path: Sequence[str | int]) -> None:
        where = ".".join([name, *(str(p) for p in path)])
        problems.append(f"{where}: {error.message}")

    validate_input_value(value, type_, collect, True)
    if problems:
        raise BadUserInput(problems[0], field=name)
    return plain(coerce_input_value(value, type_))
