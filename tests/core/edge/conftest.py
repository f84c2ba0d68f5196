"""A deployment with a plugin route that needs the caller, and one that fails unexpectedly."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qiao.core.edge.auth import actor_of
from qiao.core.hookmarkers import hookimpl
from qiao.core.testing.server import LiveServer


async def whoami(request: Request) -> Response:
    actor = actor_of(request)
    return JSONResponse({"username": actor.username, "scopes": request.auth.scopes})


async def broken(_: Request) -> Response:
    raise RuntimeError("a secret detail that must stay in the server log")


class EdgeProbe:
    """Routes a plugin would serve: one for signed-in callers, one with a bug."""

    __name__ = "edge_probe"

    @hookimpl
    def qiao_routes(self) -> list[Route]:
        return [
            Route("/probe/whoami", whoami, methods=["GET"]),
            Route("/probe/broken", broken, methods=["GET", "POST"]),
        ]


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return (EdgeProbe(),)


@pytest.fixture
def http(qiao_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=qiao_server.url, timeout=30) as client:
        yield client
