"""Follow-up (随访): tasks from a plan when a visit closes, and the calls they count.

A ``followup_template`` names an ICD-10 prefix and the days after the visit to
call (``3, 7, 30``). When a visit is closed with a diagnosis, every active plan
whose prefix starts the diagnosis code gives one task per day, due that many days
after the visit (moved to the next working day of the plan's business calendar
when it falls on a weekend or holiday, as the calls are made on working days),
for the visit's doctor, if the patient consented to follow-up.
Writing a call's outcome on a task (无人接听, 家属接听 ...) counts the call in
``attempts``; the template's rules then retry unanswered calls the next working day and
expire tasks not done in time.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from qiao.api import (
    Actor,
    BadUserInput,
    BusinessCalendar,
    CalendarError,
    NotFound,
    Record,
    WriteContext,
    business_calendar,
)

from . import consents

SYSTEM = Actor.system()
#: Statuses that are not the outcome of a call.
NOT_CALLS = frozenset({"PENDING", "EXPIRED"})
SEPARATORS = re.compile(r"[,，、\s]+")


def days_after(text: str) -> list[int]:
    """``"3, 7, 30"`` -> ``[3, 7, 30]``; a value that is not a day count is refused."""
    days = []
    for part in SEPARATORS.split(text.strip()):
        if not part.isdigit() or int(part) > 3650:
            raise BadUserInput(
                f"随访天数须为 0 到 3650 的整数，以逗号分隔，不能是 {part!r}", field="days_after"
            )
        days.append(int(part))
    return sorted(set(days))


def calendar_of(context: WriteContext, name: str) -> BusinessCalendar:
    """The business calendar a plan names; a plan naming none that exists is refused."""
    try:
        return business_calendar(context.runtime, name, connection=context.connection)
    except NotFound:
        raise BadUserInput(f"没有名为 {name!r} 的节假日日历", field="calendar") from None
    except CalendarError as exc:
        raise BadUserInput(f"节假日日历 {name!r}：{exc}", field="calendar") from None


def count_call(values: dict[str, Any], existing: Record | None) -> None:
    """A new call outcome on a task adds one to its ``attempts``."""
    status = values.get("status")
    if existing is None or status is None or status in NOT_CALLS:
        return
    if status != existing["status"]:
        values["attempts"] = (existing["attempts"] or 0) + 1


def plan_visit(context: WriteContext, record: Record, changes: dict[str, Any]) -> None:
    """Create the follow-up tasks of every plan matching a visit that was just closed."""
    if "status" not in changes or record["status"] != "CLOSED":
        return
    code = (record["diagnosis_code"] or "").upper()
    conn, records = context.connection, context.records
    plans = records.list(
        conn, "followup_template", filter={"active": {"eq": True}}, first=500, actor=SYSTEM
    ).records
    patient = records.get(conn, "patient", record["patient_id"], actor=SYSTEM)
    if patient is None or not consents.follow_up_allowed(context, patient):
        return
    name = patient["name"]
    system = context.as_actor(SYSTEM)
    for plan in plans:
        if not code.startswith(plan["diagnosis_prefix"].upper()):
            continue
        calendar = calendar_of(context, plan["calendar"] or "cn")
        for day in days_after(plan["days_after"]):
            records.create(
                system,
                "followup_task",
                {
                    "title": f"{plan['name']}：{name} 第 {day} 天",
                    "patient": record["patient_id"],
                    "visit": record["id"],
                    "plan": plan["id"],
                    "doctor": record["doctor_id"],
                    "day": day,
                    "due_on": calendar.next_working_day(
                        record["visited_on"] + dt.timedelta(days=day)
                    ),
                },
            )
