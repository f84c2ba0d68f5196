"""The built-in ``workflow`` plugin: pipelines and approvals on every write.

Always enabled (``BUILTIN_PLUGINS``) and wired through the ordinary write
hooks, so no writer (GraphQL, import, automation) can move a record past its
pipeline or change a record that waits for approval.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from qiao.core.automation.actions import register_approval_starter
from qiao.core.errors import BadUserInput
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.model import EntityDef
from qiao.core.records.context import WriteContext
from qiao.core.workflow import approvals, pipelines, store
from qiao.core.workflow.approvers import check_named
from qiao.core.workflow.definitions import (
    WORKFLOW_ENTITIES,
    check_actions,
    merged,
    parse_approval_process,
    parse_pipeline,
)

if TYPE_CHECKING:
    pass

MANIFEST = Path(__file__).with_name("entities.yaml")

# Rules' start_approval actions submit through the approvals this package owns.
register_approval_starter(approvals.start_approval)


@hookimpl
def qiao_entity_manifests() -> list[Path]:
    return [MANIFEST]


@hookimpl
def qiao_before_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    values: dict[str, Any],
    existing: dict[str, Any] | None,
) -> None:
    if entity.name in WORKFLOW_ENTITIES:
        if entity.name in {"pipeline", "approval_process"} and operation != "delete":
            _check_definition(context, entity.name, merged(values, existing))
        return
    approvals.check_unlocked(context, entity, operation, existing)
    pipelines.check_write(context, entity, operation, values, existing)


@hookimpl
def qiao_before_records_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    values: list[dict[str, Any]],
    existing: list[dict[str, Any] | None],
) -> None:
    """:func:`qiao_before_record_write` row by row, unless the batch creates records that
    no pipeline follows: new records wait for no approval, so nothing is checked."""
    if (
        operation == "create"
        and entity.name not in WORKFLOW_ENTITIES
        and not store.has_pipelines(context.connection, entity.name)
    ):
        return
    for row, stored in zip(values, existing, strict=True):
        qiao_before_record_write(context, entity, operation, row, stored)


def _check_definition(context: WriteContext, name: str, record: dict[str, Any]) -> None:
    catalog = context.catalog
    roles = catalog.table("role")
    names = {n for (n,) in context.connection.execute(select(roles.c.name))}
    if name == "approval_process":
        process = parse_approval_process(catalog, record)
        check_named(context.connection, catalog, process)
        check_actions(catalog, process, names.__contains__)
        return
    spec = parse_pipeline(catalog, record)
    check_actions(catalog, spec, names.__contains__)
    t = catalog.table("pipeline")
    clash = context.connection.execute(
        select(t.c.name).where(
            t.c.entity == spec.entity,
            t.c.field == spec.field,
            t.c.active.is_(True),
            t.c.id != record.get("id"),
        )
    ).first()
    if clash is not None and record.get("active", True):
        raise BadUserInput(
            f"{spec.entity}.{spec.field} already follows the active pipeline {clash.name}",
            field="field",
        )


@hookimpl
def qiao_after_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    record: dict[str, Any],
    changes: dict[str, tuple[Any, Any]],
) -> None:
    if entity.name in WORKFLOW_ENTITIES:
        if entity.name in {"pipeline", "approval_process"}:
            store.forget()
        return
    pipelines.record_move(context, entity, operation, record, changes)
    approvals.auto_submit(context, entity, operation, record, changes)


@hookimpl
def qiao_after_records_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    records: list[dict[str, Any]],
    changes: list[dict[str, tuple[Any, Any]]],
) -> None:
    """:func:`qiao_after_record_write` record by record, unless no pipeline follows the
    entity and no approval process watches it (asked once for the batch)."""
    conn = context.connection
    if (
        entity.name not in WORKFLOW_ENTITIES
        and not store.has_pipelines(conn, entity.name)
        and not store.has_processes(conn, entity.name)
    ):
        return
    for record, changed in zip(records, changes, strict=True):
        qiao_after_record_write(context, entity, operation, record, changed)


@hookimpl
def qiao_graphql_types() -> list[type]:
    # Imported when the schema is built: a command that serves no GraphQL skips strawberry.
    from qiao.core.workflow import graphql

    return graphql.TYPES
