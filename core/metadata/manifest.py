"""Manifest files: entities and extensions declared as YAML data.

The core's standard objects, plugins and vertical templates all declare their
entities in this one format (see docs/manifest.md). Loading checks every
declaration and reports each problem with its location in the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from qiao.core.errors import MetadataError
from qiao.core.metadata.model import EntityDef, FieldDef, describe_validation_error
from qiao.core.metadata.registry import Extension
from qiao.core.permissions.rights import Rights

__all__ = ["Manifest", "RoleDecl", "describe_validation_error", "load_manifest", "parse_manifest"]


class ExtensionDecl(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    entity: str
    fields: tuple[FieldDef, ...]


class RoleDecl(BaseModel):
    """A role a plugin or template ships; installed once, then edited by admins as data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str | None = None
    description: str | None = None
    rights: Rights


class Manifest(BaseModel):
    """The contents of one manifest file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entities: tuple[EntityDef, ...] = ()
    extends: tuple[ExtensionDecl, ...] = ()
    roles: tuple[RoleDecl, ...] = ()

    def extensions(self, source: str) -> list[Extension]:
        return [Extension(entity=e.entity, fields=e.fields, source=source) for e in self.extends]


def parse_manifest(data: Any, source: str, where: str) -> Manifest:
    """Validate manifest data; ``source`` becomes the declaring plugin of its entities."""
    if not isinstance(data, dict):
        raise MetadataError(f"{where}: a manifest is a mapping with 'entities' and 'extends'")
    entities = data.get("entities") or []
    if isinstance(entities, list):
        entities = [e | {"source": source} if isinstance(e, dict) else e for e in entities]
    try:
        return Manifest.model_validate({**data, "entities": entities})
    except ValidationError as exc:
        raise MetadataError(f"{where}: {describe_validation_error(exc, data)}") from None


def load_manifest(path: Path, source: str) -> Manifest:
    """Read and validate a YAML manifest file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MetadataError(f"cannot read manifest {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise MetadataError(f"{path}: not valid YAML: {exc}") from None
    return parse_manifest(data, source, str(path))
