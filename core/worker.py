"""The events worker: fire timers, fan events out, run deliveries, record outcomes.

It stands above the runtime, whose plugins declare the handlers it runs; the
steps it takes (:mod:`qiao.core.events`) and the deliveries its handlers receive
stand below the hooks. One :class:`Worker` per thread; run as many as needed, in
one process or many (``qiao worker``, or the thread ``qiao serve`` starts).
Every step is a short transaction, so workers share nothing but the database.
Handlers run outside any transaction, after the change they react to has
committed.

An idle worker waits for the database to say that something changed
(LISTEN/NOTIFY on PostgreSQL, see :mod:`qiao.core.events.wake`), or polls
(SQLite).

The worker's own transactions (firing timers, fan-out, claims, outcomes)
commit without waiting for the disk (``Database.write(durable=False)``): a
server crash can only undo the latest of them, which the next pass redoes, as
it redoes any work whose outcome was not recorded.

Outcomes of a batch are written together (at the end of the batch, or every
``flush_seconds`` while it runs), which keeps the cost per delivery low. A
worker that dies before writing them leaves those deliveries leased; once the
lease passes they run again. That is the at-least-once guarantee, and why side
effects carry the delivery id as their idempotency key.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from qiao.core.errors import ConfigurationError, Contended
from qiao.core.events import queue, timers, wake
from qiao.core.events.model import Delivery, EventHandler, GiveUp, RetryLater
from qiao.core.events.webhooks import HANDLER_PREFIX, WebhookFailed, WebhookSender
from qiao.core.ids import new_id
from qiao.core.runtime import Runtime

log = logging.getLogger("qiao.events.worker")
#: Seconds a worker waits before trying a database it could not reach.
UNREACHABLE_PAUSE = 5.0
#: The shortest idle wait, so that a deadline just passing cannot make a worker spin.
MIN_WAIT = 0.01


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker paces itself; ``qiao worker`` takes each as an option.

    A batch must finish within its lease: keep ``batch_size`` times the slowest
    handler (``webhook_timeout`` for webhooks) below ``lease_seconds``. Past the
    lease a worker stops its batch and gives back what it did not start.
    """

    batch_size: int = 20
    #: Seconds an idle worker waits between passes where nothing wakes it (SQLite).
    poll_interval: float = 0.2
    #: On PostgreSQL, where commits wake workers, seconds between passes all the same.
    listen_fallback: float = 5.0
    lease_seconds: float = 300.0
    max_attempts: int = 8
    backoff_base: float = 10.0
    backoff_max: float = 3600.0
    flush_seconds: float = 1.0
    webhook_timeout: float = 10.0

    def backoff(self, attempt: int) -> float:
        """Seconds before retry number ``attempt``: exponential, capped, with jitter.

        Half the delay is fixed and half random ("equal jitter"), so retries of
        many deliveries that failed together spread out but still wait.
        """
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return delay / 2 + random.uniform(0, delay / 2)


def worker_name() -> str:
    """Host, process and a random suffix: unique among workers, readable in attempts."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{new_id()[-8:]}"


class Worker:
    """Processes the outbox of one runtime's database."""

    def __init__(
        self, runtime: Runtime, settings: WorkerSettings | None = None, name: str | None = None
    ) -> None:
        self.runtime = runtime
        self.settings = settings or WorkerSettings()
        self.name = name or worker_name()
        self.handlers = _handlers_by_name(runtime.plugins.event_handlers(runtime))
        self.sender = WebhookSender(self.settings.webhook_timeout)

    def close(self) -> None:
        self.sender.close()

    @property
    def clock(self) -> Callable[[], dt.datetime]:
        return self.runtime.records.clock

    def run_once(self, stop: threading.Event | None = None) -> int:
        """One pass: fire due timers, fan out new events, run one batch.

        One read statement first finds which steps have work, so an idle worker
        never takes the write lock (SQLite has only one). Fan-out and the claim
        of the batch share a transaction, so a new event reaches its handler
        after two commits of the worker's. Returns how much was done (timers,
        events and deliveries), 0 when idle.
        """
        limit = self.settings.batch_size
        now = self.clock()
        waiting = select(timers.due(now), queue.new_events_waiting(), queue.deliveries_due(now))
        timers_due, new_events, deliveries_due = self.runtime.db.run_read(
            lambda conn: conn.execute(waiting).one()
        )
        done = 0
        if timers_due:
            with self.runtime.db.write(durable=False) as conn:
                done += timers.fire_due(conn, self.clock(), limit)
        if not (deliveries_due or new_events or timers_due):
            return done
        with self.runtime.db.write(durable=False) as conn:
            if new_events or timers_due:
                done += queue.dispatch(conn, list(self.handlers.values()), self.clock(), limit)
            claimed_at = self.clock()
            claimed = queue.claim(conn, self.name, claimed_at, self._lease, limit)
            if len(claimed) == limit:
                wake.notify(conn)  # more may wait: other workers share them
        return done + self._run_batch(claimed, claimed_at, stop)

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set; when idle, wait to be woken (or poll)."""
        log.info("worker %s started", self.name)
        settings = self.settings
        waiter = wake.waiter_for(self.runtime.db, settings.poll_interval, settings.listen_fallback)
        try:
            while not stop.is_set():
                try:
                    if self.run_once(stop) > 0:
                        continue
                    seconds = self._idle_seconds(waiter)
                except Contended:
                    # A claim or an outcome met another worker's; the database logged it.
                    continue
                except OperationalError as exc:
                    # The database went away: say so, wait, and carry on once it is back.
                    log.error("worker %s cannot reach the database: %s", self.name, exc.orig or exc)
                    stop.wait(UNREACHABLE_PAUSE)
                    continue
                waiter.wait(seconds, stop)
        finally:
            waiter.close()
        log.info("worker %s stopped", self.name)

    def _idle_seconds(self, waiter: wake.Waiter) -> float:
        """How long to wait: the waiter's idle time, or less if a timer or retry is due sooner.

        Only a waiter woken by commits waits longer than ``poll_interval``; it
        must not sleep past a deadline that no commit will announce.
        """
        seconds = waiter.idle_seconds
        if seconds <= self.settings.poll_interval:
            return seconds
        with self.runtime.db.read() as conn:
            due = [d for d in (timers.next_due(conn), queue.next_due(conn)) if d is not None]
        if due:
            until = (min(due) - self.clock()).total_seconds()
            seconds = min(seconds, max(MIN_WAIT, until))
        return seconds

    @property
    def _lease(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.settings.lease_seconds)

    def _run_batch(
        self, claimed: list[queue.Claimed], claimed_at: dt.datetime, stop: threading.Event | None
    ) -> int:
        deadline = claimed_at + self._lease
        outcomes: list[queue.Outcome] = []
        flushed = time.monotonic()
        for i, item in enumerate(claimed):
            if (stop is not None and stop.is_set()) or self.clock() >= deadline:
                self._flush(outcomes)
                with self.runtime.db.write(durable=False) as conn:
                    queue.release(conn, self.name, claimed[i:])
                return i
            outcomes.append(self._run_one(item))
            if time.monotonic() - flushed >= self.settings.flush_seconds:
                self._flush(outcomes)
                outcomes = []
                flushed = time.monotonic()
        self._flush(outcomes)
        return len(claimed)

    def _flush(self, outcomes: list[queue.Outcome]) -> None:
        if outcomes:
            with self.runtime.db.write(durable=False) as conn:
                queue.complete(conn, self.name, outcomes, self.clock())

    def _run_one(self, item: queue.Claimed) -> queue.Outcome:
        delivery = Delivery(item.id, item.handler, item.attempt, item.event, self.runtime)
        try:
            self._handler(item.handler)(delivery)
        except GiveUp as exc:
            log.warning("delivery %s (%s) gave up: %s", item.id, item.handler, exc)
            return queue.Outcome(item, ok=False, error=f"gave up: {exc}")
        except RetryLater as exc:
            return self._failed(item, str(exc), exc.seconds)
        except Exception as exc:
            # A receiver's error status needs no traceback; a handler's exception does.
            trace = not isinstance(exc, WebhookFailed)
            log.warning("delivery %s (%s) failed: %s", item.id, item.handler, exc, exc_info=trace)
            return self._failed(item, f"{exc.__class__.__name__}: {exc}", None)
        return queue.Outcome(item, ok=True)

    def _failed(self, item: queue.Claimed, error: str, wait: float | None) -> queue.Outcome:
        """Retry after ``wait`` (or the back-off), unless the attempts are used up."""
        used = item.attempt - item.retry_base
        if used >= self.settings.max_attempts:
            error = f"{error} (attempt {used} of {self.settings.max_attempts}: dead letter)"
            return queue.Outcome(item, ok=False, error=error)
        delay = self.settings.backoff(used) if wait is None else wait
        retry_at = self.clock() + dt.timedelta(seconds=delay)
        return queue.Outcome(item, ok=False, error=error, retry_at=retry_at)

    def _handler(self, name: str) -> Callable[[Delivery], None]:
        if name.startswith(HANDLER_PREFIX):
            return self.sender
        handler = self.handlers.get(name)
        if handler is None:
            raise GiveUp(f"no handler named {name!r} is enabled (was its plugin disabled?)")
        return handler.handle


def _handlers_by_name(handlers: list[tuple[str, EventHandler]]) -> dict[str, EventHandler]:
    """Plugins' handlers by name; a name used twice, or a reserved one, is refused."""
    by_name: dict[str, EventHandler] = {}
    owners: dict[str, str] = {}
    for plugin, handler in handlers:
        if handler.name.startswith(HANDLER_PREFIX):
            raise ConfigurationError(
                f"plugin {plugin!r}: event handler names starting {HANDLER_PREFIX!r} are reserved"
            )
        if handler.name in by_name:
            raise ConfigurationError(
                f"event handler {handler.name!r} is declared by both "
                f"{owners[handler.name]!r} and {plugin!r}"
            )
        by_name[handler.name] = handler
        owners[handler.name] = plugin
    return by_name


class WorkerThread:
    """A worker in a background thread of another process (``qiao serve``)."""

    def __init__(self, runtime: Runtime, settings: WorkerSettings | None = None) -> None:
        self.worker = Worker(runtime, settings)
        self._stop = wake.Stop()
        self._thread = threading.Thread(
            target=self.worker.run, args=(self._stop,), name="qiao-worker", daemon=True
        )

    def start(self) -> WorkerThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self.worker.close()
