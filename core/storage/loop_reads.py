"""Single-statement reads awaited in a server's event loop, on PostgreSQL.

Everything else in Qiao reaches the database synchronously, in a thread
(docs/decisions.md, "Sync database access"). A GraphQL query whose compiled
statement, permissions and schema are all at hand is the exception: its work is
one statement, and handing it to a thread and back, through SQLAlchemy's
connection and result set-up, cost more CPU than the statement's own round
trip (docs/benchmarks.md). Such a read awaits a connection of this pool instead.

The connections are opened with the engine's own arguments (host, credentials,
``timezone=UTC`` and the URL's ``options``, SQLAlchemy's type adapters), in
autocommit, so the statement runs exactly as :meth:`Database.run_read` runs it.
As there, a connection is handed out without a "ping": one the server has ended
is noticed from its socket, and a read that meets a dead connection anyway is
sent once more on a new one.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from qiao.core.storage.database import Database, server_closed

log = logging.getLogger("qiao.storage")
#: How long a read waits for a connection before it fails: every connection busy for that
#: long, or the database unreachable (the pool keeps trying to connect in the background).
WAIT_SECONDS = 5.0


class LoopReads:
    """A pool of PostgreSQL connections for reads awaited in one event loop."""

    def __init__(self, db: Database, *, wait: float = WAIT_SECONDS) -> None:
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            kwargs={**db.driver_arguments(), "autocommit": True},
            min_size=1,
            max_size=db.pool.reads,
            open=False,
            timeout=wait,
            name="qiao-loop-reads",
        )
        self._open = False

    @classmethod
    def of(cls, db: Database, *, wait: float = WAIT_SECONDS) -> LoopReads | None:
        """The pool for ``db``; None on SQLite, or where ``[database] read_pool_size`` is 0."""
        if db.dialect != "postgresql" or db.pool.reads == 0:
            return None
        return cls(db, wait=wait)

    @property
    def ready(self) -> bool:
        """Whether reads may be awaited: the pool was opened and not yet closed."""
        return self._open

    @property
    def served(self) -> int:
        """How many reads the pool has handed a connection to since it opened."""
        return int(self._pool.get_stats().get("requests_num", 0))

    async def open(self) -> None:
        """Start the pool in the running loop (its connections belong to that loop)."""
        await self._pool.open(wait=False)
        self._open = True

    async def close(self) -> None:
        self._open = False
        await self._pool.close()

    async def first_row(
        self, sql: str, params: Any, *, prepare: bool = True
    ) -> tuple[Any, ...] | None:
        """The first row of ``sql`` (the driver's text and parameters).

        ``prepare=False`` runs it unprepared, planned for its own values
        (:func:`~qiao.core.storage.database.planned_per_run`).
        """
        failed = False
        # Each connection the server ended is replaced; after a restart that may be all.
        for _ in range(self._pool.max_size + 2):
            async with self._pool.connection() as conn:
                if server_closed(conn):
                    await conn.close()  # handed back closed: the pool opens a new one
                    continue
                try:
                    cursor = await conn.execute(sql, params, prepare=None if prepare else False)
                    return await cursor.fetchone()
                except psycopg.OperationalError:
                    if failed or not conn.broken:
                        raise
                    failed = True
            log.warning("a pooled database connection was dead; retrying on a new one")
        raise psycopg.OperationalError("no live database connection could be had for a read")
