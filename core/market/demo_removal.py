"""The demo records a template wrote into tables that stay, taken out when it is purged.

A template's demo seeds records into other plugins' and the core's tables too (its
teams, people, dealers' accounts, products). Left behind by a purge, they would make
installing the template again with its demo fail on its own teams' codes. This runs once
the template's tables are dropped, under the metadata without the template, so only
records of the tables that stay can hold a demo record back. A demo record is found by
the text values the demo gave it and the ids of the demo records found before it; one an
administrator changed since, or that is not found exactly once, stays. One that cannot go
because other records still need it (a restricting relation, a refused delete) stays too:
each deletion runs in its own savepoint, and the plan lists what stayed and why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qiao.core.errors import QiaoError
from qiao.core.metadata.demo import DemoRecord
from qiao.core.metadata.model import FieldType
from qiao.core.packages.plan import Plan
from qiao.core.records.context import Actor, WriteContext

if TYPE_CHECKING:
    from qiao.core.pluginmanager import Plugins


def delete_demo_records(ctx: WriteContext, plugins: Plugins, plugin: str, plan: Plan) -> None:
    """Delete ``plugin``'s demo records in the entities ``ctx`` knows, last seeded first."""
    entities = ctx.catalog.registry.entities
    found: dict[str, str] = {}
    targets: list[tuple[DemoRecord, str]] = []
    for _, data in plugins.demo_data(only=[plugin]):
        for record in data.records:
            if record.entity not in entities:
                continue
            record_id = _find(ctx, record, found)
            if record_id is None:
                continue
            if record.key is not None:
                found[record.key] = record_id
            targets.append((record, record_id))
    deleted = 0
    for record, record_id in reversed(targets):
        try:
            with ctx.connection.begin_nested():
                ctx.records.delete(ctx, record.entity, record_id)
        except QiaoError as exc:
            plan.kept(f"demo {record.entity} {_label(record)}", exc.message)
        else:
            deleted += 1
    if deleted:
        plan.dropped(f"{deleted} demo records in other plugins' tables")


def _find(ctx: WriteContext, record: DemoRecord, found: dict[str, str]) -> str | None:
    """The id of the one record holding the demo record's values, or None."""
    entity = ctx.catalog.entity(record.entity)
    condition: dict[str, Any] = {}
    plain = False
    for name, value in record.values.items():
        field = entity.field(name)
        if field is None or (field.encrypted and field.searchable is None):
            continue
        if field.type is FieldType.RELATION:
            if isinstance(value, str) and value[1:] in found:
                condition[f"{name}_id"] = {"eq": found[value[1:]]}
        elif isinstance(value, str) and not field.formula and not field.rollup:
            condition[name] = {"eq": value}
            plain = True
    if not plain:
        return None
    page = ctx.records.list(
        ctx.connection, record.entity, filter=condition, first=2, actor=Actor.system()
    )
    if len(page.records) != 1:
        return None
    record_id: str = page.records[0]["id"]
    return record_id


def _label(record: DemoRecord) -> str:
    for name in ("code", "username", "name", "sku"):
        if isinstance(record.values.get(name), str):
            return repr(record.values[name])
    return repr(record.key or "")
