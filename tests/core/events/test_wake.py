"""Idle workers are woken by commits on PostgreSQL (LISTEN/NOTIFY) and poll on SQLite."""

from __future__ import annotations

import datetime as dt
import select
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from qiao.core.config import Config
from qiao.core.errors import Contended
from qiao.core.events import timers, wake
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.clock import TestClock
from qiao.core.testing.databases import terminate_sessions
from qiao.core.testing.statements import count_statements
from qiao.core.testing.worker import drain
from qiao.core.worker import Worker, WorkerSettings

from .support import Recorder

pytestmark = pytest.mark.storage

#: Polling so rare that only a notification (or a known deadline) can explain a quick pass.
LISTENING = WorkerSettings(batch_size=50, poll_interval=0.01, listen_fallback=60.0)


@contextmanager
def running(worker: Worker) -> Iterator[None]:
    stop = wake.Stop()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "the worker did not stop"


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        time.sleep(0.01)


def postgresql_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite workers poll")


def test_each_backend_gets_its_way_of_waiting(runtime: Runtime, qiao_backend: str) -> None:
    waiter = wake.waiter_for(runtime.db, poll_interval=0.2, fallback=5.0)
    try:
        expected = wake.Listener if qiao_backend == "postgresql" else wake.Polling
        assert isinstance(waiter, expected)
        assert waiter.idle_seconds == (5.0 if qiao_backend == "postgresql" else 0.2)
    finally:
        waiter.close()


def test_a_listener_is_told_at_commit_once_per_transaction(
    runtime: Runtime, qiao_backend: str, write: Callable[..., Any]
) -> None:
    postgresql_only(qiao_backend)
    listener = wake.Listener(runtime.db, fallback=60.0)
    never = threading.Event()
    try:
        with (
            count_statements(runtime.db.engine) as sent,
            runtime.records.transaction(Actor.system(), Source.SYSTEM) as ctx,
        ):
            for name in ("A", "B", "C"):
                runtime.records.create(ctx, "account", {"name": name})
            assert not listener.wait(0.3, never), "told before the commit"
        # The workers' channel and the subscriptions', in one statement before the commit.
        (notified,) = [s for s in sent.statements if "pg_notify" in s]
        assert notified.count("pg_notify") == 2
        assert listener.wait(5.0, never), "not told of the commit"
        assert not listener.wait(0.3, never), "three events, but one transaction: one wake-up"

        with (
            pytest.raises(RuntimeError),
            runtime.records.transaction(Actor.system(), Source.SYSTEM) as ctx,
        ):
            runtime.records.create(ctx, "account", {"name": "rolled back"})
            raise RuntimeError("undo")
        assert not listener.wait(0.3, never), "told of a rolled-back write"
    finally:
        listener.close()


def test_a_stop_wakes_a_listener_waiting_on_its_socket(
    runtime: Runtime, qiao_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    postgresql_only(qiao_backend)
    # Slices as long as the wait: only the stop's own socket can end it early.
    monkeypatch.setattr(wake, "_SLICE", 60.0)
    listener = wake.Listener(runtime.db, fallback=60.0)
    stop = wake.Stop()
    told: list[bool] = []
    waiting = threading.Thread(target=lambda: told.append(listener.wait(60.0, stop)))
    try:
        waiting.start()
        time.sleep(0.2)  # in its socket wait by now
        stop.set()
        waiting.join(10)
        assert not waiting.is_alive(), "the stop did not wake the listener"
        assert told == [False], "a stop is not a notification"
    finally:
        stop.set()
        waiting.join(10)
        listener.close()


def test_a_stop_set_again_and_again_stays_set_and_selectable() -> None:
    stop = wake.Stop()
    assert select.select([stop], [], [], 0)[0] == []
    for _ in range(100_000):  # more bytes than the socket pair holds
        stop.set()
    assert stop.is_set()
    assert select.select([stop], [], [], 0)[0] == [stop]


@pytest.fixture
def fresh_worker(
    recorder: Recorder, make_worker: Callable[..., Worker]
) -> Callable[[WorkerSettings], Worker]:
    """A worker of the given settings, once earlier events are handled and forgotten."""

    def make(settings: WorkerSettings) -> Worker:
        drain(make_worker())
        recorder.seen.clear()
        return make_worker(settings)

    return make


def test_an_idle_worker_acts_on_a_commit_without_waiting_for_its_poll(
    recorder: Recorder,
    qiao_backend: str,
    fresh_worker: Callable[[WorkerSettings], Worker],
    write: Callable[..., Any],
) -> None:
    postgresql_only(qiao_backend)
    with running(fresh_worker(LISTENING)):
        time.sleep(0.3)  # idle now, listening
        for i in range(3):
            write(lambda r, ctx, i=i: r.create(ctx, "account", {"name": f"Account {i}"}))
            wait_for(
                lambda i=i: len(recorder.by("accounts")) == i + 1,
                10,  # far below the 60 s fallback poll: the commit woke the worker
                f"account {i} delivered",
            )


def test_a_worker_whose_listener_connection_dies_carries_on(
    recorder: Recorder,
    qiao_backend: str,
    qiao_database_url: str,
    fresh_worker: Callable[[WorkerSettings], Worker],
    write: Callable[..., Any],
) -> None:
    postgresql_only(qiao_backend)
    with running(fresh_worker(LISTENING)):
        time.sleep(0.3)
        assert terminate_sessions(qiao_database_url) >= 1  # the listener's among them
        write(lambda r, ctx: r.create(ctx, "account", {"name": "While reconnecting"}))
        wait_for(lambda: len(recorder.by("accounts")) == 1, 15, "delivered after reconnecting")
        write(lambda r, ctx: r.create(ctx, "account", {"name": "Listening again"}))
        wait_for(lambda: len(recorder.by("accounts")) == 2, 10, "woken by the new listener")


def test_a_listening_worker_wakes_when_a_timer_falls_due(
    qiao_config: Config, qiao_clock: TestClock, recorder: Recorder, qiao_backend: str
) -> None:
    postgresql_only(qiao_backend)
    runtime = Runtime(qiao_config, extra_plugins=[recorder], clock=qiao_clock)  # a running clock
    worker = Worker(runtime, LISTENING)
    try:
        drain(worker)
        recorder.seen.clear()
        with running(worker):
            time.sleep(0.3)
            with runtime.db.write() as conn:
                due = qiao_clock() + dt.timedelta(seconds=1)
                timers.schedule(conn, "account", "0" * 8 + "-0000-7000-8000-" + "0" * 12, "t", due)
            wait_for(lambda: len(recorder.by("timers")) == 1, 15, "the timer fired")
            assert qiao_clock() >= due
    finally:
        worker.close()
        runtime.close()


def test_sqlite_workers_poll(
    recorder: Recorder,
    qiao_backend: str,
    fresh_worker: Callable[[WorkerSettings], Worker],
    write: Callable[..., Any],
) -> None:
    if qiao_backend != "sqlite":
        pytest.skip("the polling path of SQLite")
    with running(fresh_worker(WorkerSettings(poll_interval=0.05, listen_fallback=60.0))):
        write(lambda r, ctx: r.create(ctx, "account", {"name": "Polled"}))
        wait_for(lambda: len(recorder.by("accounts")) == 1, 10, "delivered by polling")


def test_a_worker_whose_pass_the_database_ends_carries_on_at_once(
    recorder: Recorder,
    fresh_worker: Callable[[WorkerSettings], Worker],
    write: Callable[..., Any],
) -> None:
    # A claim that deadlocks with another worker's is Contended: the next pass takes it up.
    worker = fresh_worker(WorkerSettings(batch_size=50, poll_interval=0.05, listen_fallback=0.05))
    passes = worker.run_once
    ended: list[bool] = []

    def contended_once(stop: threading.Event) -> int:
        if not ended:
            ended.append(True)
            raise Contended("ended by the database")
        return passes(stop)

    worker.run_once = contended_once  # type: ignore[method-assign]
    write(lambda r, ctx: r.create(ctx, "account", {"name": "After the deadlock"}))
    with running(worker):
        wait_for(lambda: len(recorder.by("accounts")) == 1, 10, "delivered after the deadlock")
    assert ended == [True]
