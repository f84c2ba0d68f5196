"""Connectors to the systems Chinese companies already run, each against its published protocol.

Every vendor package here (``wecom``, ``dingtalk``, ``kingdee``, ``yonyou``, ``sap``,
``email``, ``objectstore``) is a pure protocol layer: it imports nothing from Qiao and takes
the HTTP client, the token store, the clock, the sleep function and the call-record sink it
needs by injection (see :mod:`qiao.plugins.connectors.common`), so it can be tested against
local servers that speak each vendor's protocol.

This module is the plugin that wires them into a deployment, on ``qiao.api`` only:
connector records with write-only secrets, the sync log, shared tokens (:mod:`.host`),
WeCom and DingTalk notification channels (:mod:`.channels`), sync jobs run by the worker
(:mod:`.jobs`), callback routes (:mod:`.callbacks`), GraphQL and ``qiao connector``, and
files kept with records in the object store (:mod:`.attachments`).
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
    inbound,
    push,
    settings,
    sync,
)
from qiao.plugins.connectors.attachments import routes as attachments_routes
from qiao.plugins.connectors.attachments import service as attachments_service
from qiao.plugins.connectors.attachments import stores

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
    vendor = str(merged.get("vendor"))
    settings.check(vendor, merged.get("settings"))
    if vendor == stores.VENDOR:
        stores.check(merged.get("settings") or {})


@hookimpl
def qiao_after_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    record: dict[str, Any],
    changes: dict[str, tuple[Any, Any]],
) -> None:
    """Any record deleted takes its attachments along; a connector made active with a sync
    interval syncs at once, then on its interval."""
    if operation == "delete":
        attachments_service.record_deleted(context, entity.name, str(record["id"]))
        return
    if entity.name != "connector" or not record.get("active") or not record.get("sync_minutes"):
        return
    if operation == "create" or "active" in changes or "sync_minutes" in changes:
        sync.request(context, str(record["id"]))


@hookimpl
def qiao_event_handlers() -> list[EventHandler]:
    return [
        *sync.handlers(),
        *inbound.handlers(),
        *approvals.handlers(),
        *push.handlers(),
        *attachments_service.handlers(),
    ]


@hookimpl
def qiao_notification_channels() -> list[NotificationChannel]:
    return [channels.WeComChannel(), channels.DingTalkChannel(), channels.EmailChannel()]


@hookimpl
def qiao_graphql_types() -> list[type]:
    # Imported when the schema is built: a command that serves no GraphQL skips strawberry.
    from qiao.plugins.connectors import graphql
    from qiao.plugins.connectors.attachments import graphql as attachments_graphql

    return [*graphql.TYPES, *attachments_graphql.TYPES]


@hookimpl
def qiao_routes(runtime: Runtime) -> list[BaseRoute]:
    return [*callbacks.routes(runtime), *attachments_routes.routes(runtime)]


@hookimpl
def qiao_cli_commands() -> list[click.Command]:
    return cli.COMMANDS
