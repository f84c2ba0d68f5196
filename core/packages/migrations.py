"""How a plugin's data follows it from one version to the next, as its manifest declares.

A manifest's ``migrations`` name, per version of the package that ships it,
the steps that bring data written by an older version in line:

- ``rename_field`` ({entity, from, to}): the column is renamed before the
  tables are brought to the metadata, so the values move with it instead of
  a new, empty column appearing beside the old one;
- ``map_values`` ({entity, field, values: {old: new}}): picklist values the
  new version renamed, changed on every record;
- ``backfill`` ({entity, field, formula}): a field the new version added,
  filled from a formula over each record where it is empty.

Steps run when the recorded version of the package is older than the
step's version and the installed one is at least as new, oldest first.
Value changes are written through the records service (audited and evented
as any change), in the migration's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from alembic.migration import MigrationContext
from alembic.operations import Operations
from packaging.version import InvalidVersion, Version
from sqlalchemy import ColumnElement, Connection, Table, inspect, select

from qiao.core.errors import MetadataError
from qiao.core.formula.checker import check
from qiao.core.formula.metadata import entity_resolver
from qiao.core.formula.record_values import evaluate_on_record
from qiao.core.metadata.manifest import Backfill, MapValues, MigrationDecl, MigrationStep
from qiao.core.packages.plan import Plan
from qiao.core.records.context import Actor, WriteContext

BATCH = 500


def version_of(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise MetadataError(f"{text!r} is not a version (such as 1.2.0)") from None


def due(
    migrations: Sequence[MigrationDecl], recorded: str | None, installed: str
) -> list[MigrationDecl]:
    """The migrations between the recorded version (exclusive) and the installed (inclusive)."""
    if recorded is None:
        return []  # a first install writes data in the current shape already
    low, high = version_of(recorded), version_of(installed)
    chosen = [m for m in migrations if low < version_of(m.version) <= high]
    return sorted(chosen, key=lambda m: version_of(m.version))


def rename_columns(conn: Connection, steps: Sequence[MigrationStep], plan: Plan) -> None:
    """The ``rename_field`` steps, before the tables are brought to the metadata."""
    ops = Operations(MigrationContext.configure(conn))
    for step in steps:
        rename = step.rename_field
        if rename is None:
            continue
        columns = {c["name"] for c in inspect(conn).get_columns(rename.entity)}
        if rename.from_ not in columns:
            continue  # renamed already (a migration run twice), or never stored
        if rename.to in columns:
            raise MetadataError(
                f"cannot rename {rename.entity}.{rename.from_} to {rename.to}: "
                f"{rename.entity} has a column {rename.to} already"
            )
        ops.alter_column(rename.entity, rename.from_, new_column_name=rename.to)
        plan.migrated(f"renamed {rename.entity}.{rename.from_} to {rename.to}")


def change_values(ctx: WriteContext, steps: Sequence[MigrationStep], plan: Plan) -> None:
    """The ``map_values`` and ``backfill`` steps, once the tables match the metadata."""
    for step in steps:
        if step.map_values is not None:
            _map_values(ctx, step.map_values, plan)
        if step.backfill is not None:
            _backfill(ctx, step.backfill, plan)


def _map_values(ctx: WriteContext, m: MapValues, plan: Plan) -> None:
    """Picklist values renamed: found by their stored text, which the new field no longer
    accepts as a filter value, and written through the records service."""
    count = 0
    for old, new in m.values.items():
        count += _rewrite(
            ctx, m.entity, lambda t, o=old: t.c[m.field] == o, lambda _, v=new: {m.field: v}
        )
    plan.migrated(f"{count} values of {m.entity}.{m.field}")


def _backfill(ctx: WriteContext, b: Backfill, plan: Plan) -> None:
    formula = check(b.formula, entity_resolver(ctx.catalog.registry.entities, b.entity))
    clock = ctx.records.formula_clock()

    def value(record: Mapping[str, Any]) -> dict[str, Any]:
        found = evaluate_on_record(ctx.connection, ctx.catalog, b.entity, record, formula, clock)
        return {b.field: found}

    count = _rewrite(ctx, b.entity, lambda t: t.c[b.field].is_(None), value)
    plan.migrated(f"{b.entity}.{b.field} filled on {count} records")


def _rewrite(
    ctx: WriteContext,
    entity: str,
    where: Callable[[Table], ColumnElement[bool]],
    change: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> int:
    """Update every record matching ``where`` with ``change(record)``; returns how many.

    Records are walked by id, so one that the change leaves matching is met once.
    """
    table = ctx.catalog.table(entity)
    count = 0
    after: Any = None
    while True:
        stmt = select(table.c.id).where(where(table)).order_by(table.c.id).limit(BATCH)
        if after is not None:
            stmt = stmt.where(table.c.id > after)
        ids = ctx.connection.execute(stmt).scalars().all()
        for record_id in ids:
            record = ctx.records.get(ctx.connection, entity, str(record_id), actor=Actor.system())
            assert record is not None  # found by id in this transaction
            values = {k: v for k, v in change(record).items() if v is not None}
            if values:
                ctx.records.update(ctx, entity, str(record_id), values)
                count += 1
        if len(ids) < BATCH:
            return count
        after = ids[-1]
