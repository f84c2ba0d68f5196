"""GraphQL over WebSocket at /graphql: the ``graphql-transport-ws`` protocol.

The protocol of the graphql-ws library (its GRAPHQL_TRANSPORT_WS_PROTOCOL.md),
which Apollo Client, urql and Relay speak through ``createClient``:

- the client opens the socket with the subprotocol ``graphql-transport-ws``
  (another one is closed with 4406) and sends ``connection_init`` within
  :data:`INIT_TIMEOUT` seconds (else 4408), whose payload carries the same
  credentials as the HTTP API: ``{"authorization": "Bearer <token>"}`` or
  ``{"token": "<token>"}`` (an API token or a session's); the upgrade
  request's ``Authorization`` header is taken when the payload has neither.
  Missing or refused credentials close the socket with 4403; a second
  ``connection_init`` with 4429; the server answers ``connection_ack``;
- ``subscribe`` (an ``id`` and a GraphQL request as ``payload``) before the
  ack closes with 4401, with an ``id`` still running with 4409; a
  subscription streams ``next`` messages until the client sends ``complete``;
  a query or mutation answers one ``next`` and ``complete``; a request that
  fails validation, or is refused, answers ``error`` with GraphQL errors;
- ``ping`` is answered ``pong``; a message that is not JSON, has no known
  ``type``, or lacks what its type needs closes with 4400; a message larger
  than :data:`MAX_MESSAGE_BYTES` closes with 1009.

A connection runs at most :data:`MAX_SUBSCRIPTIONS` operations at once; one
more answers ``error`` (TOO_MANY_REQUESTS). Credentials are checked again
before each delivery, so a revoked or expired token ends the connection
(4403) instead of streaming on. What a subscription delivers, and under which
rules, is :mod:`qiao.core.graphql.live`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect

from qiao.core.auth.tokens import Authenticator
from qiao.core.errors import QiaoError, TooManyRequests, Unauthenticated
from qiao.core.events.livewake import ChangeHub
from qiao.core.graphql import live
from qiao.core.graphql.service import INTERNAL_ERROR, GraphQLService, error_body
from qiao.core.records.context import Actor
from qiao.core.runtime import Runtime

log = logging.getLogger("qiao.web.graphql_ws")
PROTOCOL = "graphql-transport-ws"
#: Seconds a new connection has to send ``connection_init``.
INIT_TIMEOUT = 10.0
#: Operations one connection may run at once.
MAX_SUBSCRIPTIONS = 50
#: The largest message a client may send: a query at its largest, and its variables.
MAX_MESSAGE_BYTES = 256 * 1024


class _Close(Exception):
    """End the connection with a protocol close code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class GraphQLWebSocket:
    """The /graphql WebSocket endpoint of one app."""

    def __init__(
        self,
        runtime: Runtime,
        graphql: GraphQLService,
        authenticator: Authenticator,
        hub: ChangeHub,
    ) -> None:
        self.runtime = runtime
        self.graphql = graphql
        self.authenticator = authenticator
        self.hub = hub

    async def serve(self, websocket: WebSocket) -> None:
        if PROTOCOL not in websocket.scope.get("subprotocols", ()):
            await websocket.accept()
            await websocket.close(4406, "Subprotocol not acceptable")
            return
        await websocket.accept(subprotocol=PROTOCOL)
        session = _Session(self, websocket)
        try:
            await session.run()
        except _Close as close:
            with contextlib.suppress(Exception):  # the client may be gone already
                await websocket.close(close.code, close.reason)
        except WebSocketDisconnect:
            pass
        finally:
            await session.cancel_all()


class _Session:
    """One client connection: its credentials and its running operations."""

    def __init__(self, endpoint: GraphQLWebSocket, websocket: WebSocket) -> None:
        self.endpoint = endpoint
        self.websocket = websocket
        self.authorization: str | None = None
        self.actor: Actor | None = None
        self.initialised = False
        self.operations: dict[str, asyncio.Task[None]] = {}
        self._send_lock = asyncio.Lock()

    async def run(self) -> None:
        try:
            first = await asyncio.wait_for(self._receive(), INIT_TIMEOUT)
        except TimeoutError:
            raise _Close(4408, "Connection initialisation timeout") from None
        await self._handle(first)
        while True:
            await self._handle(await self._receive())

    async def _receive(self) -> dict[str, Any]:
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        if text is None:
            raise _Close(4400, "Invalid message received: send JSON text")
        if len(text.encode()) > MAX_MESSAGE_BYTES:  # uvicorn bounds frames too (`qiao serve`)
            raise _Close(1009, f"Message larger than {MAX_MESSAGE_BYTES} bytes")
        try:
            parsed = json.loads(text)
        except ValueError:
            raise _Close(4400, "Invalid message received: not JSON") from None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("type"), str):
            raise _Close(4400, "Invalid message received: no type")
        return parsed

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "connection_init":
            await self._init(message.get("payload"))
        elif kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "pong":
            return
        elif kind == "subscribe":
            await self._subscribe(message)
        elif kind == "complete":
            task = self.operations.pop(_id_of(message), None)
            if task is not None:
                task.cancel()
        else:
            raise _Close(4400, f"Invalid message received: unknown type {kind!r}")

    async def _init(self, payload: Any) -> None:
        if self.initialised:
            raise _Close(4429, "Too many initialisation requests")
        self.initialised = True
        if payload is not None and not isinstance(payload, dict):
            raise _Close(4400, "Invalid message received: the payload must be an object")
        authorization = _authorization(payload or {}) or self.websocket.headers.get("authorization")
        if authorization is None:
            raise _Close(4403, "Forbidden: send credentials in connection_init's payload")
        try:
            actor = await anyio.to_thread.run_sync(
                self.endpoint.authenticator.actor_for, authorization
            )
        except Unauthenticated as exc:
            raise _Close(4403, f"Forbidden: {exc.message}") from None
        self.authorization, self.actor = authorization, actor
        await self.send({"type": "connection_ack"})

    async def _subscribe(self, message: dict[str, Any]) -> None:
        operation_id = _id_of(message)
        payload = message.get("payload")
        if not isinstance(payload, dict):
            raise _Close(4400, "Invalid message received: subscribe needs a payload object")
        if self.actor is None:
            raise _Close(4401, "Unauthorized")
        if operation_id in self.operations:
            raise _Close(4409, f"Subscriber for {operation_id} already exists")
        if len(self.operations) >= MAX_SUBSCRIPTIONS:
            error = TooManyRequests(
                f"a connection may run {MAX_SUBSCRIPTIONS} operations at once; complete one first"
            )
            await self.send_error(operation_id, error_body(error)["errors"])
            return
        # Checked, and its feed position taken, before the next message is read: a change
        # that commits after the server answered a later message (a ping) is delivered.
        started = await self._guarded(operation_id, lambda: self._start(operation_id, payload))
        if started is not None:
            task = asyncio.create_task(self._guarded(operation_id, started))
            self.operations[operation_id] = task

    async def _guarded(self, operation_id: str, work: Callable[[], Awaitable[Any]]) -> Any:
        """``work()``'s result; refusals and failures are answered as the operation's ``error``.

        ``work`` makes its coroutine only when run, so a task cancelled before it
        started leaves no coroutine unawaited.
        """
        try:
            return await work()
        except asyncio.CancelledError:
            raise
        except _Close as close:
            with contextlib.suppress(Exception):
                await self.websocket.close(close.code, close.reason)
        except QiaoError as exc:
            await self._quietly(self.send_error(operation_id, error_body(exc)["errors"]))
        except live.ReadRefused as exc:
            await self._quietly(self.send_error(operation_id, exc.errors))
        except Exception:
            log.exception("unexpected error in a GraphQL WebSocket operation")
            await self._quietly(self.send_error(operation_id, [INTERNAL_ERROR]))
        finally:
            if self.operations.get(operation_id) is asyncio.current_task():
                del self.operations[operation_id]
        return None

    async def _quietly(self, sending: Any) -> None:
        with contextlib.suppress(Exception):  # the client may be gone already
            await sending

    async def _start(
        self, operation_id: str, payload: dict[str, Any]
    ) -> Callable[[], Awaitable[None]] | None:
        """Check an operation; what runs it, or None when refused (answered)."""
        graphql = self.endpoint.graphql
        prepared = await anyio.to_thread.run_sync(live.prepare, graphql, payload)
        if isinstance(prepared, list):
            await self.send_error(operation_id, prepared)
            return None
        actor = self.actor
        assert actor is not None
        if prepared is None:
            return functools.partial(self._answer, operation_id, actor, payload)
        db = self.endpoint.runtime.db
        query = prepared

        def start() -> int:
            # Refusals that hold for every change (the entity unreadable, a filter on a
            # hidden field, no feed without an audit key) answer now, not at a change.
            query.check(graphql, actor)
            return db.run_read(functools.partial(live.start_position, after=query.after))

        position = await anyio.to_thread.run_sync(start)
        return functools.partial(self._stream, operation_id, query, position)

    async def _answer(self, operation_id: str, actor: Actor, payload: dict[str, Any]) -> None:
        """A query or mutation: one result, as over HTTP."""
        result = await anyio.to_thread.run_sync(self.endpoint.graphql.execute, actor, payload)
        await self.send_next(operation_id, result)
        await self.send({"id": operation_id, "type": "complete"})

    async def _stream(self, operation_id: str, query: live.LiveQuery, position: int) -> None:
        """Deliver the entity's changes after ``position``, as they commit, until completed."""
        hub = self.endpoint.hub
        graphql = self.endpoint.graphql
        db = self.endpoint.runtime.db
        entity = query.entity.name
        with hub.following():
            while True:
                ticket = hub.ticket()
                changes = hub.recent(position, entity, live.FEED_BATCH)
                if changes is None:  # behind the hub's window: a replay reads the feed itself
                    changes = await anyio.to_thread.run_sync(
                        db.run_read,
                        functools.partial(live.next_changes, after=position, entity=entity),
                    )
                if changes:
                    actor = await self._current_actor()
                    events = await anyio.to_thread.run_sync(query.events, graphql, actor, changes)
                    for event in events:
                        await self.send_next(operation_id, event)
                    position = changes[-1].sequence
                if len(changes) < live.FEED_BATCH:
                    await hub.wait(ticket)

    async def _current_actor(self) -> Actor:
        """The connection's caller as its credentials say now (revoked or expired: closed)."""
        try:
            actor = await anyio.to_thread.run_sync(
                self.endpoint.authenticator.actor_for, self.authorization
            )
        except Unauthenticated as exc:
            raise _Close(4403, f"Forbidden: {exc.message}") from None
        self.actor = actor  # as the token says now (deactivated, made read-only, ...)
        return actor

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_text(_json(message))

    async def send_text(self, text: str) -> None:
        async with self._send_lock:
            await self.websocket.send_text(text)

    async def send_next(self, operation_id: str, result: dict[str, Any] | bytes) -> None:
        body = result.decode() if isinstance(result, bytes) else _json(result)
        await self.send_text(f'{{"id":{json.dumps(operation_id)},"type":"next","payload":{body}}}')

    async def send_error(self, operation_id: str, errors: list[dict[str, Any]]) -> None:
        await self.send({"id": operation_id, "type": "error", "payload": errors})

    async def cancel_all(self) -> None:
        tasks = list(self.operations.values())
        self.operations.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _id_of(message: dict[str, Any]) -> str:
    operation_id = message.get("id")
    if not isinstance(operation_id, str) or not operation_id:
        raise _Close(4400, f"Invalid message received: {message['type']} needs an id")
    return operation_id


def _authorization(payload: dict[str, Any]) -> str | None:
    """The bearer credentials of a ``connection_init`` payload, as an Authorization value."""
    for key in ("authorization", "Authorization"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value
    token = payload.get("token")
    if isinstance(token, str) and token:
        return f"Bearer {token}"
    return None
