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

import click
from starlette.routing import BaseRoute

from qiao.api import EntityDef, EventHandler, NotificationChannel, Runtime, WriteContext, hookimpl
from qiao.plugins.connectors import (
    approvals,
    callbacks,
    channels,
    cli,
    graphql,
    inbound,
    push,
    settings,
    sync,
)

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


@hookimpl(entities=["connector"])
def qiao_after_record_write(
    context: WriteContext,
    operation: str,
    record: dict[str, Any],
    changes: dict[str, tuple[Any, Any]],
) -> None:
    """A connector made active with a sync interval syncs at once, then on its interval."""
    if operation == "delete" or not record.get("active") or not record.get("sync_minutes"):
        return
    if operation == "create" or "active" in changes or "sync_minutes" in changes:
        sync.request(context, str(record["id"]))


@hookimpl
def qiao_event_handlers() -> list[EventHandler]:
    return [*sync.handlers(), *inbound.handlers(), *approvals.handlers(), *push.handlers()]


@hookimpl
def qiao_notification_channels() -> list[NotificationChannel]:
    return [channels.WeComChannel(), channels.DingTalkChannel(), channels.EmailChannel()]


@hookimpl
def qiao_graphql_types() -> list[type]:
    return graphql.TYPES


@hookimpl
def qiao_routes(runtime: Runtime) -> list[BaseRoute]:
    return callbacks.routes(runtime)


@hookimpl
def qiao_cli_commands() -> list[click.Command]:
    return cli.COMMANDS
