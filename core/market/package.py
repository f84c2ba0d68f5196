"""A template's folder as a plugin: its manifests and demo data handed to the hooks.

Every template, the four shipped and those made with ``qiao template new``, is
a folder holding ``template.yaml``, manifest and demo files, and a plugin
module of a few lines that loads this class (through ``qiao.api.templates``)
and hands its answers to the hooks::

    TEMPLATE = Template.load(Path(__file__).parent)
    QIAO_DEPENDS = TEMPLATE.depends
    QIAO_VERSION = TEMPLATE.version
    qiao_entity_manifests = TEMPLATE.qiao_entity_manifests
    qiao_demo_data = TEMPLATE.qiao_demo_data

A template that needs behaviour data cannot say adds hook implementations of
its own to that module, importing only ``qiao.api``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from qiao.core.hookmarkers import hookimpl
from qiao.core.market.manifest import TemplateManifest, load_template_manifest, qiao_version
from qiao.core.metadata.demo import DemoData, load_demo
from qiao.core.metadata.manifest import Manifest, load_manifest


@dataclass(frozen=True)
class TemplatePackage:
    """A template's folder, read when its plugin module is imported."""

    folder: Path
    manifest: TemplateManifest

    @classmethod
    def load(cls, folder: Path) -> TemplatePackage:
        """Read ``folder/template.yaml``; refuse a template this Qiao does not support."""
        manifest = load_template_manifest(folder)
        manifest.check_supported(qiao_version())
        return cls(folder, manifest)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def depends(self) -> tuple[str, ...]:
        """For the module's ``QIAO_DEPENDS``: the manifest is the one place it is written."""
        return self.manifest.depends

    # The package registered as a plugin object itself (tests, embedding programs) answers
    # what the plugin manager asks a plugin module: its name, dependencies and version.

    @property
    def __name__(self) -> str:
        return self.name

    @property
    def QIAO_DEPENDS(self) -> tuple[str, ...]:
        return self.depends

    @property
    def QIAO_VERSION(self) -> str:
        return self.version

    def manifest_paths(self) -> list[Path]:
        return [self.folder / name for name in self.manifest.manifests]

    @cached_property
    def manifests(self) -> tuple[Manifest, ...]:
        """The template's manifests, read and checked once."""
        return tuple(load_manifest(path, self.name) for path in self.manifest_paths())

    @cached_property
    def demo(self) -> DemoData | None:
        if self.manifest.demo is None:
            return None
        return load_demo(self.folder / self.manifest.demo)

    # Each template module exposes these two as its hook implementations, so the
    # four templates (and every generated one) share one definition.

    @hookimpl
    def qiao_entity_manifests(self) -> list[Manifest]:
        return list(self.manifests)

    @hookimpl
    def qiao_demo_data(self) -> list[DemoData]:
        return [self.demo] if self.demo is not None else []
