"""GraphQL: a user's own notifications, and marking them read.

Every signed-in user may read and mark the notifications addressed to them,
whatever their roles: these resolvers read and write as the system, limited to
records whose recipient (``owner``) is the caller. The generic
``notifications`` query stays under the roles' rules (administrators see all).
"""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from qiao.core.errors import NotFound, Unauthenticated
from qiao.core.graphql.context import RequestContext
from qiao.core.graphql.scalars import DateTime
from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record

#: The most notifications one call returns.
MAX_NOTIFICATIONS = 200


@strawberry.type(description="An in-app notification addressed to the signed-in user.")
class InAppNotification:
    id: strawberry.ID = strawberry.field(description="The notification's id.")
    title: str = strawberry.field(description="Its title.")
    body: str | None = strawberry.field(description="Its text, if it has more than a title.")
    kind: str | None = strawberry.field(
        description="What raised it: a rule, an approval, an assignment..."
    )
    link_entity: str | None = strawberry.field(description="The entity of the record it is about.")
    link_id: str | None = strawberry.field(description="The id of the record it is about.")
    created_at: DateTime = strawberry.field(description="When it was raised.")
    read_at: DateTime | None = strawberry.field(description="When it was read; null while unread.")


def _shown(record: Record) -> InAppNotification:
    return InAppNotification(
        id=strawberry.ID(record["id"]),
        title=record["title"],
        body=record["body"],
        kind=record["kind"],
        link_entity=record["link_entity"],
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
    @strawberry.field(description="Your notifications, newest first.")
    def my_notifications(
        self,
        info: Info,
        unread_only: Annotated[
            bool, strawberry.argument(description="Only those not read yet.")
        ] = False,
        first: Annotated[int, strawberry.argument(description="How many, newest first.")] = 50,
    ) -> list[InAppNotification]:
        ctx: RequestContext = info.context
        user = _user(ctx)
        where: dict[str, object] = {"owner_id": {"eq": user}}
        if unread_only:
            where["read_at"] = {"is_null": True}
        runtime = ctx.runtime
        with runtime.db.read() as conn:
            page = runtime.records.list(
                conn,
                "notification",
                filter=where,
                order_by=[{"field": "created_at", "direction": "DESC"}],
                first=max(1, min(first, MAX_NOTIFICATIONS)),
                actor=Actor.system(),
            )
        return [_shown(r) for r in page.records]


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
