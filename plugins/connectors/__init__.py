"""Connectors to the systems Chinese companies already run, each against its published protocol.

Every vendor package here (``wecom``, ``dingtalk``, ``kingdee``, ``yonyou``, ``sap``,
``email``, ``objectstore``) is a pure protocol layer: it imports nothing from Qiao and takes
the HTTP client, the token store, the clock, the sleep function and the call-record sink it
needs by injection (see :mod:`qiao.plugins.connectors.common`), so it can be tested against
local servers that speak each vendor's protocol.

This module is the plugin that wires them into a deployment, on ``qiao.api`` only:
connector records with write-only secrets, the sync log, shared tokens (:mod:`.host`),
WeCom and DingTalk notification channels (:mod:`.channels`), sync jobs run by the worker
(:mod:`.jobs`), callback routes (:mod:`.callbacks`), GraphQL and ``qiao connector``.
See docs/connectors/README.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qiao.api import EntityDef, NotificationChannel, hookimpl
from qiao.plugins.connectors import channels, settings

QIAO_DEPENDS = ("crm",)
MANIFEST = Path(__file__).with_name("entities.yaml")


@hookimpl
def qiao_entity_manifests() -> list[Path]:
    return [MANIFEST]


@hookimpl(entities=["connector"])
def qiao_before_record_write(
    entity: EntityDef, operation: str, values: dict[str, Any], existing: dict[str, Any] | None
) -> None:
    if operation == "delete":
        return
    merged = {**(existing or {}), **values}
    settings.check(str(merged.get("vendor")), merged.get("settings"))


@hookimpl
def qiao_notification_channels() -> list[NotificationChannel]:
    return [channels.WeComChannel(), channels.DingTalkChannel()]
