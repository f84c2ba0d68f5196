"""What the hand-written Relay connections share with the generated ones.

``auditTrail``, ``myNotifications`` and ``pendingApprovals`` are not generated
from metadata, but a client pages them as it pages ``accounts``: the same
``first/after/last/before`` (checked and answered by
:class:`qiao.core.records.query.Window`), ``pageInfo``, ``totalCount`` and an
``orderBy`` of ``{field, direction}`` keys. This module holds the pieces of that
shape the three modules would otherwise each repeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strawberry.types import Info
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from qiao.core.errors import BadUserInput
from qiao.core.graphql.builder import OrderDirection

#: The descriptions of the page arguments, as the generated connections word them.
FIRST = "Page size when paging forward (50 by default, at most 500)."
AFTER = "Page forward from this cursor."
LAST = "Page size when paging backward (at most 500)."
BEFORE = "Page backward from this cursor."
ORDER_BY = "The sort key (one): its field and direction."
TOTAL_COUNT = "How many items the whole list holds under the filter (costs a count)."


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
