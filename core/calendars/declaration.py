"""Calendars as data: the ``calendars:`` section of a manifest and ``qiao calendar import``.

One declaration makes one ``business_calendar`` record and one
``calendar_year`` record per year, so an administrator can add next year's
State Council notice (or a local calendar) without touching the template.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from qiao.core.metadata.sections import Section

_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
_HOURS = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
DEFAULT_HOURS = (("09:00", "12:00"), ("13:00", "18:00"))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class HolidayDecl(_Strict):
    """Days off from ``from`` to ``to`` (both included), e.g. 春节 2026-02-15 to 2026-02-23."""

    name: str = Field(min_length=1, max_length=100)
    from_: dt.date = Field(alias="from")
    to: dt.date | None = None

    @model_validator(mode="after")
    def _order(self) -> HolidayDecl:
        if self.to is not None and self.to < self.from_:
            raise ValueError(f"{self.name}: 'to' {self.to} is before 'from' {self.from_}")
        if self.to is not None and (self.to - self.from_).days > 31:
            raise ValueError(f"{self.name}: a holiday lasts at most 32 days")
        return self

    def days(self) -> list[dt.date]:
        last = self.to or self.from_
        return [self.from_ + dt.timedelta(days=i) for i in range((last - self.from_).days + 1)]


class WorkdayDecl(_Strict):
    """A make-up working day (调休上班) on what would be a weekend day."""

    date: dt.date
    name: str | None = Field(default=None, max_length=100)


class CalendarYearDecl(_Strict):
    """One year of a calendar: its holidays and make-up working days."""

    year: int = Field(ge=1900, le=2200)
    #: Where the days come from, e.g. 国务院办公厅关于2026年部分节假日安排的通知.
    notice: str | None = Field(default=None, max_length=2000)
    holidays: tuple[HolidayDecl, ...] = ()
    workdays: tuple[WorkdayDecl, ...] = ()

    @field_validator("workdays", mode="before")
    @classmethod
    def _plain_dates(cls, value: Any) -> Any:
        """``workdays: [2026-01-04]`` is short for ``[{date: 2026-01-04}]``."""
        if isinstance(value, list | tuple):
            return [{"date": v} if isinstance(v, str | dt.date) else v for v in value]
        return value

    @model_validator(mode="after")
    def _disjoint(self) -> CalendarYearDecl:
        off = {day for h in self.holidays for day in h.days()}
        both = sorted(off & {w.date for w in self.workdays})
        if both:
            raise ValueError(f"{both[0]} is both a holiday and a working day")
        return self

    def values(self, calendar: str) -> dict[str, Any]:
        """The ``calendar_year`` record of this year of ``calendar``."""
        dumped = self.model_dump(mode="json", by_alias=True)
        return {"name": f"{calendar}/{self.year}", "calendar": calendar, **dumped}


class CalendarDecl(_Strict):
    """A business calendar: weekend days, working hours, time zone, and its years."""

    name: str = Field(max_length=64)
    title: str | None = Field(default=None, max_length=200)
    timezone: str = "Asia/Shanghai"
    #: ISO weekdays off: 6 is Saturday, 7 Sunday.
    weekend: tuple[int, ...] = (6, 7)
    working_hours: tuple[tuple[str, str], ...] = DEFAULT_HOURS
    #: Another calendar whose holidays and make-up days this one starts from.
    base: str | None = None
    years: tuple[CalendarYearDecl, ...] = ()

    @field_validator("name", "base")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.fullmatch(value):
            raise ValueError(f"calendar name {value!r} must be lower-case letters, digits, - or _")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("weekend")
    @classmethod
    def _weekdays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 1 <= d <= 7 for d in value) or len(set(value)) != len(value):
            raise ValueError("weekend days are distinct ISO weekdays, 1 (Monday) to 7 (Sunday)")
        return value

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        previous = "00:00"
        for start, end in value:
            for text in (start, end):
                if not _HOURS.fullmatch(text):
                    raise ValueError(f"working hours are HH:MM, not {text!r}")
            if not previous <= start < end:
                raise ValueError("working periods are in order, each ending after it starts")
            previous = end
        return value

    @model_validator(mode="after")
    def _distinct_years(self) -> CalendarDecl:
        years = [y.year for y in self.years]
        if len(set(years)) != len(years):
            raise ValueError(f"calendar {self.name} declares a year twice")
        return self

    def calendar_values(self) -> dict[str, Any]:
        """The ``business_calendar`` record."""
        values = self.model_dump(mode="json", exclude={"years"})
        values["working_hours"] = [list(p) for p in self.working_hours]
        values["weekend"] = list(self.weekend)
        return values

    def records(self) -> list[tuple[str, dict[str, Any]]]:
        """``(entity, values)`` of the calendar and each of its years."""
        years = [("calendar_year", y.values(self.name)) for y in self.years]
        return [("business_calendar", self.calendar_values()), *years]


#: The ``calendars`` section of a manifest: each calendar and its years are records.
SECTION = Section("calendars", CalendarDecl, records=CalendarDecl.records, rank=0)
