"""``auditTrail``: one record's history, through the GraphQL API."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from qiao.core.audit.trail import TrailEntry, can_read_trail, encode_cursor, read_trail
from qiao.core.errors import BadUserInput, Forbidden
from qiao.core.graphql import scalars
from qiao.core.graphql.builder import PageInfo
from qiao.core.graphql.context import RequestContext


@strawberry.type(description="One change to a record, as the audit log holds it.")
class AuditEntry:
    sequence: int = strawberry.field(description="The entry's place in the audit chain.")
    at: scalars.DateTime = strawberry.field(description="When it happened.")
    actor: str = strawberry.field(description="The acting user's name ('system' for Qiao).")
    actor_id: strawberry.ID | None = strawberry.field(
        description="The acting user's id; null for Qiao itself."
    )
    source: str = strawberry.field(
        description="Where the change came from: graphql, cli, connector, automation, import..."
    )
    operation: str = strawberry.field(description="What was done: create, update or delete.")
    changes: JSON = strawberry.field(
        description='Field name -> {"old": ..., "new": ...}, or {"redacted": true} for a '
        "field whose values the log does not keep (encrypted fields) or the caller may not "
        "read."
    )
    request_id: str = strawberry.field(
        description="The request or job that made the change; entries of one write share it."
    )

    @classmethod
    def of(cls, seen: TrailEntry) -> AuditEntry:
        entry = seen.entry
        return cls(
            sequence=entry.sequence,
            at=scalars.DateTime(entry.at),
            actor=entry.actor,
            actor_id=strawberry.ID(entry.actor_id) if entry.actor_id else None,
            source=entry.source,
            operation=entry.operation,
            changes=seen.changes,
            request_id=entry.request_id,
        )


@strawberry.type(description="One entry in a page of an audit trail.")
class AuditEntryEdge:
    cursor: str = strawberry.field(description="Pass it as after to read on from here.")
    node: AuditEntry = strawberry.field(description="The entry.")


@strawberry.type(description="A page of a record's audit trail, oldest first.")
class AuditEntryConnection:
    edges: list[AuditEntryEdge] = strawberry.field(description="The page, oldest first.")
    page_info: PageInfo = strawberry.field(description="Where the page lies in the trail.")


@strawberry.type(name="Query")
class AuditQuery:
    @strawberry.field(
        description="The history of one record (also after it was deleted), oldest first; "
        "fields the caller may not read are redacted, and security events (sign-ins, tokens, "
        "passwords, keys) are shown only to auditors and the user they are about."
    )
    def audit_trail(
        self,
        info: Info,
        entity: Annotated[str, strawberry.argument(description="The record's entity.")],
        id: Annotated[strawberry.ID, strawberry.argument(description="The record's id.")],
        first: Annotated[
            int | None, strawberry.argument(description="Page size (50 by default).")
        ] = None,
        after: Annotated[
            str | None, strawberry.argument(description="Read on from this cursor.")
        ] = None,
    ) -> AuditEntryConnection:
        ctx: RequestContext = info.context
        with ctx.runtime.db.read() as conn:
            if entity not in ctx.built.catalog.registry.entities:
                raise BadUserInput(f"there is no entity {entity!r}", field="entity")
            if not can_read_trail(ctx.access, conn, entity, str(id)):
                raise Forbidden("you may not read this record's audit trail")
            page = read_trail(conn, ctx.access, entity, str(id), first=first, after=after)
        edges = [
            AuditEntryEdge(cursor=encode_cursor(e.entry), node=AuditEntry.of(e))
            for e in page.entries
        ]
        return AuditEntryConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )
