"""The {{ cookiecutter.name }} template: data in template.yaml, entities.yaml and demo.yaml.

This module only hands that data to Qiao's hooks (Qiao's docs/templates.md).
"""

from __future__ import annotations

from pathlib import Path

from qiao.core.hookspecs import hookimpl
from qiao.core.metadata.manifest import Manifest
from qiao.core.records.context import WriteContext
from qiao.core.records.service import RecordsService
from qiao.templates_market.package import TemplatePackage

TEMPLATE = TemplatePackage.load(Path(__file__).parent)
QIAO_DEPENDS = TEMPLATE.depends


@hookimpl
def qiao_entity_manifests() -> list[Path | Manifest]:
    return TEMPLATE.manifests()


@hookimpl
def qiao_demo_data(records: RecordsService, context: WriteContext) -> None:
    TEMPLATE.seed_demo(records, context)
