"""A template's ``template.yaml``: what describes it as a package.

A template is a plugin whose content is data: its entities, roles with their
rights and record rules, field rules, validation, automation rules,
pipelines, approval processes and data migrations are manifests in the core's
one format (docs/manifest.md), and its demo data a demo file. This file only
says what the market and the installer need to know of the package: its
name, version, titles and description in Chinese and English, the plugins it
builds on, the Qiao versions it supports, and which manifest and demo files
it ships.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qiao.core.errors import ConfigurationError, MetadataError
from qiao.core.metadata.model import check_name, describe_validation_error
from qiao.core.metadata.yamltext import read_yaml

MANIFEST_FILE = "template.yaml"
VERSION_RE = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
DISTRIBUTION = "qiao-crm"


def parse_version(text: str) -> tuple[int, int, int]:
    """``"1.2.3"`` as ``(1, 2, 3)``, so versions compare numerically."""
    match = VERSION_RE.match(text)
    if match is None:
        raise ValueError(f"version {text!r} must be MAJOR.MINOR.PATCH, such as 1.0.0")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def qiao_version() -> str:
    """The installed Qiao's version."""
    try:
        return distribution_version(DISTRIBUTION)
    except PackageNotFoundError:  # pragma: no cover - Qiao runs from an installed package
        return "0"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Bilingual(_Strict):
    """A title or description a customer reads: both languages are required."""

    en: str = Field(min_length=1, max_length=2000)
    zh_cn: str = Field(alias="zh-CN", min_length=1, max_length=2000)

    def text(self, locale: str = "en") -> str:
        return self.zh_cn if locale.lower().startswith("zh") else self.en


class TemplateManifest(_Strict):
    """The contents of ``template.yaml``."""

    name: str
    version: str
    #: The Qiao versions the template supports, as a version specifier (``>=0.2,<0.3``).
    qiao: str = ""
    title: Bilingual
    description: Bilingual
    depends: tuple[str, ...] = ()
    #: Manifest files in the core's format, relative to the template's folder.
    manifests: tuple[str, ...] = ()
    #: Demo data file (docs/manifest.md), relative to the template's folder.
    demo: str | None = None
    #: Personal fields ("entity.field") a deployment should store encrypted: ``qiao init
    #: --template`` adds them to ``[encryption] fields`` (docs/encryption.md).
    encrypted_fields: tuple[str, ...] = ()

    @field_validator("encrypted_fields")
    @classmethod
    def _encrypted_fields(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            entity, dot, field = name.partition(".")
            if not (entity and dot and field) or "." in field:
                raise ValueError(f'{name!r} is not an "entity.field" name')
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "template")

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        parse_version(value)
        return value

    @field_validator("qiao")
    @classmethod
    def _qiao(cls, value: str) -> str:
        try:
            SpecifierSet(value)
        except InvalidSpecifier:
            raise ValueError(f"{value!r} is not a version specifier such as '>=0.2,<0.3'") from None
        return value

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        return parse_version(self.version)

    def check_supported(self, installed: str) -> None:
        """Refuse a template that does not support the installed Qiao, naming both."""
        if not SpecifierSet(self.qiao).contains(Version(installed), prereleases=True):
            raise ConfigurationError(
                f"template {self.name} {self.version} supports Qiao {self.qiao}; "
                f"this is Qiao {installed}"
            )


def load_template_manifest(folder: Path) -> TemplateManifest:
    """Read and check ``folder/template.yaml``; every file it names must exist."""
    path = folder / MANIFEST_FILE
    data = read_yaml(path, "template manifest")
    try:
        manifest = TemplateManifest.model_validate(data)
    except ValidationError as exc:
        raise MetadataError(f"{path}: {describe_validation_error(exc, data)}") from None
    for name in [*manifest.manifests, *([manifest.demo] if manifest.demo else [])]:
        if not (folder / name).is_file():
            raise MetadataError(f"{path}: names {name!r}, which is not in {folder}")
    return manifest
