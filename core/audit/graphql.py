"""``auditTrail``: one record's history, through the GraphQL API, as a Relay connection.

A client names the record's entity by its GraphQL type (``Account``, what
``__typename`` says) and reads ``changes`` keyed by the fields' API names
(``annualRevenue``); the log itself keeps metadata's names.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from qiao.core.audit.trail import (
    TrailEntry,
    TrailFilter,
    can_read_trail,
    read_trail,
)
from qiao.core.errors import Forbidden
from qiao.core.graphql import paging, scalars
from qiao.core.graphql.context import RequestContext
from qiao.core.graphql.names import entity_named
from qiao.core.graphql.parts import OrderDirection, PageInfo
from qiao.core.metadata.registry import camel


@strawberry.enum(description="What an audit entry records being done to the record.")
class AuditOperation(enum.Enum):
    CREATE = strawberry.enum_value("create", description="The record was created.")
    UPDATE = strawberry.enum_value("update", description="Fields of the record changed.")
    DELETE = strawberry.enum_value("delete", description="The record was deleted.")
    LOGIN_SUCCESS = strawberry.enum_value(
        "login.success", description="The user signed in (a security event)."
    )
    LOGIN_FAILURE = strawberry.enum_value(
        "login.failure", description="A sign-in as the user failed (a security event)."
    )
    PASSWORD_SET = strawberry.enum_value(
        "password.set", description="The user's password was set (a security event)."
    )
    PASSWORD_UNLOCK = strawberry.enum_value(
        "password.unlock",
        description="The user's sign-in was unlocked after failures (a security event).",
    )
    TOKEN_CREATE = strawberry.enum_value(
        "token.create", description="An API token was made for the user (a security event)."
    )
    TOKEN_REVOKE = strawberry.enum_value(
        "token.revoke", description="One of the user's API tokens was revoked (a security event)."
    )
    OTHER = strawberry.enum_value(
        "other", description="An operation this version of the API does not name."
    )


@strawberry.enum(description="Where the request that made an audited change came from.")
class AuditSource(enum.Enum):
    GRAPHQL = strawberry.enum_value("graphql", description="The GraphQL API.")
    CLI = strawberry.enum_value("cli", description="The qiao command line.")
    CONNECTOR = strawberry.enum_value("connector", description="A connector's synchronisation.")
    AUTOMATION = strawberry.enum_value("automation", description="An automation rule or job.")
    IMPORT = strawberry.enum_value("import", description="A data import.")
    SYSTEM = strawberry.enum_value("system", description="Qiao itself.")
    INTAKE = strawberry.enum_value("intake", description="A public intake form.")
    ERASURE = strawberry.enum_value(
        "erasure", description="Lawful erasure or retention: which fields changed, not values."
    )
    OTHER = strawberry.enum_value(
        "other", description="A source this version of the API does not name."
    )


#: Stored operation and source names the enums name (anything else is OTHER).
_OPERATIONS = {o.value for o in AuditOperation if o is not AuditOperation.OTHER}
_SOURCES = {s.value for s in AuditSource if s is not AuditSource.OTHER}


@strawberry.enum(description="What an audit trail can be sorted by.")
class AuditEntryOrderField(enum.Enum):
    AT = strawberry.enum_value(
        "at", description="When the entry was made, in the order the log appended it."
    )


@strawberry.input(description="The sort key of an audit trail.")
class AuditEntryOrderBy:
    field: AuditEntryOrderField = strawberry.field(
        default=AuditEntryOrderField.AT, description="The field to sort by (AT)."
    )
    direction: OrderDirection = strawberry.field(
        default=OrderDirection.ASC, description="ASC (oldest first, the default) or DESC."
    )


@strawberry.input(description="Which entries of an audit trail to show; all given must hold.")
class AuditEntryFilter:
    operation: list[AuditOperation] | None = strawberry.field(
        default=None, description="One of these operations."
    )
    source: list[AuditSource] | None = strawberry.field(
        default=None, description="One of these sources."
    )
    actor_id: strawberry.ID | None = strawberry.field(
        default=None, description="Made by this user."
    )
    since: scalars.DateTime | None = strawberry.field(
        default=None, description="Made at or after this moment."
    )
    until: scalars.DateTime | None = strawberry.field(
        default=None, description="Made before this moment."
    )

    def trail_filter(self) -> TrailFilter:
        operations = sources = other_operations = other_sources = None
        if self.operation is not None:
            operations = [o.value for o in self.operation if o is not AuditOperation.OTHER]
            if AuditOperation.OTHER in self.operation:
                other_operations = sorted(_OPERATIONS)
        if self.source is not None:
            sources = [s.value for s in self.source if s is not AuditSource.OTHER]
            if AuditSource.OTHER in self.source:
                other_sources = sorted(_SOURCES)
        return TrailFilter(
            operations=operations,
            other_than=other_operations,
            sources=sources,
            other_sources_than=other_sources,
            actor_id=str(self.actor_id) if self.actor_id is not None else None,
            since=self.since,
            until=self.until,
        )


@strawberry.type(description="One change to a record, as the audit log holds it.")
class AuditEntry:
    sequence: int = strawberry.field(description="The entry's place in the audit chain.")
    at: scalars.DateTime = strawberry.field(description="When it happened.")
    actor: str = strawberry.field(description="The acting user's name ('system' for Qiao).")
    actor_id: strawberry.ID | None = strawberry.field(
        description="The acting user's id; null for Qiao itself."
    )
    source: AuditSource = strawberry.field(description="Where the request came from.")
    operation: AuditOperation = strawberry.field(description="What was done.")
    changes: JSON = strawberry.field(
        description='Each changed field by its API name -> {"old": ..., "new": ...}, or '
        '{"redacted": true} for a field whose values the log does not keep (encrypted '
        "fields) or the caller may not read."
    )
    request_id: str = strawberry.field(
        description="The request or job that made the change; entries of one write share it."
    )

    @classmethod
    def of(cls, seen: TrailEntry) -> AuditEntry:
        entry = seen.entry
        operation = entry.operation if entry.operation in _OPERATIONS else "other"
        source = entry.source if entry.source in _SOURCES else "other"
        return cls(
            sequence=entry.sequence,
            at=scalars.DateTime(entry.at),
            actor=entry.actor,
            actor_id=strawberry.ID(entry.actor_id) if entry.actor_id else None,
            source=AuditSource(source),
            operation=AuditOperation(operation),
            changes={camel(name): change for name, change in seen.changes.items()},
            request_id=entry.request_id,
        )


AuditEntryEdge, AuditEntryConnection = paging.connection_types(
    AuditEntry,
    item="The entry.",
    edge="One entry in a page of an audit trail.",
    page="A page of a record's audit trail.",
    whole="Where the page lies in the trail.",
)


@strawberry.type(name="Query")
class AuditQuery:
    @strawberry.field(
        description="The history of one record (also after it was deleted), oldest first "
        "unless orderBy says DESC; fields the caller may not read are redacted, and security "
        "events (sign-ins, tokens, passwords, keys) are shown only to auditors and the user "
        "they are about."
    )
    def audit_trail(
        self,
        info: Info,
        entity: Annotated[
            str, strawberry.argument(description="The record's type name, as Account.")
        ],
        id: Annotated[strawberry.ID, strawberry.argument(description="The record's id.")],
        filter: Annotated[
            AuditEntryFilter | None, strawberry.argument(description="Which entries to show.")
        ] = None,
        order_by: Annotated[
            list[AuditEntryOrderBy] | None, strawberry.argument(description=paging.ORDER_BY)
        ] = None,
        first: paging.First = None,
        after: paging.After = None,
        last: paging.Last = None,
        before: paging.Before = None,
    ) -> AuditEntryConnection:
        ctx: RequestContext = info.context
        name = entity_named(ctx, entity)
        newest_first = bool(paging.descending(order_by))
        with ctx.runtime.db.read() as conn:
            if not can_read_trail(ctx.access, conn, name, str(id)):
                raise Forbidden("you may not read this record's audit trail")
            page = read_trail(
                conn,
                ctx.access,
                name,
                str(id),
                first=first,
                after=after,
                last=last,
                before=before,
                newest_first=newest_first,
                where=filter.trail_filter() if filter is not None else None,
                with_total=paging.wants(info, "totalCount"),
            )
        edges = [
            AuditEntryEdge(cursor=cursor, node=AuditEntry.of(e))
            for cursor, e in zip(page.cursors, page.entries, strict=True)
        ]
        return AuditEntryConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=_total(page.total_count),
        )


def _total(count: Any) -> int:
    """The count when it was asked for; an unselected totalCount is never read."""
    return int(count) if count is not None else 0
