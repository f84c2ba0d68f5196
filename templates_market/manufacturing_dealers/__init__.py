"""Dealer networks of equipment makers: tiers, rebate agreements and purchase lines.

The template is data: template.yaml, its entities and demo data. This module
hands them to the hooks (docs/templates.md).
"""

from __future__ import annotations

from pathlib import Path

from qiao.api.templates import Template

TEMPLATE = Template.load(Path(__file__).parent)
QIAO_DEPENDS = TEMPLATE.depends
QIAO_VERSION = TEMPLATE.version
# Pluggy finds the template's hook implementations among this module's attributes.
qiao_entity_manifests = TEMPLATE.qiao_entity_manifests
qiao_demo_data = TEMPLATE.qiao_demo_data
