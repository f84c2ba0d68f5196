"""Hours: what an attendance consumes, and the renewal task when a balance runs low.

An attendance names a lesson and a student; the enrolment it draws on, the hours
and the fee consumed follow from them, so this module fills them in before the
write. Only PRESENT consumes hours (the enrolment's rollups sum PRESENT rows);
LEAVE and ABSENT are recorded and consume nothing. When a PRESENT row takes the
enrolment's remaining hours from above its renewal threshold to at or below it,
the signing consultant gets one renewal task.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from qiao.api import Actor, BadUserInput, Record, WriteContext

SYSTEM = Actor.system()
CENTS = Decimal("0.01")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def fill_attendance(context: WriteContext, values: dict[str, Any], existing: Record | None) -> None:
    """Set the attendance's enrolment, hours and fee from its lesson, student and course."""
    if existing is not None and not {"lesson", "student"} & values.keys():
        return
    conn, records = context.connection, context.records
    lesson_id = values.get("lesson") or (existing or {}).get("lesson_id")
    student_id = values.get("student") or (existing or {}).get("student_id")
    lesson = records.get(conn, "lesson", str(lesson_id), actor=SYSTEM)
    if lesson is None:
        return  # the relation check names the missing lesson
    enrolments = records.list(
        conn,
        "enrollment",
        filter={
            "student_id": {"eq": student_id},
            "course_id": {"eq": lesson["course_id"]},
            "status": {"neq": "WITHDRAWN"},
        },
        first=1,
        actor=SYSTEM,
    ).records
    if not enrolments:
        raise BadUserInput("该学员未报名这门课程，不能记考勤", field="student")
    course = records.get(conn, "course", lesson["course_id"], actor=SYSTEM)
    hours: Decimal = lesson["hours"] or Decimal("0.0")
    price: Decimal | None = course["hour_price"] if course else None
    values["enrollment"] = enrolments[0]["id"]
    values.setdefault("hours", hours)
    if price is not None:
        values.setdefault("fee", (Decimal(values["hours"]) * price).quantize(CENTS))


def renewal_due(context: WriteContext, record: Record, changes: dict[str, Any]) -> None:
    """One renewal task when this attendance takes the balance down to the threshold."""
    if record["status"] != "PRESENT" or not {"status", "hours"} & changes.keys():
        return
    conn, records = context.connection, context.records
    enrolment = records.get(conn, "enrollment", record["enrollment_id"], actor=SYSTEM)
    if enrolment is None:
        return
    remaining: Decimal = enrolment["hours_remaining"]
    threshold: Decimal = enrolment["renewal_threshold"]
    if not remaining <= threshold < remaining + (record["hours"] or 0):
        return
    student = records.get(conn, "student", enrolment["student_id"], actor=SYSTEM)
    course = records.get(conn, "course", enrolment["course_id"], actor=SYSTEM)
    today = context.now().astimezone(SHANGHAI).date()
    records.create(
        context.as_actor(SYSTEM),
        "edu_task",
        {
            "title": f"续费提醒：{student['name'] if student else ''}"
            f"《{course['name'] if course else ''}》剩余 {remaining} 课时",
            "kind": "RENEWAL",
            "owner": enrolment["consultant_id"],
            "enrollment": enrolment["id"],
            "due_on": today + dt.timedelta(days=1),
        },
    )
