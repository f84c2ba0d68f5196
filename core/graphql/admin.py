"""Core GraphQL fields that are not generated per entity: who am I, and metadata."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from qiao.core.graphql.context import RequestContext


@strawberry.type(description="The authenticated caller.")
class Viewer:
    user_id: strawberry.ID | None
    username: str
    is_admin: bool


@strawberry.type(name="Query")
class CoreQuery:
    @strawberry.field(description="The caller the request's token belongs to.")
    def me(self, info: Info) -> Viewer:
        ctx: RequestContext = info.context
        actor = ctx.actor
        return Viewer(user_id=actor.user_id, username=actor.username, is_admin=actor.is_admin)


def core_types() -> list[tuple[str, type]]:
    return [("core", CoreQuery)]
