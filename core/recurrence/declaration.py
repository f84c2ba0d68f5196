"""The ``recurring_plans:`` section of a manifest (docs/recurrence.md)."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from qiao.core.metadata.sections import Section

_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: The most of each unit an interval may be.
UNIT_LIMITS = {"days": 36_600, "weeks": 5_200, "months": 1_200, "years": 100}


def _formula_or_count(value: int | str, limit: int) -> int | str:
    """A count within 1..limit, or a formula (``"=interval * 7"``) read from each record."""
    if isinstance(value, str):
        if not value.startswith("=") or not value[1:].strip():
            raise ValueError(f"{value!r} must be a number or a formula starting with '='")
        return value
    if not 1 <= value <= limit:
        raise ValueError(f"{value} must be between 1 and {limit}")
    return value


class Every(_Strict):
    """The interval: exactly one of its keys, a number or a formula on the followed record.

    A formula (``days: "=CASE(interval_unit, \"WEEK\", interval * 7, interval)"``) lets
    each followed record say its own interval; see :meth:`counted`.
    """

    days: int | str | None = None
    weeks: int | str | None = None
    months: int | str | None = None
    years: int | str | None = None

    @model_validator(mode="after")
    def _one(self) -> Every:
        given = [k for k in UNIT_LIMITS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of days, weeks, months, years")
        _formula_or_count(getattr(self, given[0]), UNIT_LIMITS[given[0]])
        return self

    @property
    def unit(self) -> str:
        return next(k for k in UNIT_LIMITS if getattr(self, k) is not None)

    @property
    def formula(self) -> str | None:
        """The formula giving the count, when the interval is read from each record."""
        value = getattr(self, self.unit)
        return value[1:] if isinstance(value, str) else None

    def counted(self, count: int) -> Every:
        """This interval with the count a record's formula gave."""
        return Every(**{self.unit: count})

    def after(self, start: dt.date, times: int) -> dt.date:
        """``start`` moved by ``times`` intervals; a month end stays within its month.

        Counted from ``start`` every time (never from the previous date), so
        31 January plus one month is 28 February and plus two is 31 March. An
        interval read by formula is counted first (:meth:`counted`).
        """
        unit = self.unit
        count = getattr(self, unit)
        if not isinstance(count, int):
            raise ValueError(f"the interval {count!r} is a formula: count it for a record first")
        if unit == "days":
            return start + dt.timedelta(days=count * times)
        if unit == "weeks":
            return start + dt.timedelta(weeks=count * times)
        months = count * times * (12 if unit == "years" else 1)
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
    #: Days before each due date that its record is created (the plan's horizon); a
    #: formula (``"=horizon_days"``) reads it from each followed record.
    lead_days: int | str = 0
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

    @field_validator("lead_days")
    @classmethod
    def _lead(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 0 <= value <= 3_660:
            raise ValueError(f"{value} must be between 0 and 3660")
        if isinstance(value, str) and (not value.startswith("=") or not value[1:].strip()):
            raise ValueError(f"{value!r} must be a number or a formula starting with '='")
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

    def fires_at(self, due: dt.date, lead_days: int) -> dt.datetime:
        """When the record for ``due`` is created: ``lead_days`` before, at midnight local time."""
        day = due - dt.timedelta(days=lead_days)
        return dt.datetime.combine(day, dt.time(0), tzinfo=self.zone).astimezone(dt.UTC)


#: The ``recurring_plans`` section of a manifest (docs/recurrence.md).
SECTION = Section("recurring_plans", PlanDecl)
