"""Where deadlines meet the business calendar: the first working day on or after a date.

Deadline rules (:mod:`deadlines`) ask only this module whether a day is a working day, by the
calendar named on the deadline: ``cn`` is China's national calendar (weekends, statutory
holidays and make-up working days, 调休), which administrators extend year by year as data
(docs/calendars.md); a local calendar is another name.
"""

from __future__ import annotations

import datetime as dt

from qiao.api import BadUserInput, CalendarError, NotFound, WriteContext, business_calendar


def roll_forward(context: WriteContext, calendar: str, day: dt.date) -> dt.date:
    """``day`` when it is a working day on ``calendar``, else the next working day."""
    try:
        found = business_calendar(context.runtime, calendar, connection=context.connection)
        return found.next_working_day(day)
    except NotFound:
        raise BadUserInput(f"没有名为 {calendar!r} 的节假日日历", field="calendar") from None
    except CalendarError as exc:
        raise BadUserInput(f"节假日日历 {calendar!r}：{exc}", field="calendar") from None
