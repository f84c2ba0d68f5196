"""The ``numbering:`` section of a manifest (docs/numbering.md)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, field_validator

from qiao.core.metadata.sections import Section
from qiao.core.numbering.pattern import NumberPattern

#: Numbers follow the date on Chinese wall clocks unless a declaration names another zone.
DEFAULT_TIMEZONE = "Asia/Shanghai"


class NumberingDecl(BaseModel):
    """Give ``entity.field`` a number from ``pattern`` when a record is created."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entity: str
    field: str
    pattern: str
    #: The counter's name; entities naming the same sequence share its numbers.
    sequence: str | None = None
    #: Whose calendar date picks the year, month or day of the number.
    timezone: str = DEFAULT_TIMEZONE

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        NumberPattern.parse(value)
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
    def parsed(self) -> NumberPattern:
        return NumberPattern.parse(self.pattern)

    @property
    def sequence_name(self) -> str:
        return self.sequence or f"{self.entity}.{self.field}"

    def local_date(self, instant: dt.datetime) -> dt.date:
        """The date of ``instant`` on the wall clocks of the declaration's zone."""
        return instant.astimezone(ZoneInfo(self.timezone)).date()


#: The ``numbering`` section of a manifest (docs/numbering.md).
SECTION = Section("numbering", NumberingDecl)
