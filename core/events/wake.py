"""Waking idle workers: PostgreSQL's LISTEN/NOTIFY, with polling as the fallback.

A transaction that writes to the outbox (an event, a timer, a replay, or a
claim that leaves more deliveries than one batch)
calls :func:`notify`; PostgreSQL delivers the notification when, and only if,
the transaction commits, and delivers one however many times the transaction
asked. An idle worker waits on a :class:`Listener`: its own connection, which
LISTENs on the channel, so the worker starts its next pass as soon as a change
commits instead of at its next poll. It still polls, every
``WorkerSettings.listen_fallback`` seconds, for what no notification announces
(a lease that ran out, a notification lost while the listener reconnected).

SQLite has no notifications: a worker there waits ``poll_interval`` when idle
(:class:`Polling`), as it always has.

A listener waits on its connection's socket, which a :class:`threading.Event`
cannot interrupt: whoever stops it passes a :class:`Stop`, whose ``set`` also
wakes the socket wait, so a stopping server or worker does not wait out a slice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
import weakref
from typing import Any, Protocol

from sqlalchemy import Connection

from qiao.core.storage.database import Database, notify_at_commit

log = logging.getLogger("qiao.events.wake")
CHANNEL = "qiao_outbox"
#: Longest single wait on the listener's socket when its stop is a plain
#: :class:`threading.Event` (a :class:`Stop` wakes the wait at once).
_SLICE = 0.25


def notify(conn: Connection) -> None:
    """Wake listening workers when ``conn``'s transaction commits (once per transaction)."""
    notify_at_commit(conn, CHANNEL)


class Stop(threading.Event):
    """A stop request that also wakes a :class:`Listener` waiting on its socket.

    Setting it (from any thread, or a signal handler) writes a byte to a pipe
    the listener selects on beside its connection. The pipe is closed when the
    stop is collected, so callers use it as any event.
    """

    def __init__(self) -> None:
        super().__init__()
        self._readable, self._writable = os.pipe()
        os.set_blocking(self._writable, False)
        weakref.finalize(self, _close, self._readable, self._writable)

    def set(self) -> None:
        super().set()
        # A full pipe (set many times already) wakes its reader already.
        with contextlib.suppress(BlockingIOError):
            os.write(self._writable, b"\0")

    def fileno(self) -> int:
        """Readable once set: for :func:`select.select` beside a connection's socket."""
        return self._readable


def _close(*fds: int) -> None:
    for fd in fds:
        os.close(fd)


class Waiter(Protocol):
    """How an idle worker waits for work."""

    #: Seconds an idle worker waits when nothing tells it sooner.
    idle_seconds: float

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """Wait up to ``seconds``; True if told that work may be waiting."""
        ...

    def close(self) -> None: ...


class Polling:
    """Waits out the interval (SQLite, or PostgreSQL when the listener is unavailable)."""

    def __init__(self, interval: float) -> None:
        self.idle_seconds = interval

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        stop.wait(seconds)
        return False

    def close(self) -> None:
        pass


class Listener:
    """A dedicated PostgreSQL connection LISTENing on ``channel`` (:data:`CHANNEL` for workers).

    If the connection breaks, waits fall back to sleeping until it can be made
    again; a new connection reports "work may be waiting", since notifications
    sent in between were lost.
    """

    def __init__(
        self, db: Database, fallback: float, reconnect_pause: float = 1.0, channel: str = CHANNEL
    ) -> None:
        self.db = db
        self.channel = channel
        self.idle_seconds = fallback
        self.reconnect_pause = reconnect_pause
        self._conn: Any = None
        self._broken_at = 0.0
        self._connect()

    def _connect(self) -> bool:
        try:
            raw = self.db.engine.raw_connection()
            raw.detach()  # not the pool's any more: it stays LISTENing for this worker
            conn = raw.dbapi_connection
            assert conn is not None
            conn.autocommit = True
            conn.execute(f"LISTEN {self.channel}")
        except Exception as exc:
            log.warning("cannot LISTEN on %s (polling meanwhile): %s", self.channel, exc)
            self._broken_at = time.monotonic()
            return False
        self._conn = conn
        return True

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        deadline = time.monotonic() + seconds
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._conn is None:
                if time.monotonic() - self._broken_at >= self.reconnect_pause and self._connect():
                    return True
                stop.wait(min(remaining, self.reconnect_pause))
                continue
            try:
                # What the socket or libpq holds already, then a wait for more.
                if list(self._conn.notifies(timeout=0)):  # several commits, one pass
                    return True
                _readable(self._conn.fileno(), stop, remaining)
            except Exception as exc:
                log.warning("the %s listener's connection broke: %s", self.channel, exc)
                self._drop()
        return False

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._broken_at = time.monotonic()
        if conn is not None:
            try:
                conn.close()
            except Exception as exc:  # closing a broken connection may fail too
                log.debug("closing the broken listener connection: %s", exc)

    def close(self) -> None:
        self._drop()


def _readable(fd: int, stop: threading.Event, seconds: float) -> None:
    """Wait until ``fd`` is readable, ``stop`` is set or ``seconds`` pass.

    Only a :class:`Stop` can be selected on; a plain event is looked at every
    :data:`_SLICE` seconds.
    """
    if isinstance(stop, Stop):
        select.select([fd, stop], [], [], seconds)
    else:
        select.select([fd], [], [], min(seconds, _SLICE))


def waiter_for(db: Database, poll_interval: float, fallback: float) -> Waiter:
    """A :class:`Listener` on PostgreSQL, else :class:`Polling` every ``poll_interval``."""
    if db.dialect == "postgresql":
        return Listener(db, fallback)
    return Polling(poll_interval)
