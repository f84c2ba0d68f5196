"""The {{ cookiecutter.name }} template: data in template.yaml, entities.yaml and demo.yaml.

This module only hands that data to Qiao's hooks (Qiao's docs/templates.md). Behaviour
that data cannot say goes here too, as hook implementations importing only qiao.api.
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
