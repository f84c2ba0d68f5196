"""Manifest sections that features own: numbering, calendars, roles, intake forms...

A manifest holds entities, extensions and migrations, which the metadata itself
understands, and one section per feature that declares things in manifests. The
feature owns its section: the model of one item and how an item becomes records.
Features name their sections as entry points of the ``qiao.manifest_sections``
group, so the manifest parser knows every installed section without importing
the features, which stand above the metadata.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from qiao.core.errors import ConfigurationError

ENTRY_POINT_GROUP = "qiao.manifest_sections"

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


@functools.cache
def installed() -> tuple[Section[Any], ...]:
    """Every section the installed features name, in the order their records are applied."""
    found: dict[str, Section[Any]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        section = ep.load()
        if not isinstance(section, Section) or section.key != ep.name:
            raise ConfigurationError(
                f"entry point {ep.name!r} of {ENTRY_POINT_GROUP} is not the Section of that key"
            )
        if section.key in found:
            raise ConfigurationError(f"manifest section {section.key!r} is declared twice")
        found[section.key] = section
    return tuple(sorted(found.values(), key=lambda s: (s.rank, s.key)))


def definition_entities() -> tuple[str, ...]:
    """The entities whose records a section declares per item (automation rules, forms...)."""
    return tuple(s.entity for s in installed() if s.entity is not None and s.records is None)
