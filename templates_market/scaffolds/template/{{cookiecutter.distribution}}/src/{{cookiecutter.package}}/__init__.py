"""The {{ cookiecutter.name }} template: data in template.yaml, entities.yaml and demo.yaml.

This module only hands that data to Qiao's hooks (Qiao's docs/templates.md).
"""

from __future__ import annotations

from pathlib import Path

from qiao.templates_market.package import TemplatePackage

TEMPLATE = TemplatePackage.load(Path(__file__).parent)
QIAO_DEPENDS = TEMPLATE.depends
# Pluggy finds the template's hook implementations among this module's attributes.
qiao_entity_manifests = TEMPLATE.qiao_entity_manifests
qiao_demo_data = TEMPLATE.qiao_demo_data
