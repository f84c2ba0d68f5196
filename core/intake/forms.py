"""Intake forms as a template declares them, and read back from their records."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, select

from qiao.core.catalog import Catalog
from qiao.core.metadata.sections import Section


class IntakeFormDecl(BaseModel):
    """A public form that creates records of ``entity`` from the ``fields`` people fill in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    title: str
    description: str | None = None
    entity: str
    fields: tuple[str, ...] = Field(min_length=1)
    prefill: str | None = None
    link_required: bool = False
    defaults: dict[str, Any] = Field(default_factory=dict)
    actor: str
    allowed_origins: tuple[str, ...] = ()
    rate_limit_per_minute: int = Field(default=10, ge=1, le=10_000)
    active: bool = True


class IntakeForm(IntakeFormDecl):
    """A stored form: the declaration plus the secret its links are signed with."""

    secret: str


def find_form(conn: Connection, catalog: Catalog, name: str) -> IntakeForm | None:
    """The active form called ``name``, or None."""
    table = catalog.table("intake_form")
    row = conn.execute(select(table).where(table.c.name == name, table.c.active.is_(True))).first()
    if row is None:
        return None
    keys = IntakeForm.model_fields
    return IntakeForm.model_validate(
        {k: v for k, v in row._mapping.items() if k in keys and v is not None}
    )


#: The ``intake_forms`` section of a manifest (docs/intake.md).
SECTION = Section("intake_forms", IntakeFormDecl, entity="intake_form")
