"""The built-in ``calendars`` plugin: business calendars as checked records.

Always enabled (``BUILTIN_PLUGINS``). It declares the two calendar entities and
China's national calendar (cn.yaml), checks every calendar write with the same
declarations a manifest uses, and drops the runtime's cached calendars after
a change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from qiao.core.calendars.calendar import BusinessCalendar
from qiao.core.calendars.declaration import CalendarDecl
from qiao.core.calendars.store import calendar_decl, calendars, year_row_decl
from qiao.core.errors import BadUserInput, Conflict
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.model import EntityDef
from qiao.core.records.context import Actor, Source, WriteContext
from qiao.core.runtime import Runtime

HERE = Path(__file__).parent
ENTITIES = ["business_calendar", "calendar_year"]


@hookimpl
def qiao_entity_manifests() -> list[Path]:
    return [HERE / "entities.yaml", HERE / "cn.yaml"]


@hookimpl(trylast=True)
def qiao_business_calendar(runtime: Runtime, name: str) -> BusinessCalendar:
    return calendars(runtime).get(name)


@hookimpl(entities=ENTITIES)
def qiao_before_record_write(
    context: WriteContext,
    entity: EntityDef,
    operation: str,
    values: dict[str, Any],
    existing: dict[str, Any] | None,
) -> None:
    if operation == "delete":
        assert existing is not None
        if entity.name == "business_calendar":
            _refuse_delete(context, existing["name"])
        return
    record = {**(existing or {}), **values}
    if entity.name == "business_calendar":
        _checked(lambda: calendar_decl(record))
        base = record.get("base")
        if base is not None and not _exists(context, base):
            raise BadUserInput(f"base calendar {base!r} does not exist", field="base")
        return
    _checked(lambda: year_row_decl(record))
    calendar = record.get("calendar")
    if not _exists(context, calendar):
        raise BadUserInput(f"no business calendar {calendar!r}", field="calendar")
    name = f"{calendar}/{record.get('year')}"
    if record.get("name") not in (None, name):
        raise BadUserInput(f"a calendar year is named {name!r}", field="name")
    if record.get("name") is None:
        values["name"] = name


@hookimpl(entities=ENTITIES)
def qiao_after_record_write(context: WriteContext) -> None:
    calendars(context.runtime).forget()


def _checked(parse: Any) -> BaseModel:
    try:
        found: BaseModel = parse()
    except ValidationError as exc:
        error = exc.errors()[0]
        where = error["loc"][0] if error["loc"] else None
        detail = error["msg"].removeprefix("Value error, ")
        raise BadUserInput(
            f"{'.'.join(str(p) for p in error['loc'])}: {detail}" if where else detail,
            field=str(where) if where is not None else None,
        ) from None
    return found


def _exists(context: WriteContext, name: Any) -> bool:
    page = context.records.list(
        context.connection,
        "business_calendar",
        filter={"name": {"eq": str(name)}},
        first=1,
        actor=Actor.system(),
    )
    return bool(page.records)


def _refuse_delete(context: WriteContext, name: str) -> None:
    for entity, field in (("calendar_year", "calendar"), ("business_calendar", "base")):
        page = context.records.list(
            context.connection, entity, filter={field: {"eq": name}}, first=1, actor=Actor.system()
        )
        if page.records:
            raise Conflict(
                f"calendar {name!r} is used by {entity} {page.records[0]['name']!r}; "
                "delete that first",
                field="name",
            )


def import_calendars(runtime: Runtime, data: Any, actor: Actor) -> list[str]:
    """Create or update the calendars and years of ``data`` (a ``calendars:`` mapping).

    What ``qiao calendar import`` does; returns a line per record written.
    """
    if not isinstance(data, dict) or set(data) != {"calendars"}:
        raise BadUserInput("a calendar file is a mapping with one key, 'calendars'")
    decls = [
        _checked(lambda item=item: CalendarDecl.model_validate(item)) for item in data["calendars"]
    ]
    done: list[str] = []
    records = runtime.records
    with records.transaction(actor, Source.CLI) as ctx:
        for decl in decls:
            assert isinstance(decl, CalendarDecl)
            for entity, values in decl.records():
                page = records.list(
                    ctx.connection,
                    entity,
                    filter={"name": {"eq": values["name"]}},
                    first=1,
                    actor=actor,
                )
                if page.records:
                    records.update(ctx, entity, page.records[0]["id"], values)
                    done.append(f"updated {entity} {values['name']}")
                else:
                    records.create(ctx, entity, values)
                    done.append(f"created {entity} {values['name']}")
    return done
