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


def _checks_writes(context: WriteContext, entity: EntityDef, operation: str) -> bool:
    """Whether writes of ``entity`` may meet a pipeline or a record waiting for approval
    (new records wait for none): asked once per batch."""
    conn = context.connection
    return (
        entity.name in WORKFLOW_ENTITIES
        or store.has_pipelines(conn, entity.name)
        or (operation != "create" and store.has_pending_requests(conn, entity.name))
    )


def _follows_writes(context: WriteContext, entity: EntityDef, operation: str) -> bool:
    """Whether a pipeline or an approval process follows writes of ``entity``."""
    conn = context.connection
    return (
        entity.name in WORKFLOW_ENTITIES
        or store.has_pipelines(conn, entity.name)
        or store.has_processes(conn, entity.name)
    )


@hookimpl(applies=_checks_writes)
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


@hookimpl(applies=_follows_writes)
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
def qiao_graphql_types() -> list[type]:
    # Imported when the schema is built: a command that serves no GraphQL skips strawberry.
    from qiao.core.workflow import graphql

    return graphql.TYPES
