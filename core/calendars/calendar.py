"""Working-day arithmetic over one business calendar: weekends, holidays, make-up days.

A :class:`BusinessCalendar` is plain data (loaded from the ``business_calendar``
and ``calendar_year`` records by :mod:`qiao.core.calendars.store`). A day is a
working day when it is a declared make-up working day (调休上班), or when it is
neither a weekend day nor a declared holiday. Years nobody declared follow the
weekend rule alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

#: How far a search for a working day goes before it gives up (a calendar made all holidays).
_SEARCH_LIMIT = 3660


class CalendarError(ValueError):
    """The calendar cannot answer: no working day in reach, or no working hours."""


@dataclass(frozen=True)
class BusinessCalendar:
    """One calendar's rules; every method is a pure function of them."""

    name: str
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    #: ISO weekdays off (6 Saturday, 7 Sunday).
    weekend: frozenset[int] = frozenset({6, 7})
    #: Working periods of a working day, local time, in order.
    hours: tuple[tuple[dt.time, dt.time], ...] = (
        (dt.time(9), dt.time(12)),
        (dt.time(13), dt.time(18)),
    )
    #: Declared days off, with their names (春节).
    holidays: Mapping[dt.date, str] = field(default_factory=dict)
    #: Declared make-up working days on what would be a weekend (调休上班).
    workdays: Mapping[dt.date, str] = field(default_factory=dict)
    #: The years some calendar_year declares.
    years: frozenset[int] = frozenset()

    # -- Days -------------------------------------------------------------------------

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.workdays:
            return True
        return day.isoweekday() not in self.weekend and day not in self.holidays

    def why_not_working(self, day: dt.date) -> str | None:
        """The holiday's name, "weekend", or None for a working day."""
        if self.is_working_day(day):
            return None
        return self.holidays.get(day, "weekend")

    def next_working_day(self, day: dt.date) -> dt.date:
        """``day`` if it is a working day, else the first working day after it.

        This is how a deadline that falls on a non-working day rolls forward
        (民事诉讼法 article 85: the period ends on the next working day).
        """
        return self._walk(day, 1, include_start=True)

    def previous_working_day(self, day: dt.date) -> dt.date:
        return self._walk(day, -1, include_start=True)

    def add_working_days(self, day: dt.date, count: int) -> dt.date:
        """The working day ``count`` working days after ``day`` (before, when negative).

        ``day`` itself is not counted and need not be a working day, as in
        Excel's WORKDAY: one working day after a Saturday is the Monday (or
        the make-up Sunday). With ``count`` 0 the answer is ``day``.
        """
        step = 1 if count > 0 else -1
        current = day
        for _ in range(abs(count)):
            current = self._walk(current, step, include_start=False)
        return current

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """Working days from ``start`` to ``end``, both counted (negative when end is earlier).

        As Excel's NETWORKDAYS: a Monday-to-Friday week without holidays has 5.
        """
        if end < start:
            return -self.working_days_between(end, start)
        count = 0
        day = start
        while day <= end:
            count += self.is_working_day(day)
            day += dt.timedelta(days=1)
        return count

    def _walk(self, day: dt.date, step: int, *, include_start: bool) -> dt.date:
        current = day if include_start else day + dt.timedelta(days=step)
        for _ in range(_SEARCH_LIMIT):
            if self.is_working_day(current):
                return current
            current += dt.timedelta(days=step)
        raise CalendarError(f"calendar {self.name!r} has no working day within ten years of {day}")

    # -- Working hours ----------------------------------------------------------------

    def add_working_time(self, instant: dt.datetime, delta: dt.timedelta) -> dt.datetime:
        """``instant`` moved forward by ``delta`` of working time (in UTC).

        "Escalate after 4 working hours": a ticket opened on Friday at 17:00
        is due on Monday at 12:00 with the default hours (09:00-12:00,
        13:00-18:00). An instant outside working time starts counting at the
        next working period.
        """
        if not self.hours:
            raise CalendarError(f"calendar {self.name!r} has no working hours")
        if delta < dt.timedelta():
            raise ValueError("working time moves forward only")
        local = instant.astimezone(self.timezone)
        day, now = local.date(), local.time().replace(tzinfo=None)
        left = delta
        for _ in range(_SEARCH_LIMIT * 2):
            if self.is_working_day(day):
                for start, end in self.hours:
                    if now >= end:
                        continue
                    begin = max(now, start)
                    available = _span(begin, end)
                    if left <= available:
                        moment = dt.datetime.combine(day, begin) + left
                        return moment.replace(tzinfo=self.timezone).astimezone(dt.UTC)
                    left -= available
                    now = end
            day += dt.timedelta(days=1)
            now = dt.time(0)
        raise CalendarError(f"calendar {self.name!r} has no working time ahead of {instant}")

    def next_working_time(self, instant: dt.datetime) -> dt.datetime:
        """``instant`` if it is within working hours, else the start of the next period."""
        return self.add_working_time(instant, dt.timedelta())


def _span(start: dt.time, end: dt.time) -> dt.timedelta:
    day = dt.date(2000, 1, 1)
    return dt.datetime.combine(day, end) - dt.datetime.combine(day, start)
