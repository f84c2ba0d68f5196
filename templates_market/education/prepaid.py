"""The local rules on prepaid fees for academic (学科类) courses, checked on every purchase.

Chinese cities limit what a tutoring centre may collect in advance for academic
subjects: at most three months or 60 hours per purchase, no renewal while more
than 20 hours remain, and no charge earlier than a set time before a new course
starts (../docs/templates/education.md lists the sources). The limits differ by
city and change, so they are records of ``prepaid_rule`` that a principal edits;
this module applies the rule of the course's city (or the ``*`` rule where the
city has none) when a fee payment is written, and a refusal names the rule and
the limit it broke.
"""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import Decimal
from typing import Any, NoReturn

from qiao.api import Actor, BadUserInput, Record, WriteContext

SYSTEM = Actor.system()


def check_purchase(context: WriteContext, values: dict[str, Any]) -> None:
    """Refuse a fee payment for an academic course that breaks its city's rule."""
    conn, records = context.connection, context.records
    enrolment = records.get(conn, "enrollment", str(values["enrollment"]), actor=SYSTEM)
    if enrolment is None:
        return  # the relation check names the missing enrolment
    course = records.get(conn, "course", enrolment["course_id"], actor=SYSTEM)
    if course is None or course["category"] != "ACADEMIC":
        return
    rule = rule_for(context, course["city"])
    if rule is None:
        return
    hours: Decimal = values["hours"]
    if rule["max_hours"] is not None and hours > rule["max_hours"]:
        _refuse(
            rule, "hours", f"学科类课程单次预收不超过 {rule['max_hours']} 课时，本次 {hours} 课时"
        )
    start, until = values.get("covers_from"), values.get("covers_until")
    if rule["max_months"] is not None:
        if start is None or until is None:
            _refuse(rule, "covers_until", "学科类课程预收须写明课程起止日期")
        limit = add_months(start, rule["max_months"])
        if until > limit:
            _refuse(
                rule,
                "covers_until",
                f"学科类课程单次预收不超过 {rule['max_months']} 个月："
                f"自 {start} 起最晚到 {limit}，本次到 {until}",
            )
    remaining: Decimal = enrolment["hours_remaining"]
    if rule["renew_below_hours"] is not None and remaining > rule["renew_below_hours"]:
        _refuse(
            rule,
            "hours",
            f"剩余 {remaining} 课时，须剩余不超过 {rule['renew_below_hours']} 课时方可续费",
        )
    days = rule["earliest_days_before_start"]
    if days is not None and start is not None and values["paid_on"] < start - dt.timedelta(days):
        _refuse(
            rule,
            "paid_on",
            f"课程 {start} 开始，最早 {start - dt.timedelta(days)} 方可收费（开课前 {days} 天内），"
            f"本次收费日 {values['paid_on']}",
        )


def rule_for(context: WriteContext, city: str | None) -> Record | None:
    """The active rule of ``city``, else the active ``*`` rule, else None."""
    for candidate in (city, "*"):
        if candidate is None:
            continue
        found = context.records.list(
            context.connection,
            "prepaid_rule",
            filter={"city": {"eq": candidate}, "active": {"eq": True}},
            order_by=[{"field": "name"}],
            first=1,
            actor=SYSTEM,
        ).records
        if found:
            return found[0]
    return None


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, or the month's last day (31 Jan + 1 = 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _refuse(rule: Record, field: str, why: str) -> NoReturn:
    raise BadUserInput(f"不符合预收费规则“{rule['name']}”：{why}", field=field, rule=rule["name"])
