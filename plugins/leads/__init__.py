"""Lead capture: web forms, signed webhooks and spreadsheet imports; de-duplication,
intent tagging, routing, first-response and conversion figures.

A built-in plugin that uses only the public hooks, as a third party's would.
See docs/leads.md.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from starlette.routing import BaseRoute

from qiao.api import EntityDef, EventHandler, Runtime, WriteContext, hookimpl
from qiao.plugins.leads import cli, hookspecs, intake, lifecycle, routing, sla
from qiao.plugins.leads.inbound import channels, routes
from qiao.plugins.leads.intent import DEFAULT_DICTIONARY, KeywordClassifier

QIAO_DEPENDS = ("crm",)
QIAO_HOOKSPECS = hookspecs
MANIFEST = Path(__file__).with_name("entities.yaml")


@functools.cache
def default_classifier() -> KeywordClassifier:
    """The manufacturing dictionary, built once per process (segmenter start-up takes ~1 s)."""
    return KeywordClassifier.from_file(DEFAULT_DICTIONARY)


@hookimpl
def qiao_entity_manifests() -> list[Path]:
    return [MANIFEST]


@hookimpl
def qiao_startup(runtime: Runtime) -> None:
    default_classifier()


@hookimpl(entities=["lead", "account", "lead_channel"])
def qiao_before_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    values: dict[str, Any],
    existing: dict[str, Any] | None,
) -> None:
    if entity.name == "lead":
        if operation == "create":
            intake.hold(context.connection)
        lifecycle.set_company_key(values)
        lifecycle.before_lead_write(context, operation, values, existing)
    elif entity.name == "account" and operation != "delete":
        lifecycle.before_account_write(values)
    elif entity.name == "lead_channel" and operation == "create":
        channels.complete(values)


@hookimpl(entities=["lead", "account", "lead_channel"])
def qiao_before_records_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    values: list[dict[str, Any]],
    existing: list[dict[str, Any] | None],
) -> None:
    """A batch of leads is looked up for duplicates together, then routed lead by lead,
    each decision counted in before the next."""
    if entity.name != "lead" or operation != "create":
        for row, stored in zip(values, existing, strict=True):
            qiao_before_record_write(context, entity, operation, row, stored)
        return
    intake.hold(context.connection)
    duplicates = lifecycle.batch_duplicates(context, values)
    with routing.batch(context.connection, context.catalog) as router:
        for row, matches in zip(values, duplicates, strict=True):
            lifecycle.before_lead_write(context, operation, row, None, matches)
            router.decided(row)


@hookimpl(entities=["lead", "activity"])
def qiao_after_records_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    records: list[dict[str, Any]],
    changes: list[dict[str, tuple[Any, Any]]],
) -> None:
    """The batch's first-touch timers set together; the routing state counted it already."""
    if entity.name == "lead" and operation == "create":
        sla.after_leads_written(context, operation, records, changes)
        return
    for record, changed in zip(records, changes, strict=True):
        qiao_after_record_write(context, entity, operation, record, changed)


@hookimpl(entities=["lead", "activity"])
def qiao_after_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    record: dict[str, Any],
    changes: dict[str, tuple[Any, Any]],
) -> None:
    if entity.name == "activity" and operation != "delete":
        lifecycle.after_activity_write(context, record)
    elif entity.name == "lead":
        if operation == "create":
            routing.stored(context.connection, record)
        sla.after_lead_write(context, operation, record, changes)


@hookimpl
def qiao_event_handlers() -> list[EventHandler]:
    return sla.handlers()


@hookimpl
def qiao_classify_lead(text: str) -> tuple[int, Sequence[str]]:
    result = default_classifier().classify(text)
    return result.score, result.tags


@hookimpl
def qiao_graphql_types() -> list[type]:
    # Imported when the schema is built: a command that serves no GraphQL skips strawberry.
    from qiao.plugins.leads import graphql

    return graphql.TYPES


@hookimpl
def qiao_routes(runtime: Runtime) -> list[BaseRoute]:
    return routes.routes(runtime)


@hookimpl
def qiao_cli_commands() -> list[click.Command]:
    return cli.COMMANDS
