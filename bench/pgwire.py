"""A counting proxy for the PostgreSQL wire protocol, for benchmarks.

It sits between a server under test and PostgreSQL on 127.0.0.1 and reads the
messages the client sends: a ``Query`` (simple protocol) or an ``Execute``
(extended protocol) is one SQL statement, and a ``Query`` or a ``Sync`` is one
round trip (the client then waits for ``ReadyForQuery``). Statement texts are
counted from ``Query`` and ``Parse``, and from ``Bind`` of a statement the
connection prepared earlier (psycopg prepares one it has run five times). Counting on the wire
sees what the server really sends, pings and BEGIN/ROLLBACK included, without
touching the server's code. Connections through it must not use TLS
(``sslmode=disable``), or the messages could not be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

_STARTUP_CODES = {80877103, 80877104}  # SSLRequest, GSSENCRequest: answered by one byte


@dataclass
class WireCounts:
    """What clients sent through the proxy since the last :meth:`CountingProxy.reset`."""

    statements: int = 0
    round_trips: int = 0
    texts: Counter[str] = field(default_factory=Counter)


class CountingProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream`` and counts statements and round trips."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._counts = WireCounts()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def counts(self) -> WireCounts:
        with self._lock:
            return WireCounts(
                self._counts.statements, self._counts.round_trips, Counter(self._counts.texts)
            )

    def reset(self) -> None:
        with self._lock:
            self._counts = WireCounts()

    def _note(self, kind: bytes, body: bytes, prepared: dict[bytes, str]) -> None:
        """Count one message of a connection whose prepared statements, by name, are
        ``prepared``: a statement run again is counted by its text when it is bound."""
        with self._lock:
            if kind == b"Q":
                self._counts.statements += 1
                self._counts.round_trips += 1
                self._counts.texts[_first_words(body)] += 1
            elif kind == b"E":
                self._counts.statements += 1
            elif kind == b"S":
                self._counts.round_trips += 1
            elif kind == b"P":
                name, _, rest = body.partition(b"\0")
                text = _first_words(rest)
                if name:
                    prepared[name] = text
                self._counts.texts["(parse) " + text] += 1
            elif kind == b"B":
                portal_end = body.index(b"\0")
                name = body[portal_end + 1 : body.index(b"\0", portal_end + 1)]
                if name in prepared:
                    self._counts.texts["(prepared) " + prepared[name]] += 1

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        back = asyncio.ensure_future(_pump(up_reader, writer))
        try:
            await self._forward(reader, up_writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            up_writer.close()
            await asyncio.wait([back], timeout=5)
            writer.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # start-up: untyped messages until the StartupMessage itself
            head = await reader.readexactly(8)
            length, code = struct.unpack("!II", head)
            writer.write(head + await reader.readexactly(length - 8))
            await writer.drain()
            if code not in _STARTUP_CODES:
                break
        prepared: dict[bytes, str] = {}
        while True:
            kind = await reader.readexactly(1)
            raw_length = await reader.readexactly(4)
            body = await reader.readexactly(struct.unpack("!I", raw_length)[0] - 4)
            self._note(kind, body, prepared)
            writer.write(kind + raw_length + body)
            await writer.drain()

    @contextlib.contextmanager
    def running(self) -> Iterator[CountingProxy]:
        self._thread.start()
        self._ready.wait(10)
        try:
            yield self
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


def _first_words(sql: bytes) -> str:
    text = sql.split(b"\0", 1)[0].decode(errors="replace")
    return " ".join(text.split()[:4])[:60]
