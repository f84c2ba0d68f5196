"""HTTP routes: ``POST /attachments/{Entity}/{id}`` uploads a file, ``GET
/attachments/download`` serves one through a signed link.

Upload: authenticated like ``/graphql``; the body is the file itself (any
``Content-Type``; the bytes decide), its name in ``?filename=`` (UTF-8, percent-encoded).
The record's rules are checked before a byte of the body is read, the body is counted
as it streams in and refused past the store's ``max_bytes``, and only a whole, allowed
file is stored. Answers 201 with the attachment as JSON.

Download: the link is the authority (signed over key, expiry and name, see
:mod:`..objectstore.links`), so it works from a browser without a token until it
expires; a forged or altered link answers 403, an expired one 410.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from qiao.api import BadUserInput, Forbidden, Runtime, Source, actor_of, entity_named, in_thread
from qiao.plugins.connectors.objectstore.links import LinkError, LinkExpiredError

from . import service, stores
from .service import Upload

PREFIX = "attachments/"


def describe(record: dict[str, Any]) -> dict[str, Any]:
    """An attachment as the API shows it (camelCase, as GraphQL does)."""
    return {
        "id": record["id"],
        "filename": record["filename"],
        "contentType": record["content_type"],
        "size": record["size"],
        "sha256": record["sha256"],
    }


def routes(runtime: Runtime) -> list[BaseRoute]:
    async def upload(request: Request) -> Response:
        actor = actor_of(request)
        type_name = request.path_params["entity"]
        record_id = request.path_params["id"]
        filename = request.query_params.get("filename")
        if not filename:
            raise BadUserInput("name the file: ?filename=...", field="filename")

        def allowed() -> stores.StoreSettings:
            entity = entity_named(runtime, type_name)
            service.require_writable(runtime, actor, type_name, entity, record_id)
            return stores.active(runtime)

        chosen = await in_thread(allowed)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit():
            service.check_size(chosen, int(declared))
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            service.check_size(chosen, len(body))

        def store() -> dict[str, Any]:
            entity = entity_named(runtime, type_name)
            wanted = Upload(entity, record_id, filename, bytes(body))
            return service.attach(runtime, actor, wanted, Source.GRAPHQL)

        record = await in_thread(store)
        return JSONResponse(describe(record), status_code=201)

    async def download(request: Request) -> Response:
        query = dict(request.query_params)

        def read() -> tuple[dict[str, Any], bytes]:
            try:
                target = stores.link_signer(runtime).verify(query)
            except LinkExpiredError:
                raise
            except LinkError as error:
                raise Forbidden(str(error)) from None
            if not target.key.startswith(PREFIX):
                raise Forbidden("this link is not for an attachment")
            return service.content(runtime, target.key.removeprefix(PREFIX))

        try:
            record, data = await in_thread(read)
        except LinkExpiredError as error:
            body = {
                "data": None,
                "errors": [{"message": str(error), "extensions": {"code": "GONE"}}],
            }
            return JSONResponse(body, status_code=410)
        disposition = f"attachment; filename*=UTF-8''{quote(record['filename'], safe='')}"
        return Response(
            data,
            media_type=record["content_type"],
            headers={"Content-Disposition": disposition, "Cache-Control": "private, no-store"},
        )

    return [
        Route(stores.DOWNLOAD_PATH, download, methods=["GET"]),
        Route("/attachments/{entity}/{id}", upload, methods=["POST"]),
    ]
