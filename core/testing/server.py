"""A real uvicorn server on 127.0.0.1, in a background thread, for tests and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from qiao.core.web.graphql_ws import MAX_MESSAGE_BYTES

#: How long a stopping server waits for its open connections and tasks.
SHUTDOWN_TIMEOUT = 5.0


class _Server(uvicorn.Server):
    """uvicorn's server, woken as soon as it is told to stop.

    uvicorn notices ``should_exit`` at its next tick, up to 0.1 s later, and then
    pauses another 0.1 s; the tests stop a server after every test that serves, so
    those waits add up.
    """

    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown without its fixed 0.1 s pause before waiting for connections.

        The connections (a test's client keeps one alive) are asked to close and
        awaited in short steps; what is still open after the deadline is cancelled.
        """
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        deadline = time.monotonic() + SHUTDOWN_TIMEOUT
        while self.server_state.connections or self.server_state.tasks:
            if time.monotonic() > deadline:
                for task in self.server_state.tasks:
                    task.cancel(msg="the test server is stopping")
                break
            await asyncio.sleep(0.002)
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()

    def exit(self) -> None:
        """Stop serving: from any thread, noticed at once."""
        self.should_exit = True
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop ended already
                self._loop.call_soon_threadsafe(self._wake.set)


class LiveServer:
    """Serves an ASGI app on a free loopback port until :meth:`stop`.

    Use as a context manager; ``url`` is the base address, e.g. ``http://127.0.0.1:53211``.
    """

    def __init__(self, app: Any, *, startup_timeout: float = 30.0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            ws="websockets-sansio",  # as `qiao serve`: GraphQL subscriptions
            ws_max_size=MAX_MESSAGE_BYTES,
            lifespan="on",
            log_level="warning",
        )
        self._server = _Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self._startup_timeout = startup_timeout

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the test server stopped during start-up; see the log above")
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start in time")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.exit()
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
