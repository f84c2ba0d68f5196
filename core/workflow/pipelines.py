"""Pipelines at work: checking a state change before it is written, recording it after.

A write that changes a pipeline's state field is checked on the record as it
will be after the write: the move must be one the current stage allows, the
entered stage's required fields must be filled and its guards true. Once
written, the stay that ended is closed (``left_at``, exact seconds in stage,
from the records service's own clock via the record's timestamps) and the new
one opened, in the same transaction.

On-enter actions run in the write's transaction too, not later in a worker:
they are part of entering the stage (setting a field, notifying the new
owner), so a refused action refuses the move and a reader never sees a record
in a stage whose entry actions have not happened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from qiao.core.automation.actions import run_actions
from qiao.core.catalog import Catalog
from qiao.core.errors import BadUserInput
from qiao.core.formula import Clock
from qiao.core.metadata.model import EntityDef
from qiao.core.records.context import WriteContext
from qiao.core.records.service import Record
from qiao.core.workflow import store
from qiao.core.workflow.authority import on_behalf
from qiao.core.workflow.definitions import PipelineSpec, holds


def after_values(
    entity: EntityDef, values: Mapping[str, Any], existing: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The record as it will be after the write, by column (as the records service stores it)."""
    record = dict(existing or {})
    for name, value in values.items():
        field = entity.field(name)
        record[field.column if field is not None else name] = value
    return record


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def check_write(
    ctx: WriteContext,
    entity: EntityDef,
    operation: str,
    values: Mapping[str, Any],
    existing: Mapping[str, Any] | None,
) -> None:
    """Refuse a state change its pipeline does not allow (BAD_USER_INPUT naming the field)."""
    if operation == "delete" or not store.has_pipelines(ctx.connection, entity.name):
        return
    runtime = ctx.runtime
    catalog = runtime.records.catalog
    for spec in store.pipelines(ctx.connection, catalog, entity.name):
        if spec.field not in values:
            continue
        old = existing.get(spec.field) if existing else None
        new = values[spec.field]
        if operation == "update" and new == old:
            continue
        record = after_values(entity, values, existing)
        _check_move(spec, entity, operation, old, new)
        if new is not None:
            clock = Clock(now=runtime.records.clock)
            _check_entry(ctx, catalog, spec, entity, record, new, clock)


def _check_move(spec: PipelineSpec, entity: EntityDef, operation: str, old: Any, new: Any) -> None:
    where = f"{entity.name}.{spec.field}"
    if new is None:
        if old is not None:
            raise BadUserInput(
                f"{where} follows the pipeline {spec.name} and cannot be emptied", field=spec.field
            )
        return
    if new not in spec.stages:
        raise BadUserInput(
            f"{new} is not a stage of the pipeline {spec.name} (stages: {', '.join(spec.stages)})",
            field=spec.field,
        )
    if operation == "create" or old is None:
        if spec.initial and new not in spec.initial:
            raise BadUserInput(
                f"a new {entity.name} starts in {' or '.join(spec.initial)}, not {new} "
                f"(pipeline {spec.name})",
                field=spec.field,
            )
        return
    stage = spec.stages.get(old)
    if stage is not None and new not in stage.next:
        allowed = ", ".join(stage.next) if stage.next else "none: it is a final stage"
        raise BadUserInput(
            f"{where} cannot move from {old} to {new} (pipeline {spec.name}); "
            f"allowed next: {allowed}",
            field=spec.field,
            allowed=list(stage.next),
        )


def _check_entry(
    ctx: WriteContext,
    catalog: Catalog,
    spec: PipelineSpec,
    entity: EntityDef,
    record: Mapping[str, Any],
    state: str,
    clock: Clock,
) -> None:
    stage = spec.stages[state]
    missing = []
    for name in stage.required:
        field = entity.field(name)
        assert field is not None
        if _blank(record.get(field.column)):
            missing.append(name)
    if missing:
        raise BadUserInput(
            f"entering {state} needs {', '.join(missing)} (pipeline {spec.name})",
            field=missing[0],
        )
    for guard, formula in spec.guards.get(state, ()):
        if not holds(ctx.connection, catalog, entity.name, record, formula, clock, spec.field):
            raise BadUserInput(guard.message, field=spec.field, guard=guard.when)


def record_move(
    ctx: WriteContext,
    entity: EntityDef,
    operation: str,
    record: Record,
    changes: Mapping[str, tuple[Any, Any]],
) -> None:
    """Close the stay that ended, open the one that began, run the stage's on-enter actions."""
    if operation == "delete" or not store.has_pipelines(ctx.connection, entity.name):
        return
    runtime = ctx.runtime
    records = runtime.records
    for spec in store.pipelines(ctx.connection, records.catalog, entity.name):
        if spec.field not in changes:
            continue
        old, new = changes[spec.field]
        if new is None:
            continue
        at: dt.datetime = record["created_at"] if operation == "create" else record["updated_at"]
        bookkeeping = on_behalf(ctx)
        history = records.catalog.table("stage_history")
        open_stays = ctx.connection.execute(
            select(history.c.id, history.c.entered_at).where(
                history.c.entity == entity.name,
                history.c.record_id == record["id"],
                history.c.field == spec.field,
                history.c.left_at.is_(None),
            )
        ).all()
        for stay in open_stays:
            seconds = int((at - stay.entered_at).total_seconds())
            records.update(
                bookkeeping,
                "stage_history",
                str(stay.id),
                {"left_at": at, "seconds_in_stage": max(seconds, 0)},
            )
        records.create(
            bookkeeping,
            "stage_history",
            {
                "pipeline": spec.id,
                "entity": entity.name,
                "record_id": record["id"],
                "field": spec.field,
                "from_state": old,
                "to_state": new,
                "entered_at": at,
                "actor": ctx.actor.user_id,
            },
        )
        actions = spec.stages[new].on_enter
        reason = f"pipeline {spec.name}: entered {new}"
        run_actions(bookkeeping, entity.name, record, actions, reason=reason)
