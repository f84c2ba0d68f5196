"""Rules declared in manifests become records once; administrators own them after that."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from qiao.core.config import Config
from qiao.core.errors import BadUserInput
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.manifest import Manifest, parse_manifest
from qiao.core.records.service import Record
from qiao.core.runtime import Runtime

pytestmark = pytest.mark.storage

DECLARED = parse_manifest(
    {
        "automation_rules": [
            {
                "name": "急单告知工程师",
                "entity": "ticket",
                "description": "紧急工单立即通知全部服务工程师",
                "trigger": {"created": {}},
                "condition": 'priority = "URGENT"',
                "actions": [{"notify": {"roles": ["service_engineer"], "title": "急：{subject}"}}],
            }
        ]
    },
    "service_pack",
    "service_pack.yaml",
)


class ServicePack:
    __name__ = "service_pack"

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest

    @hookimpl
    def qiao_entity_manifests(self) -> list[Manifest]:
        return [self.manifest]


@pytest.fixture
def qiao_extra_plugins(channel_plugin: Any) -> Sequence[Any]:
    return (channel_plugin, ServicePack(DECLARED))


def test_a_declared_rule_is_installed_once_and_edits_win(
    qiao_config: Config,
    qiao_runtime: Runtime,
    rows: Callable[..., list[Record]],
    update: Callable[..., Record],
) -> None:
    (installed,) = rows("automation_rule", name="急单告知工程师")
    assert installed["source"] == "service_pack"
    assert installed["condition"] == 'priority = "URGENT"'
    update("automation_rule", installed["id"], condition='priority = "HIGH"', active=False)
    again = Runtime(qiao_config, extra_plugins=[ServicePack(DECLARED)])
    try:
        again.current()
        again.migrate()
    finally:
        again.close()
    (kept,) = rows("automation_rule", name="急单告知工程师")
    assert (kept["condition"], kept["active"]) == ('priority = "HIGH"', False)


def test_a_bad_declared_rule_stops_the_migration_naming_the_plugin(
    qiao_config: Config, qiao_runtime: Runtime
) -> None:
    broken = parse_manifest(
        {
            "automation_rules": [
                {
                    "name": "坏规则",
                    "entity": "ticket",
                    "trigger": {"created": {}},
                    "condition": "colour = 1",
                    "actions": [{"set": {"priority": "HIGH"}}],
                }
            ]
        },
        "broken_pack",
        "broken_pack.yaml",
    )
    runtime = Runtime(qiao_config, extra_plugins=[ServicePack(broken)])
    try:
        runtime.current()
        with pytest.raises(BadUserInput) as caught:
            runtime.migrate()
    finally:
        runtime.close()
    assert "plugin 'service_pack' declares the automation_rule '坏规则'" in caught.value.message
    assert "colour" in caught.value.message
    assert caught.value.field == "condition"
