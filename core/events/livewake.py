"""Waking subscriptions when record changes commit, in this process and in others.

Every record write calls :func:`announce` inside its transaction. Once it
commits, the :class:`ChangeHub` of each app serving the same database in this
process is woken at once (:func:`~qiao.core.storage.database.after_commit`),
and on PostgreSQL a ``NOTIFY`` on :data:`CHANNEL` (delivered only if the
transaction commits) wakes the hubs of the other server processes, each of
which LISTENs through :class:`~qiao.core.events.wake.Listener`, the workers'
waker, on its own connection. A wake-up carries nothing: the hub then reads
the feed's new entries once for all its subscriptions (:class:`ChangeHub`),
and each subscription takes what follows its own position
(:mod:`qiao.core.graphql.live`), so a lost or merged notification costs
latency, never a change. The hub also looks every ``fallback`` seconds, for
what no notification announced (a write by another process on SQLite, a
notification lost while the listener reconnected).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import itertools
import logging
import threading
import weakref
from collections.abc import Iterator

from sqlalchemy import Connection, Engine

from qiao.core.errors import ConfigurationError
from qiao.core.events import wake
from qiao.core.records import changes as feed
from qiao.core.records.changes import Change
from qiao.core.storage.database import (
    Database,
    after_commit,
    kept_until_commit,
    notify_at_commit,
)

log = logging.getLogger("qiao.events.livewake")
CHANNEL = "qiao_changes"
#: Seconds the hub waits before it looks at the feed unasked.
FALLBACK_SECONDS = 5.0
#: Changes the hub keeps for its subscriptions (all entities).
WINDOW = 5_000
#: Changes the hub reads in one statement.
_FETCH = 1_000
_ANNOUNCED = "qiao_changes_announced"
#: Hubs of this process by the engine they serve.
_HUBS: weakref.WeakKeyDictionary[Engine, weakref.WeakSet[ChangeHub]] = weakref.WeakKeyDictionary()


def announce(conn: Connection) -> None:
    """Wake subscriptions once ``conn``'s write transaction commits (once per transaction).

    The wake is kept with the transaction until its commit: a write whose savepoint
    was rolled back (a failed automation rule) announces nothing, and a later write
    of the same transaction still announces its own change.
    """
    engines = kept_until_commit(
        conn, _ANNOUNCED, lambda kept: after_commit(conn, lambda: _wake_local(kept[0]))
    )
    if engines is not None and not engines:
        engines.append(conn.engine)
    notify_at_commit(conn, CHANNEL)


def _wake_local(engine: Engine) -> None:
    for hub in list(_HUBS.get(engine, ())):
        hub.poke()


class ChangeHub:
    """One app's view of the change feed's newest part, and the wake-up of its subscriptions.

    On each wake-up (and every ``fallback`` seconds) the hub reads the feed's new
    entries once, for every subscription of the process, into a window of the
    last :data:`WINDOW` changes, and only then wakes the subscriptions, which
    take their entity's changes after their own position from the window
    (:meth:`recent`); one behind the window (a replay from an old cursor) reads
    the feed itself. The window holds every change after its start, since the
    feed is gap-free and read on from the last entry the hub saw.
    """

    def __init__(self, db: Database, fallback: float = FALLBACK_SECONDS) -> None:
        self.db = db
        self.fallback = fallback
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event = asyncio.Event()
        self._trigger = asyncio.Event()
        self._stop = wake.Stop()
        self._thread: threading.Thread | None = None
        self._follower: asyncio.Task[None] | None = None
        #: The window: changes after sequence ``_start``, in order, up to ``_end``.
        self._recent: list[Change] = []
        self._start: int | None = None  # None: no window yet (read at the first wake-up)
        self._end = 0
        #: Running subscriptions: without any, the hub reads nothing.
        self._followers = 0

    async def start(self) -> None:
        """Begin following the feed and listening (from the app's event loop)."""
        self._loop = asyncio.get_running_loop()
        _HUBS.setdefault(self.db.engine, weakref.WeakSet()).add(self)
        self._follower = asyncio.create_task(self._follow())
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

    async def stop(self) -> None:
        self._stop.set()
        hubs = _HUBS.get(self.db.engine)
        if hubs is not None:
            hubs.discard(self)
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)

    def poke(self) -> None:
        """Say that a change may have committed (from any thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._trigger.set)

    async def _follow(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._trigger.wait(), self.fallback)
            self._trigger.clear()
            if not self._followers:  # nobody to tell: forget the window, read nothing
                self._start, self._recent = None, []
                continue
            try:
                await self._refresh()
            except Exception as exc:  # the database away: subscriptions wait for it
                log.warning("reading the change feed failed: %s", exc)
            event, self._event = self._event, asyncio.Event()
            event.set()

    async def _refresh(self) -> None:
        if self._start is None:  # first, or the feed was unavailable (no key, not migrated)
            try:
                head = await asyncio.to_thread(self.db.run_read, lambda c: feed.bounds(c).head)
            except ConfigurationError:
                return  # no audit key: subscriptions are refused with the reason
            self._start = self._end = head
            return
        while True:
            new = await asyncio.to_thread(
                self.db.run_read,
                functools.partial(feed.changes_since, after=self._end, limit=_FETCH),
            )
            if new:
                self._recent.extend(new)
                self._end = new[-1].sequence
            if len(self._recent) > 2 * WINDOW:  # trimmed in steps, not at every change
                self._start = self._recent[-WINDOW - 1].sequence
                del self._recent[: len(self._recent) - WINDOW]
            if len(new) < _FETCH:
                return

    @contextlib.contextmanager
    def following(self) -> Iterator[None]:
        """Count a running subscription for as long as the block runs."""
        self._followers += 1
        self._trigger.set()  # start the window now
        try:
            yield
        finally:
            self._followers -= 1

    def recent(self, after: int, entity: str, limit: int) -> list[Change] | None:
        """``entity``'s changes after sequence ``after`` the hub has read, at most ``limit``;
        None when ``after`` is before the window (read the feed instead)."""
        if self._start is None or after < self._start:
            return None
        first = bisect.bisect_right(self._recent, after, key=lambda c: c.sequence)
        found: list[Change] = []
        for change in itertools.islice(self._recent, first, None):
            if change.entity == entity:
                found.append(change)
                if len(found) == limit:
                    break
        return found

    def ticket(self) -> asyncio.Event:
        """Take before :meth:`recent`, then :meth:`wait` on it: a change the hub reads
        after that is then never slept through."""
        return self._event

    async def wait(self, ticket: asyncio.Event) -> None:
        """Until the hub read the feed again since ``ticket`` was taken, or ``fallback``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ticket.wait(), self.fallback)
