"""Trial lessons move their inquiry: booked, then attended with a consultant's call next day.

A trial lesson is a lesson of kind TRIAL naming an inquiry, so the teacher's and
the room's other lessons are the same records it is booked against. Booking one
moves a new, contacted or pooled inquiry to 已约试听; marking it held moves the
inquiry to 已试听 and gives the inquiry's consultant a task due the next day. The
teacher who marks the lesson needs no right on inquiries: the template acts as
the system, in the teacher's transaction, so the lesson and its effects commit
together.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from qiao.api import Actor, Record, WriteContext

SYSTEM = Actor.system()
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: Stages from which booking a trial moves the inquiry to TRIAL_BOOKED.
BOOKABLE = frozenset({"NEW", "CONTACTED", "POOL"})


def trial_moved(context: WriteContext, record: Record, changes: dict[str, Any]) -> None:
    """Move the inquiry of a trial lesson booked or held; add the follow-up task."""
    if record["kind"] != "TRIAL" or record["inquiry_id"] is None:
        return
    conn, records = context.connection, context.records
    inquiry = records.get(conn, "inquiry", record["inquiry_id"], actor=SYSTEM)
    if inquiry is None:
        return
    system = context.as_actor(SYSTEM)
    booked = "inquiry" in changes or ("status" in changes and record["status"] == "SCHEDULED")
    if booked and record["status"] == "SCHEDULED" and inquiry["stage"] in BOOKABLE:
        records.update(system, "inquiry", inquiry["id"], {"stage": "TRIAL_BOOKED"})
    if "status" in changes and record["status"] == "HELD" and inquiry["stage"] == "TRIAL_BOOKED":
        records.update(system, "inquiry", inquiry["id"], {"stage": "TRIAL_DONE"})
        today = context.now().astimezone(SHANGHAI).date()
        records.create(
            system,
            "edu_task",
            {
                "title": f"试听回访：{inquiry['child_name'] or inquiry['name']}",
                "kind": "TRIAL_FOLLOW_UP",
                "owner": inquiry["owner_id"],
                "inquiry": inquiry["id"],
                "due_on": today + dt.timedelta(days=1),
            },
        )
