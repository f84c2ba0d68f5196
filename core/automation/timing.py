"""Stored timers for time-based and scheduled rules.

A rule ``{after: {field: due_at, minutes: 120}}`` (or ``before``) keeps one
timer per record, named ``automation:<rule id>``, due that long after (or
before) the field's instant. It is set in the transaction that writes the
record, moved when the field changes and removed when the field is emptied or
the record deleted, so a restart loses none. Records written before the rule
existed have no timer: a time-based rule counts from the writes it sees.

A scheduled rule ``{schedule: "0 8 * * 1-5", timezone: Asia/Shanghai}`` keeps
one timer on its own record, named ``automation:schedule``, set when the rule
is written (active) and re-armed each time it fires.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from croniter import croniter
from sqlalchemy import Connection

from qiao.core.automation.definitions import Trigger
from qiao.core.events import timers

if TYPE_CHECKING:
    from qiao.core.automation.rules import Rule, RuleSet
    from qiao.core.calendars import BusinessCalendar

PREFIX = "automation:"
SCHEDULE_TIMER = "automation:schedule"


def timer_name(rule_id: str) -> str:
    return PREFIX + rule_id


def due_at(
    rule: Rule, record: dict[str, Any], calendars: Callable[[str], BusinessCalendar]
) -> dt.datetime | None:
    """When the rule's timer for ``record`` is due, or None when its field is empty.

    An offset with a ``calendar`` counts working time of that calendar
    (``calendars`` finds it by name).
    """
    offset = rule.definition.trigger.offset
    assert offset is not None
    field = offset.field
    base = record.get(field)  # datetime fields and created_at/updated_at: column == name
    if base is None:
        return None
    step = dt.timedelta(minutes=offset.minutes)
    if offset.calendar is not None:
        return calendars(offset.calendar).add_working_time(base, step)
    due: dt.datetime = base + step if rule.definition.trigger.after is not None else base - step
    return due


def after_write(
    conn: Connection,
    rules: RuleSet,
    entity: str,
    operation: str,
    record: dict[str, Any],
    changes: dict[str, tuple[Any, Any]],
    calendars: Callable[[str], BusinessCalendar],
) -> None:
    """Set, move or remove the timers of ``entity``'s time-based rules for this record."""
    for rule in rules.timed(entity):
        name = timer_name(rule.id)
        if operation == "delete":
            timers.cancel(conn, entity, record["id"], name)
            continue
        offset = rule.definition.trigger.offset
        assert offset is not None
        moved = offset.field in changes or offset.field == "updated_at"
        if operation == "update" and not moved:
            continue
        due = due_at(rule, record, calendars)
        if due is None:
            timers.cancel(conn, entity, record["id"], name)
        else:
            payload = {"rule": rule.id, "due_at": due.astimezone(dt.UTC).isoformat()}
            timers.schedule(conn, entity, record["id"], name, due, payload)


def rule_written(conn: Connection, operation: str, rule: dict[str, Any]) -> None:
    """Arm or disarm a rule's schedule timer when the rule is written (and was checked)."""
    trigger = None if operation == "delete" else Trigger.model_validate(rule["trigger"])
    if trigger is None or not rule["active"] or trigger.schedule is None:
        timers.cancel(conn, "automation_rule", rule["id"], SCHEDULE_TIMER)
        return
    arm_schedule(conn, rule["id"], trigger, rule["updated_at"])


def arm_schedule(conn: Connection, rule_id: str, trigger: Trigger, now: dt.datetime) -> None:
    """Set the rule's timer to the schedule's first time after ``now``."""
    assert trigger.schedule is not None
    due = next_run(trigger.schedule, trigger.zone, now)
    payload = {"rule": rule_id, "due_at": due.isoformat()}
    timers.schedule(conn, "automation_rule", rule_id, SCHEDULE_TIMER, due, payload)


def next_run(expression: str, zone: dt.tzinfo, now: dt.datetime) -> dt.datetime:
    """The first time after ``now`` the cron expression names in ``zone``, in UTC."""
    following: dt.datetime = croniter(expression, now.astimezone(zone)).get_next(dt.datetime)
    return following.astimezone(dt.UTC)
