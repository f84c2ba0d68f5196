"""Dealer networks of equipment makers: tiers, rebate agreements and purchase lines.

The template is data: template.yaml, its entities and demo data. This module
hands them to the hooks (docs/templates.md).
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
