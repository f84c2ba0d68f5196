"""The built-in ``automation`` plugin: rules, their timers and runs, notifications.

Always enabled (``BUILTIN_PLUGINS``). Its hooks check a rule when it is
written, keep time-based rules' timers in step with the records they watch,
run rules in workers, deliver notifications through the channels plugins offer
and let users read their own notifications over GraphQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qiao.core.automation import engine, timing, webhook_calls
from qiao.core.automation.channels import channel_handler
from qiao.core.automation.definitions import Trigger, check_rule
from qiao.core.automation.rules import role_names, rules_of
from qiao.core.calendars.store import calendars
from qiao.core.events.model import EventHandler
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.model import EntityDef
from qiao.core.records.context import WriteContext

if TYPE_CHECKING:
    from qiao.core.runtime import Runtime

QIAO_DEPENDS = ("core", "events")
MANIFEST = Path(__file__).with_name("entities.yaml")
RULE = "automation_rule"


@hookimpl
def qiao_entity_manifests() -> list[Path]:
    return [MANIFEST]


@hookimpl
def qiao_startup(runtime: Runtime) -> None:
    # The events fan-out asks the rule caches of started runtimes which entities rules
    # watch; a process that only runs workers (``qiao worker``) writes nothing that would
    # make the cache, and without it every event would pass the engine by.
    rules_of(runtime)


@hookimpl(entities=[RULE])
def qiao_before_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    values: dict[str, Any],
    existing: dict[str, Any] | None,
) -> None:
    """A rule is checked whole against the metadata in force whenever it is written."""
    if operation == "delete":
        return
    rule = {**(existing or {}), **values}
    catalog = context.catalog
    roles = role_names(context.connection, catalog)
    check_rule(
        catalog,
        rule.get("entity") or "",
        rule.get("trigger"),
        rule.get("condition"),
        rule.get("actions"),
        roles.__contains__,
    )
    offset = Trigger.model_validate(rule["trigger"]).offset
    if offset is not None and offset.calendar is not None:
        # Read in the write's transaction: a template install declares its calendars and
        # its rules in one. NotFound names the calendars there are.
        calendars(context.runtime).get(offset.calendar, context.connection)


def _timed(context: WriteContext, entity: EntityDef, operation: str) -> bool:
    """Whether a write of ``entity`` concerns the rules: a rule itself, or a record a
    time-based rule watches."""
    return entity.name == RULE or rules_of(context.runtime).get(context.connection).timed(
        entity.name
    )


@hookimpl(applies=_timed)
def qiao_after_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    record: dict[str, Any],
    changes: dict[str, tuple[Any, Any]],
) -> None:
    runtime = context.runtime
    if entity.name == RULE:
        rules_of(runtime).forget()
        timing.rule_written(context.connection, operation, record)
        return
    rules = rules_of(runtime).get(context.connection)
    if rules.timed(entity.name):
        timing.after_write(
            context.connection,
            rules,
            entity.name,
            operation,
            record,
            changes,
            # Through the write's transaction: a template install declares the calendar it
            # seeds records against in the same one.
            lambda name: calendars(runtime).get(name, context.connection),
        )


@hookimpl
def qiao_event_handlers(runtime: Runtime) -> list[EventHandler]:
    """The rules engine, webhook calls, and one handler per notification channel."""
    channels = [channel_handler(c) for _, c in runtime.plugins.notification_channels()]
    return [*engine.handlers(runtime), *webhook_calls.handlers(), *channels]


@hookimpl
def qiao_graphql_types() -> list[type]:
    # Imported when the schema is built: a command that serves no GraphQL skips strawberry.
    from qiao.core.automation import graphql

    return graphql.TYPES
