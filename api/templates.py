"""What a template's plugin module imports: the template package (docs/templates.md).

A template is a folder with ``template.yaml``, manifests in the core's format
and demo data; its module loads it and hands it to the hooks::

    from pathlib import Path

    from qiao.api.templates import Template

    TEMPLATE = Template.load(Path(__file__).parent)
    QIAO_DEPENDS = TEMPLATE.depends
    QIAO_VERSION = TEMPLATE.version
    qiao_entity_manifests = TEMPLATE.qiao_entity_manifests
    qiao_demo_data = TEMPLATE.qiao_demo_data
"""

from __future__ import annotations

from qiao.core.market.manifest import Bilingual, TemplateManifest
from qiao.core.market.package import TemplatePackage as Template
from qiao.core.metadata.demo import DemoData, DemoRecord

__all__ = ["Bilingual", "DemoData", "DemoRecord", "Template", "TemplateManifest"]
