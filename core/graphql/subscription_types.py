"""The ``Subscription`` root of the generated schema: one change stream per entity.

For an entity ``contact`` this adds ``ContactChange`` and the field
``contactChanged(filter: ContactFilter, after: String): ContactChange!``. The
types are in the schema so clients validate and generate code against them;
Qiao never runs these fields through strawberry: the WebSocket endpoint
(:mod:`qiao.core.web.graphql_ws`) reads each change's record through the query
path instead (:mod:`qiao.core.graphql.live`), so a subscriber's rules apply
exactly as in a query.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import AsyncIterator
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from qiao.core.errors import MethodNotAllowed
from qiao.core.metadata.model import EntityDef
from qiao.core.metadata.registry import camel, type_name

#: The root field of an entity's changes is its name plus this (``contactChanged``).
SUFFIX = "Changed"

AFTER = (
    "Replay the changes committed after this cursor (a change's `cursor`) before the live "
    "ones; without it, only changes committed from now on."
)
FILTER = "Only records that match, as in the list query; fields you may not read cannot be used."


@strawberry.enum(description="What happened to a record, as the subscriber sees it.")
class ChangeOperation(enum.Enum):
    CREATED = strawberry.enum_value("CREATED", description="The record was created.")
    UPDATED = strawberry.enum_value("UPDATED", description="The record changed and matches.")
    REMOVED = strawberry.enum_value(
        "REMOVED",
        description="A record this subscription delivered changed so that it no longer "
        "matches the filter or your rules: drop it (no fields are sent).",
    )
    DELETED = strawberry.enum_value(
        "DELETED",
        description="The record was deleted (only its id is sent), told to subscribers that "
        "had it delivered or whose rules reached it.",
    )


def field_name(entity: EntityDef) -> str:
    """The Subscription field of ``entity``'s changes."""
    return f"{camel(entity.name)}{SUFFIX}"


def add_fields(entity: EntityDef, record: type, filter_type: type, ns: dict[str, Any]) -> None:
    """Add ``entity``'s change type and Subscription field to the root namespace ``ns``."""
    tname = type_name(entity.name)
    change = strawberry.type(
        type(
            f"{tname}Change",
            (),
            {
                "__annotations__": {
                    "cursor": str,
                    "operation": ChangeOperation,
                    "id": strawberry.ID,
                    "record": record | None,  # type: ignore[operator]
                },
                "cursor": strawberry.field(
                    description="Where this change is in the feed; pass it as `after` to "
                    "resume after it."
                ),
                "operation": strawberry.field(description="What happened."),
                "id": strawberry.field(description="The record's id."),
                "record": strawberry.field(
                    description="The record as you may read it now (masked and hidden fields "
                    "as in a query); null for REMOVED and DELETED."
                ),
            },
        ),
        name=f"{tname}Change",
        description=f"A change to a {entity.name} record.",
    )

    async def resolve(*_args: Any, **_kwargs: Any) -> AsyncIterator[Any]:
        """Only a strawberry execution could call this; Qiao serves subscriptions itself."""
        raise MethodNotAllowed("subscriptions are served over WebSocket at /graphql")
        yield  # makes this an async generator, as strawberry requires of a subscription

    arguments = {"filter": (filter_type | None, FILTER), "after": (str | None, AFTER)}
    params = [inspect.Parameter("info", inspect.Parameter.KEYWORD_ONLY, annotation=Info)]
    annotations: dict[str, Any] = {"info": Info}
    for name, (annotation, text) in arguments.items():
        annotations[name] = Annotated[annotation, strawberry.argument(description=text)]
        params.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, annotation=annotations[name], default=None
            )
        )
    returns = AsyncIterator[change]  # type: ignore[valid-type]
    resolve.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    resolve.__annotations__ = {**annotations, "return": returns}
    ns[f"{entity.name}_{SUFFIX.lower()}"] = strawberry.subscription(
        resolver=resolve,
        name=field_name(entity),
        description=f"Changes to {entity.name} records as they commit (docs/graphql.md, "
        "Subscriptions).",
    )
