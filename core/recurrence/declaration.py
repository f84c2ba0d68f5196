"""The ``recurring_plans:`` section of a manifest (docs/recurrence.md)."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Every(_Strict):
    """The interval: exactly one of its keys."""

    days: int | None = Field(default=None, ge=1, le=36_600)
    weeks: int | None = Field(default=None, ge=1, le=5_200)
    months: int | None = Field(default=None, ge=1, le=1_200)
    years: int | None = Field(default=None, ge=1, le=100)

    @model_validator(mode="after")
    def _one(self) -> Every:
        given = [k for k in ("days", "weeks", "months", "years") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of days, weeks, months, years")
        return self

    def after(self, start: dt.date, times: int) -> dt.date:
        """``start`` moved by ``times`` intervals; a month end stays within its month.

        Counted from ``start`` every time (never from the previous date), so
        31 January plus one month is 28 February and plus two is 31 March.
        """
        if self.days is not None:
            return start + dt.timedelta(days=self.days * times)
        if self.weeks is not None:
            return start + dt.timedelta(weeks=self.weeks * times)
        months = (self.months or 0) * times + (self.years or 0) * 12 * times
        index = start.year * 12 + start.month - 1 + months
        year, month = divmod(index, 12)
        day = min(start.day, calendar.monthrange(year, month + 1)[1])
        return dt.date(year, month + 1, day)


class CreateDecl(_Strict):
    """What each occurrence creates."""

    entity: str
    #: The new record's relation to the followed record.
    link: str | None = None
    #: A date field of the new record that gets the occurrence's due date.
    due_field: str | None = None
    #: Field values; a text starting with "=" is a formula on the followed record.
    values: dict[str, Any] = Field(default_factory=dict)


class PlanDecl(_Strict):
    """A recurring plan: occurrences every ``every`` from ``anchor``, created ahead of time."""

    name: str = Field(max_length=64)
    entity: str
    #: The date (or datetime) field occurrences count from: an install date, a start date.
    anchor: str
    every: Every
    #: Days before each due date that its record is created (the plan's horizon).
    lead_days: int = Field(default=0, ge=0, le=3_660)
    #: A date field of the followed record after which no occurrence is due.
    until: str | None = None
    #: A formula on the followed record; occurrences are created only while it is TRUE.
    when: str | None = Field(default=None, max_length=2000)
    #: A date or datetime field of the created entity: once it is set, the next occurrence
    #: counts from it (maintenance from the last service) instead of from the anchor.
    reschedule_from: str | None = None
    timezone: str = "Asia/Shanghai"
    create: CreateDecl

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(f"plan name {value!r} must be snake_case")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def fires_at(self, due: dt.date) -> dt.datetime:
        """When the record for ``due`` is created: ``lead_days`` before, at midnight local time."""
        day = due - dt.timedelta(days=self.lead_days)
        return dt.datetime.combine(day, dt.time(0), tzinfo=self.zone).astimezone(dt.UTC)
