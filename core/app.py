"""The ASGI application, built once from a runtime (routes from plugins included).

Everything is decided at construction: tests build their own app from their own
runtime, and nothing is attached after start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from qiao.core import audit
from qiao.core.auth import passwords
from qiao.core.auth.tokens import Authenticator
from qiao.core.edge.auth import QiaoUser, TokenBackend
from qiao.core.edge.body import graphql_get_parameters, json_body
from qiao.core.edge.errors import HANDLERS, error_response, status_of
from qiao.core.edge.headers import SecurityHeaders
from qiao.core.edge.limits import BodyLimit
from qiao.core.edge.threads import in_thread
from qiao.core.errors import BadUserInput, ConfigurationError, QiaoError
from qiao.core.events.livewake import ChangeHub
from qiao.core.exports.http import export_route
from qiao.core.graphql.compiler import CompiledRead
from qiao.core.graphql.service import INTERNAL_ERROR, GraphQLService, error_body, read_body
from qiao.core.records.context import Actor
from qiao.core.runtime import Runtime
from qiao.core.storage.loop_reads import LoopReads
from qiao.core.web import assets
from qiao.core.web.graphiql import graphiql_page
from qiao.core.web.graphql_ws import GraphQLWebSocket

log = logging.getLogger("qiao.app")
RESERVED_PATHS = {"/graphql", "/auth/sign-in", "/healthz", "/readyz"}
#: Path prefixes Qiao serves itself: exports (docs/exports.md) and its static files.
RESERVED_PREFIXES = ("/export/", assets.PREFIX)
#: Sign-ins checking a password at once: argon2 is slow on purpose (and runs lanes in
#: threads of its own), and must not take every core while others' requests wait.
SIGN_IN_CONCURRENCY = 1
#: GraphQL documents not seen before, parsed and validated at once: the costly part
#: of a request, and what a stranger can vary at will.
NEW_DOCUMENT_CONCURRENCY = 2


def create_app(runtime: Runtime) -> Starlette:
    """The Qiao API for ``runtime``: /graphql, /export/, /healthz, /readyz, /static/ and
    plugins' routes."""
    graphql = GraphQLService(runtime)
    authenticator = Authenticator(runtime.db, runtime.current)
    sign_ins = anyio.CapacityLimiter(SIGN_IN_CONCURRENCY)
    new_documents = anyio.CapacityLimiter(NEW_DOCUMENT_CONCURRENCY)
    changes = ChangeHub(runtime.db)
    #: Reads of cached compiled queries, awaited in the event loop (PostgreSQL only).
    loop_reads = LoopReads.of(runtime.db)

    def answer(
        actor: Actor | None, authorization: str | None, body: Any, read_only: bool
    ) -> tuple[int, dict[str, Any] | bytes]:
        """Authenticate and execute in one worker-thread hop (each hop costs ~15%)."""
        try:
            actor = actor or authenticator.actor_for(authorization)
            return 200, graphql.execute(actor, body, read_only=read_only)
        except QiaoError as exc:
            status = status_of(exc)
            return (status if status in {405, 500} else 200), error_body(exc)
        except Exception:
            log.exception("unexpected error answering a GraphQL request")
            return 200, {"data": None, "errors": [INTERNAL_ERROR]}

    def ready_reads(
        actor: Actor | None, requests: list[tuple[str, dict[str, Any], str | None]]
    ) -> list[CompiledRead] | None:
        """Each request's compiled read, if every one can be awaited in the event loop now."""
        if actor is None or loop_reads is None or not loop_reads.ready:
            return None
        found = []
        for request in requests:
            compiled = graphql.ready(actor, *request)
            if compiled is None:
                return None
            found.append(compiled)
        return found

    async def answer_ready(compiled: CompiledRead) -> dict[str, Any] | bytes:
        assert loop_reads is not None  # ready_reads gave it, so the pool is open
        return await graphql.execute_ready(compiled, loop_reads)

    async def graphql_endpoint(request: Request) -> Response:
        get = request.method == "GET"
        if get and "text/html" in request.headers.get("accept", ""):
            return await in_thread(graphiql_page)
        body = graphql_get_parameters(request) if get else await json_body(request)
        if isinstance(body, list) and not get:
            return await graphql_batch(request, body)
        body = graphql.trusted.resolve(body)
        parsed = read_body(body)  # not a GraphQL request at all: 400, before any work
        user = request.user
        actor = user.actor if isinstance(user, QiaoUser) else None
        ready = ready_reads(actor, [parsed])
        if ready is not None:
            return _graphql_response(200, await answer_ready(ready[0]))
        status, result = await in_thread(
            answer,
            actor,
            request.headers.get("authorization"),
            body,
            get,
            limiter=None if graphql.knows(body) else new_documents,
        )
        return _graphql_response(status, result)

    async def graphql_batch(request: Request, batch: list[Any]) -> Response:
        """Several operations in one POST, answered in order as a JSON array (docs/graphql.md)."""
        limit = config.graphql.max_batch
        if not batch:
            raise BadUserInput("a batch needs at least one operation")
        if len(batch) > limit:
            raise BadUserInput(
                f"a batch may carry at most {limit} operations, this one has {len(batch)}; "
                "send the rest in another request"
            )
        bodies = []
        parsed = []
        for index, body in enumerate(batch):
            try:
                body = graphql.trusted.resolve(body)
                parsed.append(read_body(body))
            except QiaoError as exc:
                message = f"operation {index} of the batch: {exc.message}"
                raise type(exc)(message, field=exc.field) from None
            bodies.append(body)
        user = request.user
        actor = user.actor if isinstance(user, QiaoUser) else None
        authorization = request.headers.get("authorization")

        def answer_all() -> list[dict[str, Any] | bytes]:
            return [answer(actor, authorization, body, False)[1] for body in bodies]

        ready = ready_reads(actor, parsed)
        if ready is not None:
            results = [await answer_ready(compiled) for compiled in ready]
        else:
            known = all(graphql.knows(body) for body in bodies)
            results = await in_thread(answer_all, limiter=None if known else new_documents)
        parts = [r if isinstance(r, bytes) else _json_bytes(r) for r in results]
        return Response(b"[" + b",".join(parts) + b"]", 200, media_type="application/json")

    async def sign_in(request: Request) -> Response:
        """Exchange a user name and password for a session token (docs/graphql.md)."""
        body = await json_body(request)
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) for k in ("username", "password")
        ):
            raise BadUserInput("send a JSON object with 'username' and 'password'")
        address = request.client.host if request.client else "unknown"
        attempt = await in_thread(
            passwords.sign_in,
            runtime.db,
            runtime.current(),
            body["username"],
            body["password"],
            uuid.uuid4().hex,
            address,
            limiter=sign_ins,
        )
        await asyncio.sleep(attempt.delay)  # slowed without holding a thread
        if attempt.error is not None:
            return error_response(attempt.error)
        assert attempt.session is not None
        session = attempt.session
        return JSONResponse({"token": session.token, "expiresAt": session.expires_at.isoformat()})

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        try:
            kernel_current, plan = await in_thread(runtime.pending)
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
        # Subscriptions (and queries) over graphql-transport-ws (docs/graphql.md).
        WebSocketRoute(
            "/graphql", GraphQLWebSocket(runtime, graphql, authenticator, changes).serve
        ),
        Route("/auth/sign-in", sign_in, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route(assets.ROUTE, assets.FILES.endpoint, methods=["GET"]),
        export_route(runtime, graphql),
    ]
    for route in runtime.plugins.routes(runtime):
        path = getattr(route, "path", None)
        if path in RESERVED_PATHS or str(path).startswith(RESERVED_PREFIXES):
            raise ConfigurationError(f"a plugin route claims {path}, which Qiao serves itself")
        routes.append(route)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await in_thread(runtime.start)
        await in_thread(graphql.schema)
        await in_thread(passwords.dummy_hash)
        checkpoints = asyncio.create_task(_checkpoint_periodically(runtime))
        await changes.start()
        if loop_reads is not None:
            await loop_reads.open()
        yield
        if loop_reads is not None:
            await loop_reads.close()
        await changes.stop()
        checkpoints.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await checkpoints

    config = runtime.config
    middleware = [Middleware(SecurityHeaders)]
    if config.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(config.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
                # An export's file name and row count, for frontends on another origin.
                expose_headers=["Content-Disposition", "X-Total-Count"],
                max_age=600,
            )
        )
    middleware += [
        Middleware(BodyLimit, max_bytes=config.max_body_bytes),
        Middleware(AuthenticationMiddleware, backend=TokenBackend(authenticator)),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=HANDLERS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.graphql = graphql
    app.state.loop_reads = loop_reads
    return app


def _graphql_response(status: int, result: dict[str, Any] | bytes) -> Response:
    """A GraphQL answer: JSON the database built (bytes) or a response body to encode."""
    headers = {"Allow": "POST"} if status == 405 else None
    if isinstance(result, bytes):
        return Response(result, status, headers, media_type="application/json")
    return JSONResponse(result, status, headers)


def _json_bytes(content: Any) -> bytes:
    """JSON as Starlette's JSONResponse writes it (UTF-8, compact)."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


async def _checkpoint_periodically(runtime: Runtime) -> None:
    """Anchor the audit log's last entries outside the database after a quiet spell too."""
    bound = audit.bound(runtime)
    if bound is None:
        return
    every = min(60.0, bound.settings.checkpoint_minutes * 60)
    while True:
        await asyncio.sleep(every)
        try:
            await in_thread(audit.checkpoint_if_due, runtime)
        except Exception:
            log.exception("the periodic audit checkpoint failed")
