"""GraphQL: a record's attachments with links that expire, and removing one.

Uploads are HTTP (``POST /attachments/{Entity}/{id}``, :mod:`.routes`): GraphQL over
JSON would carry files as base64, a third larger and whole in memory twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import strawberry
from strawberry.types import Info

from qiao.api import DateTime, RequestContext, entity_named

from . import service


def type_name(entity: str) -> str:
    return "".join(part.capitalize() for part in entity.split("_"))


@strawberry.type(name="RecordAttachment", description="A file kept with a record.")
class AttachmentType:
    id: strawberry.ID
    filename: str = strawberry.field(description="Its name as uploaded, made safe.")
    content_type: str = strawberry.field(description="The media type its bytes have.")
    size: int = strawberry.field(description="Bytes.")
    sha256: str = strawberry.field(description="SHA-256 of its bytes, hex.")
    uploaded_at: DateTime
    uploaded_by: str | None = strawberry.field(description="The uploader's username.")
    download_url: str = strawberry.field(
        description="A link that downloads the file until expiresInSeconds from now."
    )
    expires_in_seconds: int


# strawberry types field() and mutation() called with options as returning Any, so
# mypy finds the decorators below untyped; the resolvers themselves are checked.
@strawberry.type(name="Query")
class AttachmentsQuery:
    @strawberry.field(  # type: ignore[untyped-decorator]
        description="The files kept with a record, oldest first, each with a download link "
        "that expires; NOT_FOUND when the caller cannot read the record."
    )
    def record_attachments(
        self,
        info: Info,
        entity: Annotated[
            str, strawberry.argument(description="The record's type name, as Account.")
        ],
        id: Annotated[strawberry.ID, strawberry.argument(description="The record's id.")],
    ) -> list[AttachmentType]:
        ctx: RequestContext = info.context
        runtime = ctx.runtime
        name = entity_named(runtime, entity)
        if service.readable(runtime, ctx.actor, name, str(id)) is None:
            raise service.missing(entity, str(id))
        users = usernames(ctx)
        out = []
        for record in service.of_record(runtime, name, str(id)):
            url, lifetime = service.link(runtime, record)
            out.append(
                AttachmentType(
                    id=strawberry.ID(record["id"]),
                    filename=record["filename"],
                    content_type=record["content_type"],
                    size=record["size"],
                    sha256=record["sha256"],
                    uploaded_at=record["created_at"],
                    uploaded_by=users(record.get("uploaded_by_id")),
                    download_url=url,
                    expires_in_seconds=lifetime,
                )
            )
        return out


def usernames(ctx: RequestContext) -> Callable[[str | None], str | None]:
    """Uploaders' usernames, each user read once per request."""
    runtime = ctx.runtime
    seen: dict[str, str | None] = {}

    def of(user_id: str | None) -> str | None:
        if not user_id:
            return None
        if user_id not in seen:
            with runtime.db.read() as conn:
                user = runtime.records.get(conn, "user", str(user_id), actor=service.SYSTEM)
            seen[user_id] = user["username"] if user else None
        return seen[user_id]

    return of


@strawberry.type(name="Mutation")
class AttachmentsMutation:
    @strawberry.mutation(  # type: ignore[untyped-decorator]
        description="Remove a file from its record (the caller must be able to change the "
        "record); its object leaves the store once the removal commits. Returns its id."
    )
    def remove_attachment(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        ctx: RequestContext = info.context
        service.remove(ctx.runtime, ctx.actor, str(id), type_name)
        return id


TYPES: list[type] = [AttachmentsQuery, AttachmentsMutation]
