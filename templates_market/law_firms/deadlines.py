"""Deadlines computed by rule from an event date (民事诉讼法 art. 85, 171).

A period in days starts the day after its event: the day of service is not counted, so a
15-day appeal period from a judgment served on 9 September ends on 24 September. A period
that ends on a non-working day ends on the next working day of the deadline's holiday
calendar (:mod:`working_days`). The deadline keeps the day it would have ended on
(``rolled_from``), its due instant for the reminder rules (09:00 Beijing time on the due
day), and the day it was recorded, so that no reminder is dated before the deadline existed
(rules.yaml). A deadline is closed by marking it satisfied, never by deleting it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from qiao.api import BadUserInput, Conflict, WriteContext

from .working_days import roll_forward

BEIJING = ZoneInfo("Asia/Shanghai")
#: Days per rule: 民事诉讼法 art. 171 (judgment 15 days, ruling 10 days from service).
RULE_DAYS = {"APPEAL_JUDGMENT": 15, "APPEAL_RULING": 10}
REMIND_AT = dt.time(9, 0)
INPUTS = ("kind", "event_date", "days", "calendar")


def prepare(
    context: WriteContext, operation: str, values: dict[str, Any], existing: dict[str, Any] | None
) -> None:
    """Compute ``due_on`` (and what follows from it) when a deadline is made or its rule moves."""
    if operation == "delete":
        assert existing is not None
        raise Conflict(
            f"期限“{existing['title']}”不能删除：请标记为已完成（satisfied）以保留记录",
            entity="deadline",
        )
    for computed in ("due_on", "rolled_from", "due_at", "recorded_on"):
        values.pop(computed, None)
    if operation == "create":
        values["recorded_on"] = context.now().astimezone(BEIJING).date()
    elif not any(name in values for name in INPUTS):
        return
    merged = {**(existing or {}), **values}
    kind = merged["kind"]
    days = RULE_DAYS.get(kind)
    if days is None:
        days = merged.get("days")
        if days is None:
            raise BadUserInput("自定天数的期限须填写期间天数", field="days")
    elif merged.get("days") not in (None, days):
        raise BadUserInput(f"该计算规则的期间为 {days} 日（民事诉讼法第171条）", field="days")
    values["days"] = days
    plain = merged["event_date"] + dt.timedelta(days=days)
    due = roll_forward(context, merged["calendar"], plain)
    values["due_on"] = due
    values["rolled_from"] = plain if due != plain else None
    values["due_at"] = dt.datetime.combine(due, REMIND_AT, BEIJING)
