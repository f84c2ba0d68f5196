"""The built-in ``recurrence`` plugin: recurring plans from manifests, run by the workers.

Always enabled (``BUILTIN_PLUGINS``). Writes of a followed entity arm its
timers; writes completing a created record reschedule plans that count from
completion; the worker's handler creates each occurrence once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qiao.core.errors import ConfigurationError
from qiao.core.events import timers
from qiao.core.events.model import EventHandler
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.model import EntityDef
from qiao.core.records.context import WriteContext
from qiao.core.records.host import RecordsHost
from qiao.core.recurrence.declaration import SECTION, PlanDecl
from qiao.core.recurrence.plans import Plan, completed, handler
from qiao.core.runtime import Runtime

_STATE = "recurrence:declarations"


def declarations(runtime: RecordsHost) -> list[PlanDecl]:
    """Every plan the runtime's plugins declare (read once)."""

    def read(rt: Runtime) -> list[PlanDecl]:
        return [
            decl
            for _plugin, manifest in rt.plugins.manifests()
            for decl in manifest.section(SECTION)
        ]

    return runtime.state(_STATE, read)


def plans(runtime: RecordsHost) -> dict[str, Plan]:
    """The plans checked against the current metadata, by name."""
    catalog = runtime.current()
    return {decl.name: Plan.of(catalog, decl) for decl in declarations(runtime)}


@hookimpl
def qiao_entity_manifests() -> list[Path]:
    return [Path(__file__).with_name("entities.yaml")]


@hookimpl
def qiao_startup(runtime: Runtime) -> None:
    names = [decl.name for decl in declarations(runtime)]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"two recurring plans share a name: {sorted(names)}")
    try:
        runtime.current()
    except ConfigurationError:  # no tables yet: 'qiao migrate' runs before any record
        return
    plans(runtime)


def _watched(context: WriteContext, entity: EntityDef, operation: str) -> bool:
    return any(_watching(context.runtime, entity.name))


@hookimpl(applies=_watched)
def qiao_after_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    record: dict[str, Any],
    changes: dict[str, tuple[Any, Any]],
) -> None:
    followed, finishing = _watching(context.runtime, entity.name)
    if not followed and not finishing:
        return
    checked = plans(context.runtime)
    for decl in followed:
        plan = checked[decl.name]
        if operation == "delete":
            timers.cancel(context.connection, entity.name, record["id"], plan.timer)
        elif operation == "create" or {decl.anchor, decl.until} & set(changes):
            plan.arm(context, record)
    for decl in finishing:
        assert decl.reschedule_from is not None
        change = changes.get(decl.reschedule_from)
        if operation == "update" and change is not None and change[1] is not None:
            completed(context, [checked[decl.name]], record, change[1])


def _watching(runtime: RecordsHost, entity: str) -> tuple[list[PlanDecl], list[PlanDecl]]:
    """The plans following ``entity``'s records, and those rescheduled when one of the
    records they create is finished."""
    decls = declarations(runtime)
    followed = [d for d in decls if d.entity == entity]
    finishing = [d for d in decls if d.create.entity == entity and d.reschedule_from]
    return followed, finishing


@hookimpl
def qiao_event_handlers(runtime: Runtime) -> list[EventHandler]:
    return [handler(runtime, lambda: plans(runtime))]
