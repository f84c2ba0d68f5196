"""Where deadlines meet the business calendar: the first working day on or after a date.

Deadline rules (:mod:`deadlines`) ask only this module whether a day is a working day, by the
calendar named on the deadline (``cn``: China's statutory holidays and make-up working days,
which administrators extend year by year). Until a deployment's calendars are available
through ``qiao.api``, Saturdays and Sundays are the only days off.
"""

from __future__ import annotations

import datetime as dt

from qiao.api import WriteContext

WEEKEND = frozenset({6, 7})


def roll_forward(context: WriteContext, calendar: str, day: dt.date) -> dt.date:
    """``day`` when it is a working day on ``calendar``, else the next working day."""
    del context, calendar
    while day.isoweekday() in WEEKEND:
        day += dt.timedelta(days=1)
    return day
