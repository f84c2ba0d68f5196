"""A graphql-transport-ws client for tests, on the websockets library's sync client."""

from __future__ import annotations

import itertools
import json
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

PROTOCOL = "graphql-transport-ws"


class Socket:
    """One WebSocket to /graphql; ``init`` does the handshake, ``subscribe`` starts an operation."""

    def __init__(
        self,
        base_url: str,
        protocol: str = PROTOCOL,
        headers: dict[str, str] | None = None,
    ) -> None:
        url = base_url.replace("http://", "ws://") + "/graphql"
        opening = connect(
            url,
            subprotocols=[protocol],  # type: ignore[list-item]
            additional_headers=headers,
            open_timeout=10,
        )
        self.ws: ClientConnection = opening.__enter__()  # closed by close()
        self._ids = itertools.count(1)

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def receive(self, timeout: float = 10) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self.ws.recv(timeout=timeout))
        return message

    def init(self, token: str | None) -> dict[str, Any]:
        self.send({"type": "connection_init", "payload": {"token": token} if token else {}})
        return self.receive()

    def subscribe(
        self, query: str, variables: dict[str, Any] | None = None, id: str | None = None
    ) -> str:
        operation_id = id or str(next(self._ids))
        payload = {"query": query, "variables": variables or {}}
        self.send({"id": operation_id, "type": "subscribe", "payload": payload})
        return operation_id

    def subscribe_live(self, query: str, variables: dict[str, Any] | None = None) -> str:
        """Subscribe, and return once the server has started the subscription.

        The protocol acknowledges no ``subscribe``; a ping sent after it is answered
        only once the server has handled it, so a change written after this returns
        reaches the subscriber.
        """
        operation_id = self.subscribe(query, variables)
        self.send({"type": "ping"})
        answer = self.receive()
        assert answer == {"type": "pong"}, answer
        return operation_id

    def closed_with(self, timeout: float = 10) -> tuple[int, str]:
        """The close code and reason once the server closes (messages before it are skipped)."""
        try:
            while True:
                self.ws.recv(timeout=timeout)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, "the connection dropped without a close frame"
            return closed.rcvd.code, closed.rcvd.reason

    def quiet(self, seconds: float) -> bool:
        """Whether nothing arrives within ``seconds``."""
        try:
            self.ws.recv(timeout=seconds)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> Socket:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
