"""GraphQL: render a document for a record, and the QR code of a record's intake link.

Templates and stored documents are records (``documentTemplates``,
``documents(filter: {recordId: {eq: ...}})``); these mutations act on them.
"""

from __future__ import annotations

import base64
from typing import Annotated

import strawberry
from strawberry.types import Info

from qiao.core.documents.qr import qr_png, qr_svg
from qiao.core.documents.render import intake_url, render_document
from qiao.core.errors import NotFound
from qiao.core.graphql.context import RequestContext
from qiao.core.records.context import Source


@strawberry.type(description="A document rendered from a record and kept as its attachment.")
class RenderedDocument:
    id: strawberry.ID = strawberry.field(description="The document record's id.")
    filename: str = strawberry.field(description="Its file name.")
    content_type: str = strawberry.field(
        description="The media type: text/html or application/pdf."
    )
    content: str = strawberry.field(description="HTML as text; a PDF base64-encoded.")


@strawberry.type(description="A record's signed intake link and its QR code.")
class IntakeCode:
    url: str = strawberry.field(description="The signed link to the form.")
    svg: str = strawberry.field(description="The QR code as an SVG document.")
    png_base64: str = strawberry.field(description="The QR code as a PNG, base64-encoded.")


@strawberry.type(name="Mutation")
class DocumentsMutation:
    @strawberry.mutation(
        description="Render a document template for a record, as the caller reads it, and keep "
        "it as a document of the record. baseUrl makes QR codes and links in it absolute; "
        "sendTo (usernames) get a notification of it, delivered by the notification channels."
    )
    def render_document(
        self,
        info: Info,
        template: Annotated[str, strawberry.argument(description="The document template.")],
        id: Annotated[strawberry.ID, strawberry.argument(description="The record's id.")],
        base_url: Annotated[
            str | None, strawberry.argument(description="Where the deployment is served.")
        ] = None,
        send_to: Annotated[
            list[str] | None, strawberry.argument(description="Usernames to notify of it.")
        ] = None,
    ) -> RenderedDocument:
        ctx: RequestContext = info.context
        records = ctx.runtime.records
        with records.transaction(ctx.actor, Source.GRAPHQL, ctx.request_id) as wctx:
            doc = render_document(wctx, template, str(id), base_url, send_to or ())
        return RenderedDocument(
            id=strawberry.ID(doc["id"]),
            filename=doc["filename"],
            content_type=doc["content_type"],
            content=doc["content"],
        )

    @strawberry.mutation(
        description="The signed link that opens an intake form for a record (a device's repair "
        "form), with its QR code; the caller must be able to read the record."
    )
    def intake_code(
        self,
        info: Info,
        form: Annotated[str, strawberry.argument(description="The intake form.")],
        entity: Annotated[str, strawberry.argument(description="The record's entity.")],
        id: Annotated[strawberry.ID, strawberry.argument(description="The record's id.")],
        base_url: Annotated[
            str, strawberry.argument(description="Where the deployment is served.")
        ],
    ) -> IntakeCode:
        ctx: RequestContext = info.context
        records = ctx.runtime.records
        with records.transaction(ctx.actor, Source.GRAPHQL, ctx.request_id) as wctx:
            if records.get(wctx.connection, entity, str(id), actor=ctx.actor) is None:
                raise NotFound(f"no {entity} with id {id}", field="id")
            url = intake_url(wctx, form, entity, str(id), base_url)
        return IntakeCode(
            url=url, svg=qr_svg(url), png_base64=base64.b64encode(qr_png(url)).decode("ascii")
        )


TYPES: list[type] = [DocumentsMutation]
