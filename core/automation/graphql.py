"""GraphQL: a user's own notifications, and marking them read.

Every signed-in user may read and mark the notifications addressed to them,
whatever their roles: these resolvers read and write as the system, limited to
records whose recipient (``owner``) is the caller. The generic
``notifications`` query stays under the roles' rules (administrators see all).
"""

from __future__ import annotations

import enum
from typing import Annotated

import strawberry
from strawberry.types import Info

from qiao.core.errors import NotFound, Unauthenticated
from qiao.core.graphql import paging
from qiao.core.graphql.context import RequestContext
from qiao.core.graphql.parts import OrderDirection, PageInfo
from qiao.core.graphql.scalars import DateTime
from qiao.core.metadata.registry import type_name
from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record


@strawberry.type(description="An in-app notification addressed to the signed-in user.")
class InAppNotification:
    id: strawberry.ID = strawberry.field(description="The notification's id.")
    title: str = strawberry.field(description="Its title.")
    body: str | None = strawberry.field(description="Its text, if it has more than a title.")
    kind: str | None = strawberry.field(
        description="What raised it: a rule, an approval, an assignment..."
    )
    link_entity: str | None = strawberry.field(
        description="The type name (as Account) of the record it is about."
    )
    link_id: str | None = strawberry.field(description="The id of the record it is about.")
    created_at: DateTime = strawberry.field(description="When it was raised.")
    read_at: DateTime | None = strawberry.field(description="When it was read; null while unread.")


InAppNotificationEdge, InAppNotificationConnection = paging.connection_types(
    InAppNotification,
    item="The notification.",
    edge="One notification in a page.",
    page="A page of the signed-in user's notifications.",
    whole="Where the page lies in the whole list.",
)


@strawberry.enum(description="What the signed-in user's notifications can be sorted by.")
class InAppNotificationOrderField(enum.Enum):
    CREATED_AT = strawberry.enum_value("created_at", description="When it was raised.")


@strawberry.input(description="The sort key of the signed-in user's notifications.")
class InAppNotificationOrderBy:
    field: InAppNotificationOrderField = strawberry.field(
        default=InAppNotificationOrderField.CREATED_AT, description="The field (CREATED_AT)."
    )
    direction: OrderDirection = strawberry.field(
        default=OrderDirection.ASC, description="ASC (the default in a key) or DESC."
    )


@strawberry.input(description="Which of the signed-in user's notifications to show.")
class InAppNotificationFilter:
    read: bool | None = strawberry.field(
        default=None,
        description="Whether they were read: true for those read, false for those not yet.",
    )
    kind: list[str] | None = strawberry.field(
        default=None, description="Only those raised by one of these kinds."
    )

    def where(self, user: str) -> dict[str, object]:
        """The records filter of the user's notifications that meet this one."""
        where: dict[str, object] = {"owner_id": {"eq": user}}
        if self.read is not None:
            where["read_at"] = {"is_null": not self.read}
        if self.kind is not None:
            where["kind"] = {"in": self.kind}
        return where


def _shown(record: Record) -> InAppNotification:
    return InAppNotification(
        id=strawberry.ID(record["id"]),
        title=record["title"],
        body=record["body"],
        kind=record["kind"],
        link_entity=type_name(record["link_entity"]) if record["link_entity"] else None,
        link_id=record["link_id"],
        created_at=DateTime(record["created_at"]),
        read_at=DateTime(record["read_at"]) if record["read_at"] is not None else None,
    )


def _user(ctx: RequestContext) -> str:
    if ctx.actor.user_id is None:
        raise Unauthenticated("sign in to read your notifications")
    return ctx.actor.user_id


@strawberry.type(name="Query")
class NotificationsQuery:
    @strawberry.field(description="Your notifications, newest first unless orderBy says otherwise.")
    def my_notifications(
        self,
        info: Info,
        filter: Annotated[
            InAppNotificationFilter | None,
            strawberry.argument(description="Which notifications to show."),
        ] = None,
        order_by: Annotated[
            list[InAppNotificationOrderBy] | None,
            strawberry.argument(description=paging.ORDER_BY),
        ] = None,
        first: paging.First = None,
        after: paging.After = None,
        last: paging.Last = None,
        before: paging.Before = None,
    ) -> InAppNotificationConnection:
        ctx: RequestContext = info.context
        user = _user(ctx)
        descending = paging.descending(order_by)
        direction = "ASC" if descending is False else "DESC"
        runtime = ctx.runtime
        with runtime.db.read() as conn:
            page = runtime.records.list(
                conn,
                "notification",
                filter=(filter or InAppNotificationFilter()).where(user),
                order_by=[{"field": "created_at", "direction": direction}],
                first=first,
                after=after,
                last=last,
                before=before,
                with_total=paging.wants(info, "totalCount"),
                actor=Actor.system(),
            )
        edges = [
            InAppNotificationEdge(cursor=cursor, node=_shown(record))
            for cursor, record in zip(page.cursors, page.records, strict=True)
        ]
        return InAppNotificationConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=page.total_count or 0,
        )


@strawberry.type(name="Mutation")
class NotificationsMutation:
    @strawberry.mutation(description="Mark one of your notifications read (again: no change).")
    def mark_notification_read(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The notification's id.")],
    ) -> InAppNotification:
        ctx: RequestContext = info.context
        user = _user(ctx)
        records = ctx.runtime.records
        with records.transaction(Actor.system(), Source.GRAPHQL, ctx.request_id) as wctx:
            note = records.get(wctx.connection, "notification", str(id), actor=Actor.system())
            if note is None or note["owner_id"] != user:
                raise NotFound(f"no notification with id {id}", field="id")
            if note["read_at"] is None:
                note = records.update(
                    wctx, "notification", note["id"], {"read_at": records.clock()}
                )
        return _shown(note)


TYPES: list[type] = [NotificationsQuery, NotificationsMutation]
