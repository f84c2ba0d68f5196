"""Taking a template's tables out of a database, for ``qiao template uninstall``.

Uninstalling must not lose data by surprise: :func:`row_counts` tells what the
template's tables hold, and the command refuses unless told to drop it. The
drop itself is one transaction with Alembic's operations, so either every
table goes (with the admins' custom fields on them) and the metadata version
moves on, or nothing changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Connection, func, inspect, select, table

from qiao.core.errors import ConfigurationError
from qiao.core.metadata import store
from qiao.core.metadata.model import EntityDef
from qiao.core.metadata.registry import Registry


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


def check_unreferenced(registry: Registry, plugin: str, entities: Sequence[EntityDef]) -> None:
    """Refuse when an entity of another origin points at one of the template's entities."""
    names = {e.name for e in entities}
    for name in names:
        for rev in registry.referencing(name):
            if rev.entity not in names:
                raise ConfigurationError(
                    f"{rev.entity}.{rev.field.name} points at {name}, which template "
                    f"{plugin!r} declares; drop that field first"
                )


def drop_tables(conn: Connection, plugin: str, entities: Sequence[EntityDef]) -> None:
    """Drop the tables and their custom fields on ``conn``; the caller's transaction commits."""
    version = store.lock_version(conn)
    existing = set(inspect(conn).get_table_names())
    ops = Operations(MigrationContext.configure(conn))
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
