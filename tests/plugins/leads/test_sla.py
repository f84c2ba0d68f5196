"""A lead untouched past its first-touch deadline moves to someone else; owners are notified.

A runtime with a clock the test moves, and a worker driven pass by pass: the
timer set at assignment fires as a ``timer`` event, which the leads plugin's
handler turns into a reassignment, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from qiao.core.events import timers
from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record
from qiao.core.runtime import Runtime
from qiao.core.storage.system import event as event_table
from qiao.core.testing.clock import TestClock
from qiao.core.testing.worker import drain
from qiao.core.worker import Worker
from qiao.plugins.leads import sla

START = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 in Shanghai


@pytest.fixture
def clock(qiao_clock: TestClock) -> TestClock:
    qiao_clock.set(START)
    return qiao_clock


@pytest.fixture
def runtime(qiao_runtime: Runtime, clock: TestClock) -> Runtime:
    return qiao_runtime


@pytest.fixture
def worker(qiao_worker: Worker) -> Worker:
    return qiao_worker


@pytest.fixture
def make(runtime: Runtime) -> Callable[..., Record]:
    def _make(entity: str, actor: Actor | None = None, **values: Any) -> Record:
        with runtime.records.transaction(actor or Actor.system(), Source.SYSTEM) as ctx:
            return runtime.records.create(ctx, entity, values)

    return _make


@pytest.fixture
def read(runtime: Runtime) -> Callable[[str, str], Record]:
    def _read(entity: str, record_id: str) -> Record:
        with runtime.db.read() as conn:
            record = runtime.records.get(conn, entity, record_id, actor=Actor.system())
        assert record is not None
        return record

    return _read


@pytest.fixture
def team(make: Callable[..., Record]) -> dict[str, Record]:
    """Two Ningbo reps taking turns, a manager as the fallback."""
    group = make("team", name="宁波销售组", code="NB", region="华东")
    li = make("user", username="li.na", display_name="李娜", team=group["id"])
    zhang = make("user", username="zhang.wei", display_name="张伟", team=group["id"])
    boss = make("user", username="chen.jl", display_name="陈经理")
    rule = make(
        "lead_assignment_rule",
        name="华东轮流",
        position=20,
        conditions={"region": ["华东"]},
        strategy="ROUND_ROBIN",
        team=group["id"],
        first_touch_minutes=30,
        fallback_user=boss["id"],
    )
    return {"team": group, "li": li, "zhang": zhang, "boss": boss, "rule": rule}


def pending(runtime: Runtime, lead_id: str) -> dict[str, dt.datetime]:
    with runtime.db.read() as conn:
        return timers.pending(conn, "lead", lead_id)


def notifications(runtime: Runtime, owner: str) -> list[Record]:
    with runtime.db.read() as conn:
        page = runtime.records.list(
            conn,
            "notification",
            filter={"owner_id": {"eq": owner}},
            order_by=[{"field": "created_at", "direction": "ASC"}],
            actor=Actor.system(),
        )
    return list(page.records)


def test_an_assigned_lead_gets_a_timer_at_its_first_touch_deadline(
    runtime: Runtime, make: Callable[..., Record], team: dict[str, Record]
) -> None:
    lead = make("lead", name="叶明", mobile="0574-86901158")
    assert lead["owner_id"] == team["li"]["id"]
    due = START + dt.timedelta(minutes=30)
    assert lead["first_touch_due_at"] == due
    assert pending(runtime, lead["id"]) == {sla.TIMER: due}


def test_a_missed_first_touch_reassigns_by_the_rules_then_to_the_fallback(
    runtime: Runtime,
    clock: TestClock,
    worker: Worker,
    make: Callable[..., Record],
    read: Callable[[str, str], Record],
    team: dict[str, Record],
) -> None:
    li, zhang, boss = team["li"]["id"], team["zhang"]["id"], team["boss"]["id"]
    lead = make("lead", name="叶明", company="宁波东海液压", mobile="0574-86901158")
    assert lead["owner_id"] == li
    clock.advance(minutes=29)
    drain(worker)
    assert read("lead", lead["id"])["owner_id"] == li  # not yet due
    clock.advance(minutes=1)
    drain(worker)
    moved = read("lead", lead["id"])
    assert moved["owner_id"] == zhang  # the team's other rep, not li again
    assert moved["reassignment_count"] == 1
    assert moved["assigned_at"] == clock()
    assert moved["first_touch_due_at"] == clock() + dt.timedelta(minutes=30)
    (entry,) = moved["reassignments"]
    assert (entry["from"], entry["to"], entry["reason"]) == (li, zhang, "first_touch_missed")
    assert pending(runtime, lead["id"]) == {sla.TIMER: moved["first_touch_due_at"]}

    # 张伟 misses it too: the rule, without him, offers li.na, who is not excluded now.
    clock.advance(minutes=30)
    drain(worker)
    again = read("lead", lead["id"])
    assert again["owner_id"] == li
    assert again["reassignment_count"] == 2

    # With only one rep left in the team, the rule finds nobody else: the fallback takes it.
    with runtime.records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        runtime.records.update(ctx, "user", zhang, {"is_active": False})
    clock.advance(minutes=30)
    drain(worker)
    last = read("lead", lead["id"])
    assert last["owner_id"] == boss
    assert [e["to"] for e in last["reassignments"]] == [zhang, li, boss]


def test_the_first_touch_cancels_the_timer(
    runtime: Runtime,
    clock: TestClock,
    worker: Worker,
    make: Callable[..., Record],
    read: Callable[[str, str], Record],
    team: dict[str, Record],
) -> None:
    lead = make("lead", name="叶明", mobile="0574-86901158")
    clock.advance(minutes=10)
    make("activity", subject="电话联系", kind="CALL", lead=lead["id"], occurred_at=clock())
    touched = read("lead", lead["id"])
    assert touched["first_touch_at"] == clock()
    assert pending(runtime, lead["id"]) == {}
    clock.advance(minutes=60)
    drain(worker)
    assert read("lead", lead["id"])["owner_id"] == team["li"]["id"]
    assert read("lead", lead["id"])["reassignment_count"] == 0


def test_a_touch_between_firing_and_handling_keeps_the_owner(
    runtime: Runtime,
    clock: TestClock,
    worker: Worker,
    make: Callable[..., Record],
    read: Callable[[str, str], Record],
    team: dict[str, Record],
) -> None:
    """The handler reads the lead: a timer event that arrives late changes nothing."""
    lead = make("lead", name="叶明", mobile="0574-86901158")
    clock.advance(minutes=31)
    with runtime.db.write() as conn:
        assert timers.fire_due(conn, clock(), 10) == 1
    make("activity", subject="回电", kind="CALL", lead=lead["id"], occurred_at=clock())
    drain(worker)
    assert read("lead", lead["id"])["owner_id"] == team["li"]["id"]


def test_nobody_else_keeps_the_owner_and_records_the_miss_once(
    runtime: Runtime,
    clock: TestClock,
    worker: Worker,
    make: Callable[..., Record],
    read: Callable[[str, str], Record],
) -> None:
    rep = make("user", username="solo", display_name="独行")
    make("lead_assignment_rule", name="全部给独行", strategy="USER", user=rep["id"])
    lead = make("lead", name="散客")
    clock.advance(minutes=31)
    drain(worker)
    kept = read("lead", lead["id"])
    assert kept["owner_id"] == rep["id"] and kept["reassignment_count"] == 0
    (entry,) = kept["reassignments"]
    assert entry["to"] is None and entry["from"] == rep["id"]
    assert pending(runtime, lead["id"]) == {}
    # The same timer event handled again (a worker died before recording) adds nothing.
    with runtime.db.read() as conn:
        row = conn.execute(
            select(event_table).where(
                event_table.c.record_id == lead["id"], event_table.c.operation == "timer"
            )
        ).first()
    assert row is not None
    from qiao.core.events.model import Delivery
    from qiao.core.events.outbox import from_row

    sla.handle(Delivery("0" * 32, sla.HANDLER, 2, from_row(row._mapping), runtime))
    assert len(read("lead", lead["id"])["reassignments"]) == 1


def test_owners_are_notified_of_assignment_and_reassignment_in_app_and_in_the_outbox(
    runtime: Runtime,
    clock: TestClock,
    worker: Worker,
    make: Callable[..., Record],
    team: dict[str, Record],
) -> None:
    li, zhang = team["li"]["id"], team["zhang"]["id"]
    lead = make("lead", name="叶明", company="宁波东海液压", mobile="0574-86901158")
    (first,) = notifications(runtime, li)
    assert first["title"] == "新线索分配给你：叶明（宁波东海液压）"
    assert (first["kind"], first["link_entity"], first["link_id"]) == (
        "lead_assigned",
        "lead",
        lead["id"],
    )
    assert first["read_at"] is None and "09:30" in first["body"]
    clock.advance(minutes=30)
    drain(worker)
    (moved,) = notifications(runtime, zhang)
    assert moved["kind"] == "lead_reassigned" and moved["link_id"] == lead["id"]
    assert moved["title"].startswith("线索改派给你")
    with runtime.db.read() as conn:
        events = conn.execute(
            select(event_table.c.record_id).where(
                event_table.c.entity == "notification", event_table.c.operation == "create"
            )
        ).scalars()
        assert set(events) == {first["id"], moved["id"]}


def test_the_notification_commits_and_rolls_back_with_the_assignment(
    runtime: Runtime, team: dict[str, Record]
) -> None:
    class Boom(Exception):
        pass

    records = runtime.records
    with pytest.raises(Boom), records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        records.create(ctx, "lead", {"name": "叶明", "mobile": "0574-86901158"})
        raise Boom
    assert notifications(runtime, team["li"]["id"]) == []


def test_a_lead_someone_assigns_to_themselves_notifies_nobody(
    runtime: Runtime, make: Callable[..., Record], team: dict[str, Record]
) -> None:
    li = team["li"]
    actor = Actor(user_id=li["id"], username="li.na", is_admin=True)
    make("lead", actor=actor, name="自己的客户", owner=li["id"])
    assert notifications(runtime, li["id"]) == []


def test_a_lead_handed_over_by_hand_gives_the_new_owner_a_fresh_deadline(
    runtime: Runtime,
    clock: TestClock,
    make: Callable[..., Record],
    team: dict[str, Record],
) -> None:
    lead = make("lead", name="叶明", mobile="0574-86901158")
    clock.advance(minutes=45)  # overdue, the worker has not run yet
    with runtime.records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        moved = runtime.records.update(ctx, "lead", lead["id"], {"owner": team["boss"]["id"]})
    assert moved["assigned_at"] == clock()
    assert moved["first_touch_due_at"] == clock() + dt.timedelta(minutes=30)
    assert pending(runtime, lead["id"]) == {sla.TIMER: moved["first_touch_due_at"]}
    (note,) = notifications(runtime, team["boss"]["id"])
    assert note["kind"] == "lead_reassigned"
