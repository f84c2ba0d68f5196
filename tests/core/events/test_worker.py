"""Workers fan events out to handlers, retry with back-off, keep every attempt."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from qiao.core.errors import ConfigurationError
from qiao.core.events import queue
from qiao.core.events.model import EventHandler, GiveUp, RetryLater
from qiao.core.hookmarkers import hookimpl
from qiao.core.runtime import Runtime
from qiao.core.testing.clock import TestClock
from qiao.core.testing.worker import TEST_SETTINGS, drain
from qiao.core.worker import Worker, WorkerSettings

from .support import Recorder, attempts, deliveries, delivery_for

pytestmark = pytest.mark.storage


def test_each_interested_handler_gets_one_delivery_per_event(
    runtime: Runtime,
    recorder: Recorder,
    make_worker: Callable[..., Worker],
    write: Callable[..., Any],
) -> None:
    drain(make_worker())  # the seeded administrator's event
    recorder.seen.clear()
    account = write(lambda r, ctx: r.create(ctx, "account", {"name": "A", "employees": 5}))
    write(lambda r, ctx: r.update(ctx, "account", account["id"], {"employees": 500}))
    write(lambda r, ctx: r.create(ctx, "contact", {"name": "张三"}))
    drain(make_worker())

    def ops(handler: str) -> list[tuple[str, str]]:
        return sorted((d.event.entity, d.event.operation) for d in recorder.by(handler))

    assert ops("all") == [("account", "create"), ("account", "update"), ("contact", "create")]
    assert ops("accounts") == [("account", "create"), ("account", "update")]
    assert ops("updates") == [("account", "update")]
    assert ops("big_accounts") == [("account", "update")]
    assert recorder.by("big_accounts")[0].event.changes["employees"] == [5, 500]
    assert ops("timers") == []
    rows = deliveries(runtime)
    assert all(r["status"] == queue.DONE and r["locked_by"] is None for r in rows)
    assert {d.id for d in recorder.seen} <= {r["id"] for r in rows}
    first = recorder.seen[0]
    (attempt,) = attempts(runtime, first.id)
    assert (attempt["number"], attempt["outcome"], attempt["error"]) == (1, "ok", None)
    assert first.attempt == 1


def test_a_failing_delivery_backs_off_keeps_each_attempt_and_goes_dead(
    runtime: Runtime,
    recorder: Recorder,
    clock: TestClock,
    make_worker: Callable[..., Worker],
    write: Callable[..., Any],
) -> None:
    worker = make_worker()
    drain(worker)
    recorder.fail["accounts"] = [RuntimeError(f"ERP down ({i})") for i in range(10)]
    write(lambda r, ctx: r.create(ctx, "account", {"name": "A"}))
    drain(worker)
    row = delivery_for(runtime, "accounts")
    assert row["status"] == queue.PENDING
    # equal jitter: the first retry waits between half and all of backoff_base
    wait = (row["due_at"] - clock()).total_seconds()
    assert TEST_SETTINGS.backoff_base / 2 <= wait <= TEST_SETTINGS.backoff_base
    clock.advance(seconds=wait - 0.5)
    drain(worker)
    assert len(recorder.by("accounts")) == 1, "retried before its time"
    clock.advance(seconds=1)
    drain(worker)
    assert len(recorder.by("accounts")) == 2
    row = delivery_for(runtime, "accounts")
    second_wait = (row["due_at"] - clock()).total_seconds()
    assert TEST_SETTINGS.backoff_base <= second_wait <= 2 * TEST_SETTINGS.backoff_base
    clock.advance(seconds=second_wait)
    drain(worker)
    row = delivery_for(runtime, "accounts")
    assert row["status"] == queue.DEAD
    assert "ERP down (2)" in row["last_error"] and "dead letter" in row["last_error"]
    tries = attempts(runtime, row["id"])
    assert [(a["number"], a["outcome"]) for a in tries] == [
        (1, "error"),
        (2, "error"),
        (3, "error"),
    ]
    assert [a["error"] for a in tries][:2] == [
        "RuntimeError: ERP down (0)",
        "RuntimeError: ERP down (1)",
    ]
    assert len({d.id for d in recorder.by("accounts")}) == 1, "the id is stable across retries"

    with runtime.db.write() as conn:
        assert queue.retry(conn, None, clock()) == 1
    drain(worker)
    row = delivery_for(runtime, "accounts")
    assert row["status"] == queue.PENDING, "a replayed delivery gets a fresh budget"
    assert [a["number"] for a in attempts(runtime, row["id"])] == [1, 2, 3, 4]
    recorder.fail.clear()
    with runtime.db.write() as conn:
        assert queue.retry(conn, [row["id"]], clock()) == 1
    drain(worker)
    row = delivery_for(runtime, "accounts")
    assert row["status"] == queue.DONE


def test_retry_later_sets_the_time_and_give_up_goes_dead_at_once(
    runtime: Runtime,
    recorder: Recorder,
    clock: TestClock,
    make_worker: Callable[..., Worker],
    write: Callable[..., Any],
) -> None:
    worker = make_worker()
    drain(worker)
    recorder.fail["accounts"] = [RetryLater("busy", 42)]
    recorder.fail["all"] = [GiveUp("not for us")]
    write(lambda r, ctx: r.create(ctx, "account", {"name": "A"}))
    drain(worker)
    rows = {r["handler"]: r for r in deliveries(runtime) if r["status"] != queue.DONE}
    assert (rows["accounts"]["due_at"] - clock()).total_seconds() == 42
    assert rows["accounts"]["last_error"] == "busy"
    assert rows["all"]["status"] == queue.DEAD
    assert rows["all"]["last_error"] == "gave up: not for us"
    assert rows["all"]["attempts"] == 1


def test_a_faulty_filter_parks_its_delivery_without_blocking_others(
    runtime: Runtime,
    recorder: Recorder,
    make_worker: Callable[..., Worker],
    write: Callable[..., Any],
) -> None:
    drain(make_worker())
    broken = EventHandler("broken", recorder.handle, when=lambda e: e.changes["nope"] > 1)
    plugin = _HandlersPlugin([broken])
    rt = Runtime(runtime.config, extra_plugins=[recorder, plugin], clock=runtime.records.clock)
    try:
        with rt.records.transaction(*_system()) as ctx:
            rt.records.create(ctx, "account", {"name": "B"})
        worker = Worker(rt, TEST_SETTINGS)
        try:
            drain(worker)
        finally:
            worker.close()
    finally:
        rt.close()
    dead = [r for r in deliveries(runtime) if r["handler"] == "broken"]
    assert len(dead) == 1 and dead[0]["status"] == queue.DEAD
    assert dead[0]["last_error"].startswith("the handler's filter failed: KeyError")
    assert any(d.handler == "all" and d.event.entity == "account" for d in recorder.seen)


def test_several_workers_never_run_a_delivery_twice(
    runtime: Runtime,
    recorder: Recorder,
    make_worker: Callable[..., Worker],
    write: Callable[..., Any],
) -> None:
    drain(make_worker())
    recorder.seen.clear()

    def many(records: Any, ctx: Any) -> None:
        for i in range(60):
            records.create(ctx, "account", {"name": f"A{i}"})

    write(many)
    small = WorkerSettings(batch_size=7, poll_interval=0.01)
    workers = [make_worker(small, f"w{i}") for i in range(4)]
    errors: list[BaseException] = []

    def run(worker: Worker) -> None:
        try:
            drain(worker, rounds=500)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    ids = [d.id for d in recorder.seen]
    assert len(ids) == len(set(ids)) == 60 * 2  # handlers "all" and "accounts"
    assert all(r["status"] == queue.DONE for r in deliveries(runtime))
    for d in recorder.seen:
        assert [a["outcome"] for a in attempts(runtime, d.id)] == ["ok"]


def test_a_lease_that_expires_is_claimed_again_and_the_cut_attempt_recorded(
    runtime: Runtime,
    recorder: Recorder,
    clock: TestClock,
    make_worker: Callable[..., Worker],
    write: Callable[..., Any],
) -> None:
    drain(make_worker())
    recorder.seen.clear()
    crashed = make_worker(name="crashed")
    survivor = make_worker(name="survivor")
    write(lambda r, ctx: r.create(ctx, "contact", {"name": "王五"}))
    with runtime.db.write() as conn:
        queue.dispatch(conn, list(crashed.handlers.values()), clock(), 10)
        # claimed, then the process died: no outcome is ever recorded
        held = queue.claim(conn, crashed.name, clock(), _lease(TEST_SETTINGS), 10)
    assert held, "the crashed worker held deliveries"
    drain(survivor)
    assert not recorder.by("all"), "a live lease is respected"
    clock.advance(seconds=TEST_SETTINGS.lease_seconds + 1)
    drain(survivor)
    assert {d.id for d in recorder.by("all")} == {c.id for c in held if c.handler == "all"}
    for item in held:
        tries = attempts(runtime, item.id)
        assert [(a["worker"], a["outcome"]) for a in tries] == [
            ("crashed", "interrupted"),
            ("survivor", "ok"),
        ]
        assert tries[0]["error"] == queue.INTERRUPTED


def test_a_stopped_worker_gives_back_what_it_did_not_start(
    runtime: Runtime,
    recorder: Recorder,
    make_worker: Callable[..., Worker],
    write: Callable[..., Any],
) -> None:
    drain(make_worker())
    recorder.seen.clear()
    write(lambda r, ctx: r.create(ctx, "contact", {"name": "赵六"}))
    stop = threading.Event()
    stop.set()
    worker = make_worker()
    worker.run_once(stop)
    assert recorder.seen == []
    rows = [r for r in deliveries(runtime) if r["status"] == queue.PENDING]
    assert rows and all(r["locked_by"] is None and r["attempts"] == 0 for r in rows)
    assert all(attempts(runtime, r["id"]) == [] for r in rows)
    drain(worker)
    assert len(recorder.seen) == len(rows)


def test_handler_names_are_unique_and_webhook_names_reserved(
    runtime: Runtime, recorder: Recorder
) -> None:
    for handlers, message in [
        ([EventHandler("all", recorder.handle)], "declared by both 'recorder' and"),
        ([EventHandler("webhook:x", recorder.handle)], "reserved"),
    ]:
        rt = Runtime(runtime.config, extra_plugins=[recorder, _HandlersPlugin(handlers)])
        try:
            with pytest.raises(ConfigurationError, match=message):
                Worker(rt)
        finally:
            rt.close()


class _HandlersPlugin:
    __name__ = "extra_handlers"

    def __init__(self, handlers: list[EventHandler]) -> None:
        self.handlers = handlers

    @hookimpl
    def qiao_event_handlers(self) -> list[EventHandler]:
        return self.handlers


def _system() -> tuple[Any, Any]:
    from qiao.core.records.context import Actor, Source

    return Actor.system(), Source.SYSTEM


def _lease(settings: WorkerSettings) -> Any:
    import datetime as dt

    return dt.timedelta(seconds=settings.lease_seconds)
