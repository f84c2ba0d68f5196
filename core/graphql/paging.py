"""What the hand-written Relay connections share with the generated ones.

``auditTrail``, ``myNotifications`` and ``pendingApprovals`` are not generated
from metadata, but a client pages them as it pages ``accounts``: the same
``first/after/last/before`` (checked and answered by
:class:`qiao.core.query.Window`), ``pageInfo``, ``totalCount`` and an
``orderBy`` of ``{field, direction}`` keys. This module holds the pieces of that
shape the three modules would otherwise each repeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import strawberry
from strawberry.types import Info
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from qiao.core.errors import BadUserInput
from qiao.core.graphql.builder import CONNECTION_ARGUMENTS
from qiao.core.graphql.parts import OrderDirection, PageInfo

#: The page arguments of a resolver (``first: paging.First = None``), typed and
#: described as the generated connections' are.
First = Annotated[int | None, strawberry.argument(description=CONNECTION_ARGUMENTS["first"])]
After = Annotated[str | None, strawberry.argument(description=CONNECTION_ARGUMENTS["after"])]
Last = Annotated[int | None, strawberry.argument(description=CONNECTION_ARGUMENTS["last"])]
Before = Annotated[str | None, strawberry.argument(description=CONNECTION_ARGUMENTS["before"])]

ORDER_BY = "The sort key (one): its field and direction."
TOTAL_COUNT = "How many items the whole list holds under the filter (costs a count)."
CURSOR = "Where this edge is: pass it as after or before to page from here."


def connection_types(
    node: type, *, item: str, edge: str, page: str, whole: str
) -> tuple[type, type]:
    """The ``<Node>Edge`` and ``<Node>Connection`` types of a hand-written list of ``node``.

    Named and shaped as the generated connections are; the texts describe the edge
    type (``edge``), its node (``item``), the connection type (``page``) and where a
    page lies (``whole``).
    """
    name = node.__name__
    edge_class = type(
        f"{name}Edge",
        (),
        {
            "__annotations__": {"cursor": str, "node": node},
            "cursor": strawberry.field(description=CURSOR),
            "node": strawberry.field(description=item),
        },
    )
    edge_type = strawberry.type(edge_class, description=edge)
    page_class = type(
        f"{name}Connection",
        (),
        {
            "__annotations__": {
                "edges": list[edge_type],  # type: ignore[valid-type]
                "page_info": PageInfo,
                "total_count": int,
            },
            "edges": strawberry.field(description="The page, in order."),
            "page_info": strawberry.field(description=whole),
            "total_count": strawberry.field(description=TOTAL_COUNT),
        },
    )
    return edge_type, strawberry.type(page_class, description=page)


def wants(info: Info, name: str) -> bool:
    """Whether the query selects ``name`` directly on this field's result (fragments too)."""
    return any(_selects(field.selections, name) for field in info.selected_fields)


def _selects(selections: Sequence[Selection], name: str) -> bool:
    for selection in selections:
        if isinstance(selection, SelectedField) and selection.name == name:
            return True
        if isinstance(selection, FragmentSpread | InlineFragment) and _selects(
            selection.selections, name
        ):
            return True
    return False


def descending(order_by: Sequence[Any] | None) -> bool | None:
    """Whether one ``orderBy`` key asks for DESC; None when no key was given.

    These lists have one sort field, so a second key could only repeat it.
    """
    if not order_by:
        return None
    if len(order_by) > 1:
        raise BadUserInput("orderBy takes one key here", field="orderBy")
    return bool(order_by[0].direction is OrderDirection.DESC)
