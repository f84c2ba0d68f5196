"""The ASGI application, built once from a runtime (routes from plugins included).

Everything is decided at construction: tests build their own app from their own
runtime, and nothing is attached after start-up.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from qiao.core.auth import passwords
from qiao.core.auth.tokens import Authenticator
from qiao.core.errors import BadUserInput, ConfigurationError, QiaoError
from qiao.core.graphql.service import INTERNAL_ERROR, GraphQLService, error_body
from qiao.core.runtime import Runtime
from qiao.core.web import assets
from qiao.core.web.graphiql import graphiql_page

log = logging.getLogger("qiao.app")
MAX_BODY_BYTES = 1_000_000
RESERVED_PATHS = {"/graphql", "/auth/sign-in", "/healthz", "/readyz"}


def create_app(runtime: Runtime) -> Starlette:
    """The Qiao API for ``runtime``: /graphql, /healthz, /readyz, /static/ and plugins' routes."""
    graphql = GraphQLService(runtime)
    authenticator = Authenticator(runtime.db, runtime.current)

    def answer(authorization: str | None, body: Any) -> dict[str, Any] | bytes:
        """Authenticate and execute in one worker-thread hop (each hop costs ~15%)."""
        try:
            actor = authenticator.actor_for(authorization)
            return graphql.execute(actor, body)
        except QiaoError as exc:
            return error_body(exc)
        except Exception:
            log.exception("unexpected error answering a GraphQL request")
            return {"data": None, "errors": [INTERNAL_ERROR]}

    async def graphql_endpoint(request: Request) -> Response:
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return await run_in_threadpool(graphiql_page)
        try:
            body = await _request_body(request)
        except BadUserInput as exc:
            return JSONResponse(error_body(exc), status_code=400)
        result = await run_in_threadpool(answer, request.headers.get("authorization"), body)
        if isinstance(result, bytes):
            return Response(result, media_type="application/json")
        return JSONResponse(result)

    async def sign_in(request: Request) -> Response:
        """Exchange a user name and password for a session token (docs/graphql.md)."""
        try:
            body = await _request_body(request)
            if not isinstance(body, dict) or not all(
                isinstance(body.get(k), str) for k in ("username", "password")
            ):
                raise BadUserInput("send a JSON object with 'username' and 'password'")
            session = await run_in_threadpool(
                passwords.sign_in,
                runtime.db,
                runtime.current(),
                body["username"],
                body["password"],
                uuid.uuid4().hex,
            )
        except BadUserInput as exc:
            return JSONResponse(error_body(exc), status_code=400)
        except QiaoError as exc:
            return JSONResponse(error_body(exc), status_code=401)
        return JSONResponse({"token": session.token, "expiresAt": session.expires_at.isoformat()})

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        try:
            kernel_current, plan = await run_in_threadpool(runtime.pending)
        except Exception as exc:
            log.warning("readiness check failed: %s", exc)
            return JSONResponse({"status": "unavailable", "reason": "database unreachable"}, 503)
        if not kernel_current or plan is None or not plan.empty:
            return JSONResponse(
                {"status": "unavailable", "reason": "migrations pending; run 'qiao migrate'"}, 503
            )
        return JSONResponse({"status": "ready"})

    routes: list[BaseRoute] = [
        Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
        Route("/auth/sign-in", sign_in, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route(assets.ROUTE, assets.FILES.endpoint, methods=["GET"]),
    ]
    for route in runtime.plugins.routes(runtime):
        path = getattr(route, "path", None)
        if path in RESERVED_PATHS or str(path).startswith(assets.PREFIX):
            raise ConfigurationError(f"a plugin route claims {path}, which Qiao serves itself")
        routes.append(route)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(runtime.start)
        await run_in_threadpool(graphql.schema)
        yield

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.runtime = runtime
    app.state.graphql = graphql
    return app


async def _request_body(request: Request) -> Any:
    if request.method == "GET":
        params = request.query_params
        variables = params.get("variables")
        try:
            parsed = json.loads(variables) if variables else None
        except ValueError:
            raise BadUserInput("'variables' is not valid JSON") from None
        return {
            "query": params.get("query"),
            "variables": parsed,
            "operationName": params.get("operationName"),
            "_get": True,
        }
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise BadUserInput(f"the request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw)
    except ValueError:
        raise BadUserInput("the request body is not valid JSON") from None
