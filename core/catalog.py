"""One metadata version, with the tables derived from it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Table

from qiao.core.metadata.model import EntityDef, FieldDef
from qiao.core.metadata.registry import Registry
from qiao.core.schema.tables import Tables


@dataclass(frozen=True)
class Catalog:
    """A registry snapshot plus its SQLAlchemy tables; replaced whole on every change."""

    registry: Registry
    tables: Tables

    @classmethod
    def of(cls, registry: Registry) -> Catalog:
        return cls(registry=registry, tables=Tables.of(registry))

    @property
    def version(self) -> int:
        return self.registry.version

    def entity(self, name: str) -> EntityDef:
        return self.registry.entity(name)

    def table(self, name: str) -> Table:
        return self.tables[name]

    def reverse_relation(self, entity: str, name: str) -> tuple[str, FieldDef] | None:
        """The entity and relation field behind ``entity``'s reverse relation ``name``."""
        reverse = self.registry.reverse(entity, name)
        return None if reverse is None else (reverse.entity, reverse.field)
