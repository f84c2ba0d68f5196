"""Time-based and scheduled rules: stored timers, fired by the worker as the clock moves."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from qiao.core.automation import timing
from qiao.core.events import timers
from qiao.core.records.service import Record
from qiao.core.runtime import Runtime
from qiao.core.testing.clock import TestClock
from qiao.core.testing.worker import drain
from qiao.core.worker import Worker

from .conftest import START

pytestmark = pytest.mark.storage


def pending(runtime: Runtime, entity: str, record_id: str) -> dict[str, dt.datetime]:
    with runtime.db.read() as conn:
        return timers.pending(conn, entity, record_id)


@pytest.fixture
def boss(create: Callable[..., Record]) -> Record:
    return create("user", username="boss", display_name="主管")


def test_after_a_field_the_rule_fires_if_its_condition_still_holds(
    qiao_runtime: Runtime,
    clock: TestClock,
    rule: Callable[..., Record],
    create: Callable[..., Record],
    update: Callable[..., Record],
    get: Callable[[str, str], Record],
    rows: Callable[..., list[Record]],
    worker: Worker,
    boss: Record,
) -> None:
    late = rule(
        "两小时未受理升级",
        "ticket",
        {"after": {"field": "created_at", "minutes": 120}},
        [
            {"set": {"priority": "URGENT"}},
            {"notify": {"users": ["boss"], "title": "超时：{subject}"}},
        ],
        condition='status = "OPEN"',
    )
    waiting = create("ticket", subject="无人受理")
    accepted = create("ticket", subject="已受理")
    name = timing.timer_name(late["id"])
    assert pending(qiao_runtime, "ticket", waiting["id"]) == {name: START + dt.timedelta(hours=2)}
    update("ticket", accepted["id"], status="ACCEPTED")
    clock.advance(minutes=119)
    drain(worker)
    assert rows("notification", owner_id=boss["id"]) == []
    clock.advance(minutes=1)
    drain(worker)
    assert get("ticket", waiting["id"])["priority"] == "URGENT"
    assert get("ticket", accepted["id"])["priority"] == "NORMAL"
    (note,) = rows("notification", owner_id=boss["id"])
    assert note["title"] == "超时：无人受理"
    assert pending(qiao_runtime, "ticket", waiting["id"]) == {}


def test_before_a_field_the_timer_follows_the_field(
    qiao_runtime: Runtime,
    clock: TestClock,
    rule: Callable[..., Record],
    create: Callable[..., Record],
    update: Callable[..., Record],
    rows: Callable[..., list[Record]],
    worker: Worker,
    boss: Record,
) -> None:
    soon = rule(
        "解决时限前半小时提醒",
        "ticket",
        {"before": {"field": "resolved_at", "minutes": 30}},
        [{"notify": {"users": ["boss"], "title": "快到期：{subject}"}}],
    )
    name = timing.timer_name(soon["id"])
    ticket = create("ticket", subject="换模具", resolved_at=START + dt.timedelta(hours=4))
    assert pending(qiao_runtime, "ticket", ticket["id"]) == {name: START + dt.timedelta(hours=3.5)}
    update("ticket", ticket["id"], resolved_at=START + dt.timedelta(hours=6))
    assert pending(qiao_runtime, "ticket", ticket["id"]) == {name: START + dt.timedelta(hours=5.5)}
    clock.advance(hours=4)
    drain(worker)
    assert rows("notification", owner_id=boss["id"]) == []
    clock.advance(hours=1.5)
    drain(worker)
    assert len(rows("notification", owner_id=boss["id"])) == 1
    update("ticket", ticket["id"], resolved_at=None)
    assert pending(qiao_runtime, "ticket", ticket["id"]) == {}


def test_a_timer_left_by_a_moved_deadline_does_nothing(
    qiao_runtime: Runtime,
    clock: TestClock,
    rule: Callable[..., Record],
    create: Callable[..., Record],
    rows: Callable[..., list[Record]],
    worker: Worker,
    boss: Record,
) -> None:
    """A deadline moved after its timer fired (and before the worker ran it) is not acted on."""
    rule(
        "到期提醒",
        "ticket",
        {"after": {"field": "resolved_at", "minutes": 0}},
        [{"notify": {"users": ["boss"], "title": "到期"}}],
    )
    ticket = create("ticket", subject="改期", resolved_at=START + dt.timedelta(hours=1))
    clock.advance(hours=1)
    with qiao_runtime.db.write() as conn:
        timers.fire_due(conn, clock(), 10)
    table = qiao_runtime.current().table("ticket")
    with qiao_runtime.db.write() as conn:  # moved behind the engine's back: no new timer
        conn.execute(
            table.update()
            .where(table.c.id == ticket["id"])
            .values(resolved_at=START + dt.timedelta(hours=5))
        )
    drain(worker)
    assert rows("notification", owner_id=boss["id"]) == []


def test_a_scheduled_rule_acts_on_what_its_condition_selects_and_rearms(
    qiao_runtime: Runtime,
    clock: TestClock,
    rule: Callable[..., Record],
    create: Callable[..., Record],
    rows: Callable[..., list[Record]],
    worker: Worker,
    boss: Record,
) -> None:
    morning = rule(
        "工作日早上八点催办",
        "ticket",
        {"schedule": "0 8 * * 1-5", "timezone": "Asia/Shanghai"},
        [{"notify": {"users": ["boss"], "title": "待处理：{subject}"}}],
        condition='status = "OPEN"',
    )
    tuesday_8am = dt.datetime(2026, 3, 3, 0, 0, tzinfo=dt.UTC)
    armed = pending(qiao_runtime, "automation_rule", morning["id"])
    assert armed == {timing.SCHEDULE_TIMER: tuesday_8am}
    create("ticket", subject="甲")
    create("ticket", subject="乙", status="CLOSED")
    clock.set(tuesday_8am)
    drain(worker)
    assert [n["title"] for n in rows("notification", owner_id=boss["id"])] == ["待处理：甲"]
    rearmed = pending(qiao_runtime, "automation_rule", morning["id"])
    assert rearmed == {timing.SCHEDULE_TIMER: tuesday_8am + dt.timedelta(days=1)}
    (run,) = rows("automation_run", rule_id=morning["id"])
    assert (run["status"], len(run["details"]["records"]), run["details"]["scanned"]) == (
        "DONE",
        1,
        2,
    )


def test_deactivating_a_scheduled_rule_disarms_it(
    qiao_runtime: Runtime,
    rule: Callable[..., Record],
    update: Callable[..., Record],
) -> None:
    nightly = rule(
        "每晚",
        "ticket",
        {"schedule": "0 22 * * *"},
        [{"set": {"priority": "LOW"}}],
    )
    assert timing.SCHEDULE_TIMER in pending(qiao_runtime, "automation_rule", nightly["id"])
    update("automation_rule", nightly["id"], active=False)
    assert pending(qiao_runtime, "automation_rule", nightly["id"]) == {}
