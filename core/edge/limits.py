"""Request bodies bounded while they stream in, for every route.

A declared ``Content-Length`` over the limit is refused before a byte is read;
a body without one (chunked) is counted as it arrives and refused the moment
it passes the limit, so an oversized body never sits in memory.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qiao.core.edge.errors import error_response
from qiao.core.errors import BadUserInput, PayloadTooLarge


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` with 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the request body is larger than {self.max_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await error_response(BadUserInput("Content-Length is not a number"))(
                    scope, receive, send
                )
                return
            if length > self.max_bytes:
                await error_response(self._too_large(), {"Connection": "close"})(
                    scope, receive, send
                )
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, counted, send)
