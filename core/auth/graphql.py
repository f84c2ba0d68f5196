"""GraphQL: administrators lift sign-in lockouts (docs/security.md).

Contributed by the built-in ``core`` plugin through ``qiao_graphql_types``, so the
GraphQL engine below never names the sign-in feature.
"""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from qiao.core.auth import passwords
from qiao.core.errors import Forbidden
from qiao.core.graphql.context import RequestContext
from qiao.core.records.context import Source


@strawberry.type(name="Mutation")
class AuthMutation:
    @strawberry.mutation(
        description="Lift every sign-in lockout of a user, from every client address "
        "(administrators); returns how many addresses had failures counted."
    )
    def unlock_user(
        self,
        info: Info,
        username: Annotated[str, strawberry.argument(description="The user to unlock.")],
    ) -> int:
        ctx: RequestContext = info.context
        if not ctx.actor.is_admin:
            raise Forbidden("only administrators may unlock users")
        with ctx.runtime.db.write() as conn:
            catalog = ctx.runtime.current()
            return passwords.unlock(conn, catalog, username, ctx.actor, Source.GRAPHQL)


TYPES: list[type] = [AuthMutation]
