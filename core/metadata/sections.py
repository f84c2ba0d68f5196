"""Manifest sections that features own: numbering, calendars, roles, intake forms...

A manifest holds entities, extensions and migrations, which the metadata itself
understands, and one section per feature that declares things in manifests. The
feature owns its section: the model of one item and how an item becomes records.
The core's features are named below as ``module:attribute`` strings, resolved
when a manifest is first read, so the parser imports none of the features that
stand above the metadata and needs no install metadata to find them. A plugin
outside the core adds a section as an entry point of the
``qiao.manifest_sections`` group, whose name is the section's key.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from qiao.core.errors import ConfigurationError

ENTRY_POINT_GROUP = "qiao.manifest_sections"

#: The core's own sections: key and where its :class:`Section` is defined.
CORE_SECTIONS: dict[str, str] = {
    "roles": "qiao.core.permissions.roles:SECTION",
    "calendars": "qiao.core.calendars.declaration:SECTION",
    "automation_rules": "qiao.core.metadata.manifest:AUTOMATION_RULES",
    "pipelines": "qiao.core.metadata.manifest:PIPELINES",
    "approval_processes": "qiao.core.metadata.manifest:APPROVAL_PROCESSES",
    "consent_rules": "qiao.core.privacy.rules:CONSENT_SECTION",
    "retention_rules": "qiao.core.privacy.rules:RETENTION_SECTION",
    "intake_forms": "qiao.core.intake.forms:SECTION",
    "document_templates": "qiao.core.documents.templates:SECTION",
    "numbering": "qiao.core.numbering.declaration:SECTION",
    "bookings": "qiao.core.bookings.declaration:SECTION",
    "recurring_plans": "qiao.core.recurrence.declaration:SECTION",
}

D = TypeVar("D", bound=BaseModel)
#: ``(entity, values)`` of a record a manifest declares.
DeclaredRecord = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Section(Generic[D]):
    """One manifest key whose value is a list of ``item`` declarations.

    With ``entity``, each item becomes a record of that entity, found by its
    ``name`` and kept in step with the manifest (see
    :mod:`qiao.core.packages.declared`); such records define behaviour on the
    entity their own ``entity`` value names. ``records`` replaces that when an
    item makes other records (a role's rights, a calendar and its years).
    Records of a lower ``rank`` are applied first, so roles and calendars exist
    before the declarations that name them.
    """

    key: str
    item: type[D]
    entity: str | None = None
    records: Callable[[D], list[DeclaredRecord]] | None = None
    rank: int = 1

    def declared_records(self, item: D) -> list[DeclaredRecord]:
        """The records one item of the section makes."""
        if self.records is not None:
            return self.records(item)
        if self.entity is None:
            return []
        return [(self.entity, item.model_dump(mode="json"))]


def _resolve(where: str) -> object:
    module, _, attribute = where.partition(":")
    return getattr(import_module(module), attribute)


@functools.cache
def installed() -> tuple[Section[Any], ...]:
    """Every section the core and the installed plugins name, in the order their records apply."""
    named = [(key, where, "the core") for key, where in CORE_SECTIONS.items()]
    named += [
        (ep.name, ep.value, f"entry point {ep.name!r} of {ENTRY_POINT_GROUP}")
        for ep in entry_points(group=ENTRY_POINT_GROUP)
    ]
    found: dict[str, Section[Any]] = {}
    origins: dict[str, str] = {}
    for key, where, origin in named:
        section = _resolve(where)
        if not isinstance(section, Section) or section.key != key:
            raise ConfigurationError(f"{where} named by {origin} is not the Section of {key!r}")
        if found.get(key) is section:
            continue  # install metadata written before the core named this section itself
        if key in found:
            raise ConfigurationError(
                f"manifest section {key!r} is declared twice: by {origins[key]} and by {origin}"
            )
        found[key] = section
        origins[key] = origin
    return tuple(sorted(found.values(), key=lambda s: (s.rank, s.key)))


def definition_entities() -> tuple[str, ...]:
    """The entities whose records a section declares per item (automation rules, forms...)."""
    return tuple(s.entity for s in installed() if s.entity is not None and s.records is None)
