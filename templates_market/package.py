"""What a template's plugin module is made of: its manifest, entity files and demo data.

Every template, the four shipped here and those made with ``qiao template new``,
is a folder holding ``template.yaml`` and a three-line plugin module that hands
this class's answers to the hooks. Keeping the behaviour here keeps templates
data-only, and lets the installer seed one template's demo data without
calling every plugin's hook.

Demo data is a YAML file: ``records``, each with an ``entity``, its ``values``
and an optional ``key``; a value written ``"@key"`` is the id of the record
seeded earlier under that key. Records are written through the records
service, so validation and the write hooks apply as to any other write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection

from qiao.core.errors import Conflict, MetadataError
from qiao.core.hookspecs import hookimpl
from qiao.core.metadata.manifest import Manifest
from qiao.core.metadata.model import describe_validation_error
from qiao.core.records.context import WriteContext
from qiao.core.records.service import RecordsService
from qiao.templates_market.manifest import TemplateManifest, load_template_manifest


class DemoRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    entity: str
    key: str | None = None
    values: dict[str, Any]


class DemoData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    records: tuple[DemoRecord, ...] = Field(min_length=1)


@dataclass(frozen=True)
class TemplatePackage:
    """A template's folder, read once when its plugin module is imported."""

    folder: Path
    manifest: TemplateManifest

    @classmethod
    def load(cls, folder: Path) -> TemplatePackage:
        return cls(folder, load_template_manifest(folder))

    @property
    def depends(self) -> tuple[str, ...]:
        """For the module's ``QIAO_DEPENDS``: the manifest is the one place it is written."""
        return self.manifest.depends

    def entity_manifests(self) -> list[Path]:
        return [self.folder / name for name in self.manifest.entities]

    def roles_manifest(self) -> Manifest | None:
        """The template's roles as a kernel manifest, or None when it declares none."""
        if not self.manifest.roles:
            return None
        return Manifest(roles=tuple(r.to_role(self.manifest.name) for r in self.manifest.roles))

    def manifests(self) -> list[Path | Manifest]:
        """For ``qiao_entity_manifests``: the entity files, and the roles that
        ``qiao migrate`` installs as ``role`` records (once; an existing role of
        the same name, perhaps edited by an administrator, is left as it is)."""
        roles = self.roles_manifest()
        return [*self.entity_manifests(), *([roles] if roles else [])]

    # Each template module exposes these two as its hook implementations, so the
    # four templates (and every generated one) share one definition.

    @hookimpl
    def qiao_entity_manifests(self) -> list[Path | Manifest]:
        return self.manifests()

    @hookimpl
    def qiao_demo_data(self, records: RecordsService, context: WriteContext) -> None:
        self.seed_demo(records, context)

    @cached_property
    def demo(self) -> DemoData | None:
        if self.manifest.demo is None:
            return None
        path = self.folder / self.manifest.demo
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            return DemoData.model_validate(data)
        except yaml.YAMLError as exc:
            raise MetadataError(f"{path}: not valid YAML: {exc}") from None
        except ValidationError as exc:
            raise MetadataError(f"{path}: {describe_validation_error(exc, data)}") from None

    def demo_present(self, records: RecordsService, conn: Connection) -> bool:
        """Whether the first demo record is in the database already."""
        if self.demo is None:
            return False
        first = self.demo.records[0]
        plain = {
            name: {"eq": value}
            for name, value in first.values.items()
            if isinstance(value, str) and not value.startswith("@")
        }
        return bool(records.list(conn, first.entity, filter=plain, first=1).records)

    def seed_demo(self, records: RecordsService, context: WriteContext) -> None:
        """Write the demo records in ``context``'s transaction; a second run is refused."""
        if self.demo is None:
            return
        if self.demo_present(records, context.connection):
            raise Conflict(
                f"the {self.manifest.name} demo data is there already (it can be seeded once)"
            )
        ids: dict[str, str] = {}
        for record in self.demo.records:
            values = {name: _resolve(value, ids) for name, value in record.values.items()}
            created = records.create(context, record.entity, values)
            if record.key is not None:
                ids[record.key] = created["id"]


def _resolve(value: Any, ids: Mapping[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("@"):
        try:
            return ids[value[1:]]
        except KeyError:
            raise MetadataError(f"demo data refers to {value!r}, seeded nowhere before") from None
    return value
