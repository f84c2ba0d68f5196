"""A template's manifest, ``template.yaml``: what the market and the installer need to know.

A vertical template is a plugin package whose behaviour is mostly data, in the
shape of an Odoo industry module: this file names it, versions it, describes it
in Chinese and English, lists the plugins it builds on, and points at its
entity manifests (docs/manifest.md) and demo data. Its roles become ``role``
records when the template is installed (:meth:`RoleDecl.to_role`, through the
template plugin's manifests and ``install_roles``). Automations are part of the
format so that templates can declare them now; this version of Qiao checks
their shape and shows them, but does not apply them: the automation rules
engine does not exist yet (docs/templates.md).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qiao.core.errors import MetadataError
from qiao.core.metadata.manifest import RoleDecl as CoreRoleDecl
from qiao.core.metadata.model import Label, check_name, describe_validation_error
from qiao.core.permissions.rights import EntityRights, Rights, Scope

MANIFEST_FILE = "template.yaml"
VERSION_RE = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")


def parse_version(text: str) -> tuple[int, int, int]:
    """``"1.2.3"`` as ``(1, 2, 3)``, so versions compare numerically."""
    match = VERSION_RE.match(text)
    if match is None:
        raise ValueError(f"version {text!r} must be MAJOR.MINOR.PATCH, such as 1.0.0")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Bilingual(_Strict):
    """A title or description a customer reads: both languages are required."""

    en: str = Field(min_length=1, max_length=2000)
    zh_cn: str = Field(alias="zh-CN", min_length=1, max_length=2000)

    def text(self, locale: str = "en") -> str:
        return self.zh_cn if locale.lower().startswith("zh") else self.en


class RoleDecl(_Strict):
    """A role the template ships, with its rights per entity; installed as a ``role`` record."""

    name: str
    label: Label
    #: Entity name -> the letters of the operations allowed: c(reate) r(ead) u(pdate) d(elete).
    rights: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "role")

    @field_validator("rights")
    @classmethod
    def _rights(cls, value: dict[str, str]) -> dict[str, str]:
        for entity, letters in value.items():
            if not letters or set(letters) - set("crud"):
                raise ValueError(f"rights on {entity!r} must be letters of 'crud', not {letters!r}")
        return value

    def to_role(self, template: str) -> CoreRoleDecl:
        """The role in the kernel's format (docs/permissions.md).

        Each letter grants its right on every record of the entity (scope
        ``all``); an administrator narrows it by editing the role record, and
        that edit is kept: installing again never overwrites a role.
        """
        zh, en = self.label.zh_cn, self.label.en
        title = " / ".join(dict.fromkeys(t for t in (zh, en) if t))
        entities = {
            entity: EntityRights(**{_LETTERS[letter]: Scope.ALL for letter in letters})
            for entity, letters in self.rights.items()
        }
        return CoreRoleDecl(
            name=self.name,
            title=title,
            description=f"From the {template} template.",
            rights=Rights(entities=entities),
        )


_LETTERS = {"c": "create", "r": "read", "u": "update", "d": "delete"}


class TriggerDecl(_Strict):
    entity: str
    event: Literal["create", "update", "delete"]


class AutomationDecl(_Strict):
    """An automation the template proposes: a trigger and its actions.

    Declared only: there is no automation rules engine yet to apply it.
    """

    name: str
    label: Label
    when: TriggerDecl
    actions: tuple[dict[str, Any], ...] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "automation")


class TemplateManifest(_Strict):
    """The contents of ``template.yaml``."""

    name: str
    version: str
    title: Bilingual
    description: Bilingual
    depends: tuple[str, ...] = ()
    #: Entity manifest files, relative to the template's folder.
    entities: tuple[str, ...] = ()
    #: Demo data file (docs/templates.md), relative to the template's folder.
    demo: str | None = None
    roles: tuple[RoleDecl, ...] = ()
    automations: tuple[AutomationDecl, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "template")

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        parse_version(value)
        return value

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        return parse_version(self.version)


def load_template_manifest(folder: Path) -> TemplateManifest:
    """Read and check ``folder/template.yaml``; every file it names must exist."""
    path = folder / MANIFEST_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MetadataError(f"cannot read template manifest {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise MetadataError(f"{path}: not valid YAML: {exc}") from None
    try:
        manifest = TemplateManifest.model_validate(data)
    except ValidationError as exc:
        raise MetadataError(f"{path}: {describe_validation_error(exc, data)}") from None
    for name in [*manifest.entities, *([manifest.demo] if manifest.demo else [])]:
        if not (folder / name).is_file():
            raise MetadataError(f"{path}: names {name!r}, which is not in {folder}")
    return manifest
