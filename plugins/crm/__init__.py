"""The standard CRM objects: accounts, contacts, leads, opportunities, activities,
tickets and products.

Shipped as a plugin that uses only the public hooks, exactly as a vertical
template would, so the hooks stay sufficient for real work.
"""

from __future__ import annotations

from pathlib import Path

from qiao.api import Records, WriteContext, hookimpl
from qiao.plugins.crm import demo

QIAO_DEPENDS = ("core",)
MANIFEST = Path(__file__).with_name("entities.yaml")
ROLES = Path(__file__).with_name("roles.yaml")


@hookimpl
def qiao_entity_manifests() -> list[Path]:
    return [MANIFEST, ROLES]


@hookimpl
def qiao_demo_data(records: Records, context: WriteContext) -> None:
    demo.seed(records, context)
