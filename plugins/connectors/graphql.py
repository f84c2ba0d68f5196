"""GraphQL for administrators: connectors' status, and a sync on demand.

Connectors themselves are records (``createConnector``, ``updateConnector`` ... with the
write-only secrets in their inputs); these fields add what records cannot say.
"""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from qiao.api import DateTime, NotFound, Source
from qiao.plugins.connectors import settings, status, sync

#: Who may see connectors' status and sync them: whoever may create connectors
#: (administrators, unless a role grants the entity). Not "read": shared records make
#: reading possible for anyone in principle, so it says nothing about managing.
MANAGE = "create"


@strawberry.type(name="ConnectorStatus")
class ConnectorStatusType:
    name: str
    vendor: str
    active: bool
    secrets_set: list[str] = strawberry.field(
        description="Which secrets are set (never their values)."
    )
    last_success_at: DateTime | None
    last_sync_at: DateTime | None
    lag_seconds: int | None = strawberry.field(
        description="Seconds since the last successful sync."
    )
    calls_last_hour: int
    errors_last_hour: int
    last_error: str | None


# strawberry types field() and mutation() called with options as returning Any, so
# mypy finds the decorators below untyped; the resolvers themselves are checked.
@strawberry.type
class Query:
    @strawberry.field(description="Connectors' health from the sync log (administrators).")  # type: ignore[untyped-decorator]
    def connector_status(self, info: Info, name: str | None = None) -> list[ConnectorStatusType]:
        context = info.context
        context.runtime.access_for(context.actor).require("connector", MANAGE)
        found = status.all_of(context.runtime, name)
        if name and not found:
            raise NotFound(f"no connector named {name!r}")
        return [ConnectorStatusType(**vars(s)) for s in found]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Sync a connector now, in a worker; returns its name.")  # type: ignore[untyped-decorator]
    def sync_connector(self, info: Info, name: str) -> str:
        context = info.context
        runtime = context.runtime
        runtime.access_for(context.actor).require("connector", MANAGE)
        connector = settings.by_name(runtime, name)
        with runtime.records.transaction(context.actor, Source.GRAPHQL) as ctx:
            sync.request(ctx, connector.id)
        return connector.name


TYPES: list[type] = [Query, Mutation]
