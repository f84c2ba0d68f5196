"""The ``bookings:`` section of a manifest (docs/bookings.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from qiao.core.metadata.sections import Section


class BookingDecl(BaseModel):
    """No two ``entity`` records with one ``key`` may overlap in [``start``, ``end``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entity: str
    #: The field whose equal values may not overlap: a relation (teacher) or a value (room).
    key: str
    start: str
    end: str
    #: A formula on the entity's own fields; records for which it is TRUE take no time.
    ignore_when: str | None = Field(default=None, max_length=2000)
    #: Shown in the error: "王老师 has 高一数学 at that time" reads better with a label.
    message: str | None = Field(default=None, max_length=500)


#: The ``bookings`` section of a manifest (docs/bookings.md).
SECTION = Section("bookings", BookingDecl)
