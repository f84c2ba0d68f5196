"""``POST /export/{entity}``: a list as a CSV or xlsx download, for frontends.

Authenticated like ``/graphql`` (``Authorization: Bearer <token>``). The body
is JSON: ``format`` (``csv`` or ``xlsx``), and optionally ``filter`` and
``orderBy`` exactly as the entity's GraphQL list takes them, ``names``
(``labels``, the default, or ``api``) and ``bom`` (CSV only). Everything is
checked before the answer starts, so a refusal is an ordinary JSON error with
its HTTP status; the file then streams (docs/exports.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from qiao.core.edge.auth import actor_of
from qiao.core.edge.body import json_body
from qiao.core.edge.threads import in_thread
from qiao.core.errors import BadUserInput
from qiao.core.exports.columns import Names
from qiao.core.exports.export import Export, ExportRequest
from qiao.core.records.context import Source

if TYPE_CHECKING:
    from qiao.core.graphql.service import GraphQLService
    from qiao.core.runtime import Runtime

PATH = "/export/{entity}"
_KEYS = {"format", "filter", "orderBy", "names", "bom"}


def export_route(runtime: Runtime, graphql: GraphQLService) -> Route:
    """The export endpoint of ``runtime``'s API; filters are read by ``graphql``'s schema."""

    async def endpoint(request: Request) -> Response:
        actor = actor_of(request)
        body = await json_body(request)
        wanted = _request(request.path_params["entity"], body)
        export = await in_thread(
            lambda: Export(runtime, graphql.schema(), actor, wanted, Source.GRAPHQL)
        )
        return StreamingResponse(
            export.chunks(),
            media_type=export.format.media_type,
            headers={
                "Content-Disposition": f'attachment; filename="{export.filename}"',
                "X-Total-Count": str(export.total),
            },
        )

    return Route(PATH, endpoint, methods=["POST"])


def _request(entity: str, body: Any) -> ExportRequest:
    if not isinstance(body, dict) or "format" not in body:
        raise BadUserInput('send a JSON object with at least "format": "csv" or "xlsx"')
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise BadUserInput(
            f"unknown key {unknown[0]!r}; an export takes {', '.join(sorted(_KEYS))}",
            field=unknown[0],
        )
    bom = body.get("bom", False)
    if not isinstance(bom, bool):
        raise BadUserInput("bom must be true or false", field="bom")
    return ExportRequest(
        entity=entity,
        format=str(body["format"]),
        filter=body.get("filter"),
        order_by=body.get("orderBy"),
        names=str(body.get("names", Names.LABELS.value)),
        bom=bom,
    )
