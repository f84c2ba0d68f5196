"""What every fake vendor shares: a request log, scripted failures, a clock, a live server."""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Self

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qiao.core.testing.server import LiveServer


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    raw_query: str = ""


class FakeVendor:
    """Base of the fakes: records requests and plays scripted answers before real ones.

    ``fail(path, answer, times)`` makes the next ``times`` requests to ``path`` get
    ``answer`` (a JSON-able dict, or a Response) instead of the normal handling.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.requests: list[Seen] = []
        self._scripted: dict[str, deque[Any]] = defaultdict(deque)
        self.lock = threading.Lock()
        self.url = ""

    def fail(self, path: str, answer: Any, times: int = 1) -> None:
        with self.lock:
            self._scripted[path].extend([answer] * times)

    def down(self, *paths: str) -> None:
        """Answer 503 on ``paths`` until :meth:`up`, as a vendor in maintenance does."""
        for path in paths:
            self.fail(path, Response("Service Unavailable", status_code=503), times=1000)

    def up(self) -> None:
        with self.lock:
            self._scripted.clear()

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    async def seen(self, request: Request) -> tuple[Seen, Response | None]:
        body = await request.body()
        entry = Seen(
            request.method,
            request.url.path,
            dict(request.query_params),
            {k.lower(): v for k, v in request.headers.items()},
            body,
            request.url.query,
        )
        with self.lock:
            self.requests.append(entry)
            queue = self._scripted.get(entry.path)
            answer = queue.popleft() if queue else None
        if answer is None:
            return entry, None
        if isinstance(answer, Response):
            return entry, answer
        return entry, JSONResponse(answer)

    def routes(self) -> dict[tuple[str, str], Callable[[Seen], Response]]:
        """``(method, path) -> handler`` of the vendor's endpoints."""
        raise NotImplementedError

    def other(self, seen: Seen) -> Response:
        """Requests no route matched (paths with keys in them, for instance)."""
        return JSONResponse({"error": f"no {seen.method} {seen.path}"}, status_code=404)

    def app(self) -> Starlette:
        routes = self.routes()

        async def dispatch(request: Request) -> Response:
            entry, scripted = await self.seen(request)
            if scripted is not None:
                return scripted
            handler = routes.get((entry.method, entry.path), self.other)
            with self.lock:
                return handler(entry)

        methods = ["GET", "POST", "PATCH", "PUT", "DELETE", "MERGE"]
        return Starlette(routes=[Route("/{path:path}", dispatch, methods=methods)])

    @contextmanager
    def serve(self) -> Iterator[Self]:
        with LiveServer(self.app()) as server:
            self.url = server.url
            yield self
