"""The standard CRM objects: accounts, contacts, leads, opportunities, activities,
tickets and products.

Shipped as a plugin that uses only the public hooks, exactly as a vertical
template would, so the hooks stay sufficient for real work: its entities and
roles are manifests, its demo data a YAML file.
"""

from __future__ import annotations

from pathlib import Path

from qiao.api import hookimpl

QIAO_DEPENDS = ("core",)
HERE = Path(__file__).parent
MANIFESTS = (HERE / "entities.yaml", HERE / "roles.yaml")
DEMO = HERE / "demo.yaml"


@hookimpl
def qiao_entity_manifests() -> list[Path]:
    return list(MANIFESTS)


@hookimpl
def qiao_demo_data() -> list[Path]:
    return [DEMO]
