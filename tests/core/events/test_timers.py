"""Timers are rows: they fire once when due, can be moved or cancelled, survive restarts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from qiao.core.config import Config
from qiao.core.events import timers
from qiao.core.redaction import Sensitive
from qiao.core.runtime import Runtime
from qiao.core.testing.clock import TestClock
from qiao.core.testing.worker import TEST_SETTINGS, drain
from qiao.core.worker import Worker

from .support import Recorder

pytestmark = pytest.mark.storage


def test_a_timer_fires_once_when_due_as_an_event_with_its_payload(
    runtime: Runtime,
    recorder: Recorder,
    clock: TestClock,
    make_worker: Callable[..., Worker],
    write: Callable[..., Any],
) -> None:
    worker = make_worker()
    ticket = write(lambda r, ctx: r.create(ctx, "ticket", {"subject": "主轴异响"}))
    due = clock() + dt.timedelta(hours=2)
    write(
        lambda r, ctx: timers.schedule(
            ctx.connection, "ticket", ticket["id"], "escalate", due, {"to": "supervisor"}
        )
    )
    with runtime.db.read() as conn:
        assert timers.pending(conn, "ticket", ticket["id"]) == {"escalate": due}
    clock.advance(seconds=2 * 3600 - 1)
    drain(worker)
    assert recorder.by("timers") == []
    clock.advance(seconds=1)
    drain(worker)
    (fired,) = recorder.by("timers")
    event = fired.event
    assert (event.entity, event.record_id, event.operation) == ("ticket", ticket["id"], "timer")
    assert (event.timer, event.payload, event.actor) == ("escalate", {"to": "supervisor"}, "system")
    with runtime.db.read() as conn:
        assert timers.pending(conn, "ticket", ticket["id"]) == {}
    clock.advance(seconds=3600)
    drain(worker)
    assert len(recorder.by("timers")) == 1


def test_scheduling_again_moves_a_timer_and_cancel_removes_it(
    runtime: Runtime,
    recorder: Recorder,
    clock: TestClock,
    make_worker: Callable[..., Worker],
    write: Callable[..., Any],
) -> None:
    worker = make_worker()
    ticket = write(lambda r, ctx: r.create(ctx, "ticket", {"subject": "S"}))
    tid = ticket["id"]
    at = clock()
    write(lambda r, ctx: timers.schedule(ctx.connection, "ticket", tid, "sla", at + _m(30)))
    write(lambda r, ctx: timers.schedule(ctx.connection, "ticket", tid, "sla", at + _m(60)))
    write(lambda r, ctx: timers.schedule(ctx.connection, "ticket", tid, "nudge", at + _m(5)))
    assert write(lambda r, ctx: timers.cancel(ctx.connection, "ticket", tid, "nudge")) is True
    assert write(lambda r, ctx: timers.cancel(ctx.connection, "ticket", tid, "nudge")) is False
    clock.advance(seconds=45 * 60)
    drain(worker)
    assert recorder.by("timers") == []
    clock.advance(seconds=15 * 60)
    drain(worker)
    assert [d.event.timer for d in recorder.by("timers")] == ["sla"]
    with pytest.raises(ValueError, match="time zone"):
        write(
            lambda r, ctx: timers.schedule(
                ctx.connection, "ticket", tid, "naive", dt.datetime(2026, 3, 2, 12, 0)
            )
        )


def test_scheduling_a_batch_moves_the_timers_records_had_and_sets_the_others(
    runtime: Runtime, clock: TestClock, write: Callable[..., Any]
) -> None:
    first = write(lambda r, ctx: r.create(ctx, "ticket", {"subject": "S1"}))
    second = write(lambda r, ctx: r.create(ctx, "ticket", {"subject": "S2"}))
    at = clock()
    write(lambda r, ctx: timers.schedule(ctx.connection, "ticket", first["id"], "sla", at))
    batch = [(first["id"], at + _m(30), {"n": 1}), (second["id"], at + _m(40), None)]
    ids = write(lambda r, ctx: timers.schedule_many(ctx.connection, "ticket", "sla", batch))
    assert len(set(ids)) == 2
    with runtime.db.read() as conn:
        pending = [timers.pending(conn, "ticket", t["id"]) for t in (first, second)]
    assert pending == [{"sla": at + _m(30)}, {"sla": at + _m(40)}], "one timer each"


def test_timers_of_records_just_created_are_inserted_and_a_clash_refused(
    runtime: Runtime, clock: TestClock, write: Callable[..., Any]
) -> None:
    at = clock()

    def create_with_timers(r: Any, ctx: Any) -> list[str]:
        tickets = r.create_many(ctx, "ticket", [{"subject": "S1"}, {"subject": "S2"}]).records
        batch = [(t["id"], at + _m(30), None) for t in tickets]
        timers.schedule_many(ctx.connection, "ticket", "sla", batch, created=True)
        return [t["id"] for t in tickets]

    ids = write(create_with_timers)
    with runtime.db.read() as conn:
        assert [timers.pending(conn, "ticket", i) for i in ids] == [{"sla": at + _m(30)}] * 2
    again = [(ids[0], at + _m(50), None)]
    with pytest.raises(IntegrityError):
        write(
            lambda r, ctx: timers.schedule_many(
                ctx.connection, "ticket", "sla", again, created=True
            )
        )
    with runtime.db.read() as conn:
        assert timers.pending(conn, "ticket", ids[0]) == {"sla": at + _m(30)}


def test_a_restart_loses_no_timer(
    qiao_config: Config,
    recorder: Recorder,
    clock: TestClock,
    write: Callable[..., Any],
    runtime: Runtime,
) -> None:
    ticket = write(lambda r, ctx: r.create(ctx, "ticket", {"subject": "S"}))
    write(
        lambda r, ctx: timers.schedule(
            ctx.connection, "ticket", ticket["id"], "sla", clock() + _m(10)
        )
    )
    runtime.close()  # the process that scheduled it is gone
    clock.advance(seconds=11 * 60)
    restarted = Runtime(qiao_config, extra_plugins=[recorder], clock=clock)
    worker = Worker(restarted, TEST_SETTINGS)
    try:
        drain(worker)
    finally:
        worker.close()
        restarted.close()
    assert [(d.event.record_id, d.event.timer) for d in recorder.by("timers")] == [
        (ticket["id"], "sla")
    ]


def _m(minutes: int) -> dt.timedelta:
    return dt.timedelta(minutes=minutes)


def test_a_payload_holding_an_encrypted_fields_value_is_refused(
    runtime: Runtime, write: Callable[..., Any]
) -> None:
    ticket = write(lambda r, ctx: r.create(ctx, "ticket", {"subject": "主轴异响"}))
    due = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="stored in clear"):
        write(
            lambda r, ctx: timers.schedule(
                ctx.connection, "ticket", ticket["id"], "call", due, {"to": Sensitive("138")}
            )
        )
    with runtime.db.read() as conn:
        assert timers.pending(conn, "ticket", ticket["id"]) == {}
