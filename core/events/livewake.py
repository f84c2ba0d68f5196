"""Waking subscriptions when record changes commit, in this process and in others.

Every record write calls :func:`announce` inside its transaction. Once it
commits, the :class:`ChangeHub` of each app serving the same database in this
process is woken at once (:func:`~qiao.core.storage.database.after_commit`),
and on PostgreSQL a ``NOTIFY`` on :data:`CHANNEL` (delivered only if the
transaction commits) wakes the hubs of the other server processes, each of
which LISTENs through :class:`~qiao.core.events.wake.Listener`, the workers'
waker, on its own connection. A wake-up carries nothing: each subscription
reads the change feed from its own position (:mod:`qiao.core.graphql.live`),
so a lost or merged notification costs latency, never a change. Waiters also
look every ``fallback`` seconds, for what no notification announced (a write
by another process on SQLite, a notification lost while the listener
reconnected).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref

from sqlalchemy import Connection, Engine

from qiao.core.events import wake
from qiao.core.storage.database import Database, after_commit

log = logging.getLogger("qiao.events.livewake")
CHANNEL = "qiao_changes"
#: Seconds a subscription waits before it looks at the feed unasked.
FALLBACK_SECONDS = 5.0
_ANNOUNCED = "qiao_changes_announced"
#: Hubs of this process by the engine they serve.
_HUBS: weakref.WeakKeyDictionary[Engine, weakref.WeakSet[ChangeHub]] = weakref.WeakKeyDictionary()


def announce(conn: Connection) -> None:
    """Wake subscriptions once ``conn``'s write transaction commits (once per transaction)."""
    transaction = conn.get_transaction()
    sent = conn.info.get(_ANNOUNCED)
    if transaction is not None and sent is not None and sent() is transaction:
        return
    if transaction is not None:
        conn.info[_ANNOUNCED] = weakref.ref(transaction)
    engine = conn.engine
    after_commit(conn, lambda: _wake_local(engine))
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"NOTIFY {CHANNEL}")


def _wake_local(engine: Engine) -> None:
    for hub in list(_HUBS.get(engine, ())):
        hub.poke()


class ChangeHub:
    """One app's wake-up for its subscriptions; lives from app start-up to shutdown."""

    def __init__(self, db: Database, fallback: float = FALLBACK_SECONDS) -> None:
        self.db = db
        self.fallback = fallback
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event = asyncio.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin listening (call from the app's event loop)."""
        self._loop = asyncio.get_running_loop()
        _HUBS.setdefault(self.db.engine, weakref.WeakSet()).add(self)
        if self.db.dialect == "postgresql":
            self._thread = threading.Thread(
                target=self._listen, name="qiao-change-listener", daemon=True
            )
            self._thread.start()

    def _listen(self) -> None:
        listener = wake.Listener(self.db, self.fallback, channel=CHANNEL)
        try:
            while not self._stop.is_set():
                if listener.wait(self.fallback, self._stop):
                    self.poke()
        finally:
            listener.close()

    def stop(self) -> None:
        self._stop.set()
        hubs = _HUBS.get(self.db.engine)
        if hubs is not None:
            hubs.discard(self)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def poke(self) -> None:
        """Wake every waiting subscription (from any thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def ticket(self) -> asyncio.Event:
        """Take before reading the feed, then :meth:`wait` on it: a change that commits
        after the read began is then never slept through."""
        return self._event

    async def wait(self, ticket: asyncio.Event) -> None:
        """Until a change may have committed since ``ticket`` was taken, or ``fallback``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ticket.wait(), self.fallback)
