"""Manifest files: entities and extensions declared as YAML data.

The core's standard objects, plugins and vertical templates all declare their
entities in this one format (see docs/manifest.md). Loading checks every
declaration and reports each problem with its location in the file.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from qiao.core.errors import MetadataError
from qiao.core.metadata import sections
from qiao.core.metadata.model import EntityDef, FieldDef, describe_validation_error
from qiao.core.metadata.registry import Extension
from qiao.core.metadata.sections import D, DeclaredRecord, Section
from qiao.core.metadata.yamltext import read_yaml

__all__ = [
    "APPROVAL_PROCESSES",
    "AUTOMATION_RULES",
    "PIPELINES",
    "ApprovalProcessDecl",
    "AutomationRuleDecl",
    "Manifest",
    "MigrationDecl",
    "MigrationStep",
    "PipelineDecl",
    "describe_validation_error",
    "load_manifest",
    "parse_manifest",
]


class ExtensionDecl(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    entity: str
    fields: tuple[FieldDef, ...]


class AutomationRuleDecl(BaseModel):
    """A rule a plugin or template ships (docs/automation.md).

    Only its outline is checked here; the trigger, condition and actions are
    checked against the metadata when the rule is installed as a record.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    entity: str
    description: str | None = None
    active: bool = True
    trigger: dict[str, Any]
    condition: str | None = None
    actions: tuple[dict[str, Any], ...]


class PipelineDecl(BaseModel):
    """A pipeline a plugin or template ships (docs/workflow.md); checked when installed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    entity: str
    field: str
    description: str | None = None
    active: bool = True
    initial: tuple[str, ...] = ()
    stages: tuple[dict[str, Any], ...]


class ApprovalProcessDecl(BaseModel):
    """An approval process a plugin or template ships (docs/workflow.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    entity: str
    description: str | None = None
    active: bool = True
    entry_condition: str | None = None
    steps: tuple[dict[str, Any], ...]
    on_submitted: tuple[dict[str, Any], ...] = ()
    on_approved: tuple[dict[str, Any], ...] = ()
    on_rejected: tuple[dict[str, Any], ...] = ()


class RenameField(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    entity: str
    from_: str = Field(alias="from")
    to: str


class MapValues(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    entity: str
    field: str
    values: dict[str, str] = Field(min_length=1)


class Backfill(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    entity: str
    field: str
    formula: str


class MigrationStep(BaseModel):
    """One step of a migration: exactly one of its keys (docs/manifest.md, migrations)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rename_field: RenameField | None = None
    map_values: MapValues | None = None
    backfill: Backfill | None = None

    @model_validator(mode="after")
    def _one(self) -> MigrationStep:
        given = [k for k in ("rename_field", "map_values", "backfill") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("a step has exactly one of rename_field, map_values, backfill")
        return self


class MigrationDecl(BaseModel):
    """What upgrading to ``version`` of the declaring package does to data written before."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    steps: tuple[MigrationStep, ...] = Field(min_length=1)


#: The outlines of rules, pipelines and approval processes; each item is a record
#: checked against the metadata when it is installed.
AUTOMATION_RULES = Section("automation_rules", AutomationRuleDecl, entity="automation_rule")
PIPELINES = Section("pipelines", PipelineDecl, entity="pipeline")
APPROVAL_PROCESSES = Section("approval_processes", ApprovalProcessDecl, entity="approval_process")


class Manifest(BaseModel):
    """The contents of one manifest file.

    Beside entities, extensions and migrations, a manifest holds one list per
    installed section (:mod:`qiao.core.metadata.sections`); :meth:`section`
    reads one, typed by the section's item model.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    entities: tuple[EntityDef, ...] = ()
    extends: tuple[ExtensionDecl, ...] = ()
    migrations: tuple[MigrationDecl, ...] = ()

    def section(self, section: Section[D]) -> tuple[D, ...]:
        """The checked items of ``section`` (none when the manifest omits it)."""
        items: tuple[D, ...] = getattr(self, section.key, ())
        return items

    def extensions(self, source: str) -> list[Extension]:
        return [Extension(entity=e.entity, fields=e.fields, source=source) for e in self.extends]

    def declared_records(self) -> list[DeclaredRecord]:
        """``(entity, values)`` of every record the sections' items make, roles and
        calendars first."""
        return [
            record
            for section in sections.installed()
            for item in self.section(section)
            for record in section.declared_records(item)
        ]


@functools.cache
def _with_sections(installed: tuple[Section[Any], ...]) -> type[Manifest]:
    """The manifest model with a field per installed section, made once."""
    fields: dict[str, Any] = {s.key: (tuple[s.item, ...], ()) for s in installed}  # type: ignore[name-defined]
    return create_model("Manifest", __base__=Manifest, **fields)


def parse_manifest(data: Any, source: str, where: str) -> Manifest:
    """Validate manifest data; ``source`` becomes the declaring plugin of its entities."""
    if not isinstance(data, dict):
        raise MetadataError(f"{where}: a manifest is a mapping with 'entities' and 'extends'")
    entities = data.get("entities") or []
    if isinstance(entities, list):
        entities = [e | {"source": source} if isinstance(e, dict) else e for e in entities]
    try:
        return _with_sections(sections.installed()).model_validate({**data, "entities": entities})
    except ValidationError as exc:
        raise MetadataError(f"{where}: {describe_validation_error(exc, data)}") from None


class _PerEntity(Protocol):
    @property
    def entity(self) -> str: ...


_D = TypeVar("_D", bound=_PerEntity)


def by_entity(declarations: Iterable[_D]) -> dict[str, list[_D]]:
    """Declarations of one manifest section from every plugin, grouped by their entity."""
    found: dict[str, list[_D]] = {}
    for decl in declarations:
        found.setdefault(decl.entity, []).append(decl)
    return found


def load_manifest(path: Path, source: str) -> Manifest:
    """Read and validate a YAML manifest file.

    A runtime reads its plugins' manifests many times while it starts, and every
    runtime of a process reads the same shipped files, so a file is parsed once per
    version: the (frozen) result is kept until its modification time or size changes.
    """
    try:
        stat = path.stat()
    except OSError as exc:
        raise MetadataError(f"cannot read manifest {path}: {exc.strerror}") from None
    return _load_manifest(path, source, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=512)
def _load_manifest(path: Path, source: str, mtime_ns: int, size: int) -> Manifest:
    data = read_yaml(path, "manifest")
    return parse_manifest(data, source, str(path))
