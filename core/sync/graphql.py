"""``syncPull`` and ``syncPush``: offline sync through the GraphQL API (docs/sync.md)."""

from __future__ import annotations

import enum
from typing import Annotated

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from qiao.core.graphql.context import RequestContext
from qiao.core.graphql.names import entity_named
from qiao.core.metadata.registry import type_name
from qiao.core.sync import pull as pulling
from qiao.core.sync import push as pushing


@strawberry.type(description="A record as the caller reads it, to keep offline.")
class SyncRecord:
    entity: str = strawberry.field(
        description="The record's entity, by its type name (Account), as __typename gives it."
    )
    id: strawberry.ID = strawberry.field(description="The record's id.")
    version: int = strawberry.field(
        description="Its version: send it as expectedVersion when pushing an edit of it."
    )
    fields: JSON = strawberry.field(
        description="Its fields by GraphQL name (accountId, annualRevenue), values as in "
        "GraphQL (decimals and instants as strings); fields the caller may not read are "
        "absent, masked ones masked."
    )

    @classmethod
    def of(cls, synced: pulling.SyncedRecord) -> SyncRecord:
        return cls(
            entity=type_name(synced.entity),
            id=strawberry.ID(synced.id),
            version=synced.version,
            fields=synced.fields,
        )


@strawberry.type(
    description="A record to drop: deleted, or no longer readable by the caller (the two "
    "are not told apart). A tombstone of a record the client does not hold is ignored."
)
class SyncTombstone:
    entity: str = strawberry.field(description="The record's entity.")
    id: strawberry.ID = strawberry.field(description="The record's id.")


@strawberry.type(description="One page of an offline pull.")
class SyncPage:
    upserts: list[SyncRecord] = strawberry.field(
        description="Records to store or replace, each as the caller reads it now."
    )
    tombstones: list[SyncTombstone] = strawberry.field(description="Records to drop.")
    cursor: str | None = strawberry.field(
        description="Store it once the page is applied and pull on with it; null only with "
        "resetRequired."
    )
    has_more: bool = strawberry.field(description="Whether to pull again at once.")
    reset_required: bool = strawberry.field(
        description="The caller's access or the metadata changed, or the server no longer "
        "holds every change since the cursor: drop the offline copy and pull without a cursor."
    )


@strawberry.enum(description="What an offline edit does.")
class SyncOperation(enum.Enum):
    CREATE = strawberry.enum_value("create", description="Create a record from values.")
    UPDATE = strawberry.enum_value(
        "update", description="Change some fields of the record id at expectedVersion."
    )
    DELETE = strawberry.enum_value(
        "delete", description="Delete the record id, if still at expectedVersion."
    )


@strawberry.enum(description="What became of an offline edit.")
class SyncStatus(enum.Enum):
    APPLIED = strawberry.enum_value("APPLIED", description="Written; id and version say how.")
    CONFLICT = strawberry.enum_value(
        "CONFLICT",
        description="The record changed since expectedVersion; nothing written. Merge with "
        "record and push again at its version.",
    )
    REFUSED = strawberry.enum_value(
        "REFUSED", description="Not written; error says why (as the same mutation would)."
    )


@strawberry.input(description="One offline edit.")
class SyncEdit:
    client_mutation_id: str = strawberry.field(
        description="The client's id for this edit (1 to 64 characters, unique per user): a "
        "retried edit with the same id is answered as before and not applied twice."
    )
    entity: str = strawberry.field(description="The entity, by its type name (Account).")
    operation: SyncOperation = strawberry.field(description="Create, update or delete.")
    id: strawberry.ID | None = strawberry.field(
        default=None, description="The record's id (update and delete)."
    )
    expected_version: int | None = strawberry.field(
        default=None, description="The version the edit was made on (update and delete)."
    )
    values: JSON | None = strawberry.field(
        default=None,
        description="Field values by GraphQL name (create and update), as in the entity's "
        "create and update inputs.",
    )


@strawberry.type(description="Why an edit was refused.")
class SyncError:
    code: str = strawberry.field(description="FORBIDDEN, BAD_USER_INPUT, NOT_FOUND, CONFLICT...")
    message: str = strawberry.field(description="What to do about it.")
    field: str | None = strawberry.field(description="The field concerned, if one.")


@strawberry.type(description="The answer to one offline edit.")
class SyncOutcome:
    client_mutation_id: str = strawberry.field(description="The edit's client mutation id.")
    status: SyncStatus = strawberry.field(description="Applied, in conflict or refused.")
    entity: str = strawberry.field(description="The edit's entity.")
    id: strawberry.ID | None = strawberry.field(
        description="The record's id (for a create: the id the server gave it)."
    )
    version: int | None = strawberry.field(
        description="APPLIED: the record's new version (a delete: its last). CONFLICT: the "
        "server's version."
    )
    record: SyncRecord | None = strawberry.field(
        description="The record as the caller reads it now (APPLIED and CONFLICT; null once "
        "deleted or out of the caller's reach)."
    )
    error: SyncError | None = strawberry.field(description="REFUSED: why.")


@strawberry.type(name="Query")
class SyncQuery:
    @strawberry.field(
        description="Offline sync: the caller's records of entities changed since cursor "
        "(without one, all of them, page by page), under their rules (docs/sync.md)."
    )
    def sync_pull(
        self,
        info: Info,
        entities: Annotated[
            list[str],
            strawberry.argument(description="The entities kept offline, by type name (Account)."),
        ],
        cursor: Annotated[
            str | None,
            strawberry.argument(description="The last page's cursor; none for an initial sync."),
        ] = None,
        first: Annotated[
            int | None,
            strawberry.argument(
                description=f"Records or changes per page (at most {pulling.MAX_PULL}, "
                f"{pulling.DEFAULT_PULL} by default)."
            ),
        ] = None,
    ) -> SyncPage:
        ctx: RequestContext = info.context
        names = [entity_named(ctx, name, "entities") for name in entities]
        page = pulling.pull(ctx.runtime, ctx.actor, ctx.access, names, cursor, first)
        return SyncPage(
            upserts=[SyncRecord.of(r) for r in page.upserts],
            tombstones=[
                SyncTombstone(entity=type_name(t.entity), id=strawberry.ID(t.id))
                for t in page.tombstones
            ],
            cursor=page.cursor,
            has_more=page.has_more,
            reset_required=page.reset_required,
        )


@strawberry.type(name="Mutation")
class SyncMutation:
    @strawberry.mutation(
        description="Offline sync: apply a batch of offline edits, each on its own, answered "
        "one by one; a retried batch answers the same without applying twice (docs/sync.md)."
    )
    def sync_push(
        self,
        info: Info,
        edits: Annotated[
            list[SyncEdit],
            strawberry.argument(description=f"At most {pushing.MAX_EDITS} edits, in order."),
        ],
    ) -> list[SyncOutcome]:
        ctx: RequestContext = info.context
        batch = [
            pushing.Edit(
                client_mutation_id=e.client_mutation_id,
                entity=entity_named(ctx, e.entity, "edits"),
                operation=pushing.Operation(e.operation.value),
                id=str(e.id) if e.id is not None else None,
                expected_version=e.expected_version,
                values=e.values,
            )
            for e in edits
        ]
        outcomes = pushing.push(ctx.runtime, ctx.actor, batch, ctx.request_id)
        return [_answer(ctx, o) for o in outcomes]


def _answer(ctx: RequestContext, outcome: pushing.Outcome) -> SyncOutcome:
    record = None
    if outcome.status is not pushing.Status.REFUSED and outcome.id is not None:
        synced = pulling.read_one(ctx.runtime, ctx.actor, ctx.access, outcome.entity, outcome.id)
        record = SyncRecord.of(synced) if synced is not None else None
    error = None
    if outcome.status is pushing.Status.REFUSED:
        error = SyncError(
            code=outcome.code or "INTERNAL_SERVER_ERROR",
            message=outcome.message or "",
            field=outcome.field,
        )
    return SyncOutcome(
        client_mutation_id=outcome.client_mutation_id,
        status=SyncStatus[outcome.status.value],
        entity=type_name(outcome.entity),
        id=strawberry.ID(outcome.id) if outcome.id is not None else None,
        version=outcome.version,
        record=record,
        error=error,
    )


TYPES: list[type] = [SyncQuery, SyncMutation]
