"""Roles that plugins and templates ship in their manifests (the ``roles`` section)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from qiao.core.metadata.sections import DeclaredRecord, Section
from qiao.core.permissions.rights import Rights


class RoleDecl(BaseModel):
    """A role a plugin or template ships; installed once, then edited by admins as data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str | None = None
    description: str | None = None
    rights: Rights

    def values(self) -> dict[str, Any]:
        """The ``role`` record this declaration makes."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "rights": self.rights.model_dump(mode="json", exclude_defaults=True),
        }

    def records(self) -> list[DeclaredRecord]:
        return [("role", self.values())]


#: The ``roles`` section of a manifest (docs/permissions.md).
SECTION = Section("roles", RoleDecl, records=RoleDecl.records, rank=0)
