"""Taking a template out of a database, for ``qiao template uninstall``.

Uninstalling must not lose data by surprise: :func:`row_counts` tells what the
template's tables hold, and the command refuses unless told to purge it (and
then writes a backup first). The removal itself is one transaction, so either
every table goes (with the admins' custom fields on them), with the records
the template declared, and the metadata version moves on, or nothing changes.
Relations the template added to other plugins' entities that point at its own
(a dealer's grading policy on ``account``) go with the tables they point at.
The template's demo records in the tables that stay go last (core/market/demo_removal.py).
Records of the engines that name a record of the dropped tables by entity and id
(approval requests, stage history, rendered documents, plan occurrences, connector
links), and the approval requests of the processes that go, go with them, before the
processes they point at: they would describe records that no longer exist or wait on a
process nobody can decide any more. The backup the command writes first keeps them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Connection, delete, func, inspect, or_, select, table
from sqlalchemy import column as sql_column

from qiao.core.catalog import Catalog
from qiao.core.errors import ConfigurationError
from qiao.core.market.demo_removal import delete_demo_records
from qiao.core.metadata import sections, store
from qiao.core.metadata.model import EntityDef, FieldType
from qiao.core.metadata.registry import Registry
from qiao.core.packages import versions
from qiao.core.packages.plan import Plan
from qiao.core.records.context import Actor, Source, WriteContext
from qiao.core.storage.system import declared as declared_table

if TYPE_CHECKING:
    from qiao.core.runtime import Runtime

#: Records that name another record by ``entity`` and ``record_id``, not by a relation.
RECORD_NOTES = (
    "approval_request",
    "stage_history",
    "document",
    "plan_occurrence",
    "connector_link",
)
#: Records deleted per query while clearing what points at the dropped tables.
_PAGE = 500


def template_entities(registry: Registry, plugin: str) -> list[EntityDef]:
    """The entities ``plugin`` declares, each before the entities it points at."""
    own = {e.name: e for e in registry.entities.values() if e.source == plugin}
    order: list[str] = []

    def visit(name: str, seen: tuple[str, ...]) -> None:
        if name in order or name in seen:
            return
        for rev in registry.referencing(name):
            if rev.entity in own and rev.entity != name:
                visit(rev.entity, (*seen, name))
        order.append(name)

    for name in own:
        visit(name, ())
    return [own[name] for name in order]


def row_counts(conn: Connection, entities: Sequence[EntityDef]) -> dict[str, int]:
    """Records per table, for the tables that exist."""
    existing = set(inspect(conn).get_table_names())
    return {
        e.name: conn.execute(select(func.count()).select_from(table(e.name))).scalar_one()
        for e in entities
        if e.name in existing
    }


def records_about(conn: Connection, registry: Registry, plugin: str) -> dict[str, int]:
    """Records outside the template's tables that its removal deletes, per entity: the
    approval requests of its processes (on any record, a CRM quote too) and the engines'
    records about records of its tables. They are data, so they count as held records."""
    dropped = sorted(e.name for e in template_entities(registry, plugin))
    existing = set(inspect(conn).get_table_names())
    counts: dict[str, int] = {}
    if "approval_process" in registry.entities and "approval_request" in existing:
        processes = table(
            "approval_process", sql_column("id"), sql_column("name"), sql_column("entity")
        )
        requests = table("approval_request", sql_column("process_id"), sql_column("entity"))
        declared = select(declared_table.c.name).where(
            declared_table.c.plugin == plugin, declared_table.c.entity == "approval_process"
        )
        going = select(processes.c.id).where(
            or_(processes.c.name.in_(declared), processes.c.entity.in_(dropped))
        )
        about = or_(requests.c.process_id.in_(going), requests.c.entity.in_(dropped))
        counts["approval_request"] = conn.execute(
            select(func.count()).select_from(requests).where(about)
        ).scalar_one()
    for note in RECORD_NOTES:
        if note in registry.entities and note in existing and note not in counts:
            notes = table(note, sql_column("entity"))
            found = conn.execute(
                select(func.count()).select_from(notes).where(notes.c.entity.in_(dropped))
            ).scalar_one()
            counts[note] = found
    return {name: n for name, n in counts.items() if n}


def own_relations(
    runtime: Runtime, plugin: str, entities: Sequence[EntityDef]
) -> list[tuple[str, str]]:
    """(entity, column) of the relations ``plugin`` added to other entities that point at
    its own: they would point nowhere once its tables are gone, so they go with them."""
    names = {e.name for e in entities}
    _, extensions = runtime.plugins.entities()
    return [
        (ext.entity, f.column)
        for ext in extensions
        if ext.source == plugin and ext.entity not in names
        for f in ext.fields
        if f.type is FieldType.RELATION and f.target in names
    ]


def check_unreferenced(
    registry: Registry,
    plugin: str,
    entities: Sequence[EntityDef],
    own: Sequence[tuple[str, str]] = (),
) -> None:
    """Refuse when an entity of another origin points at one of the template's entities
    (other than through the template's own relations, ``own``)."""
    names = {e.name for e in entities}
    for name in names:
        for rev in registry.referencing(name):
            if (rev.entity, rev.field.column) in own:
                continue
            if rev.entity not in names:
                raise ConfigurationError(
                    f"{rev.entity}.{rev.field.name} points at {name}, which template "
                    f"{plugin!r} declares; drop that field first"
                )


def drop_tables(
    conn: Connection,
    plugin: str,
    entities: Sequence[EntityDef],
    own: Sequence[tuple[str, str]] = (),
) -> None:
    """Drop the tables and their custom fields on ``conn``, and the template's relations
    ``own`` to them; the caller's transaction commits."""
    version = store.lock_version(conn)
    existing = set(inspect(conn).get_table_names())
    ops = Operations(MigrationContext.configure(conn))
    for entity_name, column in own:
        inspector = inspect(conn)
        if column not in {c["name"] for c in inspector.get_columns(entity_name)}:
            continue
        # SQLite drops no column an index names; PostgreSQL drops them together anyway.
        for index in inspector.get_indexes(entity_name):
            if column in index["column_names"] and index["name"]:
                ops.drop_index(index["name"], table_name=entity_name)
        if conn.dialect.name == "sqlite":
            _forget_sqlite_foreign_key(conn, entity_name, column)
        ops.drop_column(entity_name, column)
    custom = store.custom_field_names(conn)
    for entity in entities:
        for owner, field in custom:
            if owner == entity.name:
                store.delete_custom_field(conn, owner, field)
        if entity.name in existing:
            ops.drop_table(entity.name)
    store.record_change(
        conn,
        version=version,
        operation="uninstall_template",
        entity=plugin,
        note=f"dropped {', '.join(e.name for e in entities) or 'no tables'}",
    )


def _forget_sqlite_foreign_key(conn: Connection, table_name: str, column: str) -> None:
    """Take the table-level foreign key on ``column`` out of SQLite's schema, in the
    caller's transaction, so that the column can be dropped.

    A table created with its relations (``qiao init --template``) holds them as table
    constraints, and SQLite drops no column a table constraint names. Rebuilding the
    table is no way out: dropping the old one runs the ON DELETE actions of every table
    that references it. Removing a constraint leaves the stored rows as they are, which
    is the case SQLite documents for editing the schema text in place
    (https://www.sqlite.org/lang_altertable.html, "making other kinds of table schema
    changes"); the schema version moves on so that every connection reloads it.
    """
    found = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table_name,)
    ).scalar_one()
    quoted = rf'"?{re.escape(column)}"?'
    constraint = re.compile(
        rf",\s*(?:CONSTRAINT\s+\S+\s+)?FOREIGN KEY\s*\(\s*{quoted}\s*\)\s*REFERENCES\s+"
        r'"?\w+"?\s*\([^)]*\)(?:\s+ON\s+(?:DELETE|UPDATE)\s+'
        r"(?:SET NULL|SET DEFAULT|CASCADE|RESTRICT|NO ACTION))*",
        re.IGNORECASE,
    )
    changed, count = constraint.subn("", found)
    if count == 0:
        return  # a column added later carries its key inline, which DROP COLUMN takes along
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        conn.exec_driver_sql(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
            (changed, table_name),
        )
        conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        conn.exec_driver_sql("PRAGMA writable_schema = OFF")


class _RollBack(Exception):
    """Raised inside a dry run's transaction so that nothing it did is kept."""


def uninstall(runtime: Runtime, plugin: str, *, dry_run: bool = False) -> Plan:
    """Take template ``plugin`` out of the database in one transaction; returns the plan.

    Its tables go with their records and the admins' custom fields on them,
    the records it declared go (through the records service, audited), and so
    do rules, pipelines and approval processes about its entities, which
    could never run again. The caller checked that dropping records is wanted.
    """
    plan = Plan()
    try:
        with runtime.db.write() as conn:
            registry = runtime.build_registry(conn)
            entities = template_entities(registry, plugin)
            own = own_relations(runtime, plugin, entities)
            check_unreferenced(registry, plugin, entities, own)
            dropped = {e.name for e in entities}
            with runtime.pinned(Catalog.of(registry)):
                ctx = WriteContext(Actor.system(), Source.CLI, conn, runtime)
                _delete_requests_of_processes(ctx, plugin, dropped, plan)
                _delete_record_notes(ctx, dropped, plan)
                _delete_declared(ctx, runtime, plugin, dropped, plan)
                _delete_orphaned_definitions(ctx, dropped, plan)
            for entity_name, column in own:
                plan.dropped(f"column {entity_name}.{column}")
            for entity in entities:
                count = row_counts(conn, [entity]).get(entity.name, 0)
                plan.dropped(f"table {entity.name} ({count} records)")
            drop_tables(conn, plugin, entities, own)
            versions.forget(conn, plugin)
            with runtime.pinned(Catalog.of(runtime.build_registry(conn, without=plugin))):
                ctx = WriteContext(Actor.system(), Source.CLI, conn, runtime)
                delete_demo_records(ctx, runtime.plugins, plugin, plan)
            if dry_run:
                raise _RollBack
    except _RollBack:
        pass
    return plan


def _delete_requests_of_processes(
    ctx: WriteContext, plugin: str, dropped: set[str], plan: Plan
) -> None:
    """Approval requests (with their decisions) of the processes the removal deletes: those
    ``plugin`` declared and those about its entities. A request holds its process by a
    restricting relation, and a pending one could never be decided again."""
    if "approval_process" not in ctx.catalog.registry.entities:
        return
    t = declared_table
    declared = ctx.connection.execute(
        select(t.c.name).where(t.c.plugin == plugin, t.c.entity == "approval_process")
    )
    going = ctx.records.list(
        ctx.connection,
        "approval_process",
        filter={
            "or": [{"name": {"in": [r[0] for r in declared]}}, {"entity": {"in": sorted(dropped)}}]
        },
        first=_PAGE,
        actor=Actor.system(),
    ).records
    for process in going:
        count = _delete_all(ctx, "approval_request", {"process_id": {"eq": process["id"]}})
        if count:
            plan.dropped(f"{count} approval requests of {process['name']!r}")


def _delete_record_notes(ctx: WriteContext, dropped: set[str], plan: Plan) -> None:
    """The engines' records about records of the dropped tables."""
    for note in RECORD_NOTES:
        if note not in ctx.catalog.registry.entities:
            continue
        count = _delete_all(ctx, note, {"entity": {"in": sorted(dropped)}})
        if count:
            plan.dropped(f"{count} {note} records about the dropped tables")


def _delete_all(ctx: WriteContext, entity: str, where: dict[str, object]) -> int:
    """Delete every ``entity`` record matching ``where`` through the records service, so
    each deletion is audited and cascades as any other; how many went."""
    count = 0
    while True:
        page = ctx.records.list(
            ctx.connection, entity, filter=where, first=_PAGE, actor=Actor.system()
        )
        if not page.records:
            return count
        for record in page.records:
            ctx.records.delete(ctx, entity, record["id"])
        count += len(page.records)


def _delete_declared(
    ctx: WriteContext, runtime: Runtime, plugin: str, dropped: set[str], plan: Plan
) -> None:
    """The records ``plugin`` declared, in the reverse of the order installing wrote them:
    a rule goes before the role it notifies, so no step leaves a rule naming a lost role."""
    t = declared_table
    rows = ctx.connection.execute(select(t.c.entity, t.c.name).where(t.c.plugin == plugin))
    rank: dict[str, int] = {}
    for name, manifest in runtime.plugins.manifests():
        if name == plugin:
            for entity, _ in manifest.declared_records():
                rank.setdefault(entity, len(rank))  # where the entity's records begin
    for entity, name in sorted(rows, key=lambda row: rank.get(row[0], -1), reverse=True):
        if entity not in dropped:
            _delete_named(ctx, entity, name, plan)
    ctx.connection.execute(delete(t).where(t.c.plugin == plugin))


def _delete_orphaned_definitions(ctx: WriteContext, dropped: set[str], plan: Plan) -> None:
    for definition in sections.definition_entities():
        if definition not in ctx.catalog.registry.entities:
            continue
        page = ctx.records.list(
            ctx.connection,
            definition,
            filter={"entity": {"in": sorted(dropped)}},
            first=500,
            actor=Actor.system(),
        )
        for record in page.records:
            _delete_named(ctx, definition, record["name"], plan)


def _delete_named(ctx: WriteContext, entity: str, name: str, plan: Plan) -> None:
    page = ctx.records.list(
        ctx.connection, entity, filter={"name": {"eq": name}}, first=1, actor=Actor.system()
    )
    if page.records:
        ctx.records.delete(ctx, entity, page.records[0]["id"])
        plan.dropped(f"{entity} {name!r}")
