"""Bringing a database to its plugins: kernel, tables, data migrations, declared records, demo.

One transaction does it all, so an install, an upgrade or ``qiao migrate``
either lands whole or leaves the database as it was; a dry run does the same
work and rolls it back, so the plan it prints is the plan a real run follows.
The order matters:

1. the kernel's own tables, to their newest revision;
2. columns the new versions rename (``rename_field``), before anything would
   add the new name as an empty column;
3. entity tables, columns and indexes, to the metadata;
4. the data migrations that change values (``map_values``, ``backfill``);
5. declared records: roles, rules, pipelines, approval processes;
6. each package's version, then the demo data asked for.

From step 4 on, the records service reads the new metadata in this thread
(the runtime's catalog is pinned to it), while other threads keep the
committed one until the transaction commits.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from qiao.core.catalog import Catalog
from qiao.core.metadata import store
from qiao.core.metadata.manifest import Manifest, MigrationStep
from qiao.core.packages import declared, demo, migrations, versions
from qiao.core.packages.plan import Plan
from qiao.core.records.context import Actor, Source, WriteContext
from qiao.core.records.host import RecordsHost
from qiao.core.schema import ddl

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from qiao.core.metadata.registry import Registry
    from qiao.core.pluginmanager import Plugins


class MigrationHost(RecordsHost, Protocol):
    """The runtime as a migration uses it; :class:`qiao.core.runtime.Runtime` is one.

    The runtime migrates through this package, so the package names only what it
    asks of the runtime: the plugins' manifests, versions and demo data, the
    registry they build with the database's custom metadata, and the catalog to
    read under while the transaction runs and to adopt once it commits.
    """

    @property
    def plugins(self) -> Plugins: ...

    def build_registry(self, conn: Connection, *, without: str | None = None) -> Registry: ...

    def pinned(self, catalog: Catalog) -> AbstractContextManager[Catalog]: ...

    def install(self, catalog: Catalog) -> None: ...


@dataclass
class Migration:
    """What one run did: the plan, and the schema part of it for callers that need it."""

    plan: Plan
    schema: ddl.SchemaPlan = field(default_factory=ddl.SchemaPlan)
    kernel_before: str | None = None
    kernel_after: str | None = None
    dry_run: bool = False


class _RollBack(Exception):
    """Raised inside the transaction of a dry run, so that nothing it did is kept."""


def migrate(
    runtime: MigrationHost,
    *,
    demo_of: Iterable[str] = (),
    dry_run: bool = False,
) -> Migration:
    """Bring the database to the runtime's plugins; seed the demo data of ``demo_of``."""
    result = Migration(Plan(), dry_run=dry_run)
    catalog: Catalog | None = None
    try:
        with runtime.db.write() as conn:
            result.kernel_before = ddl.kernel_revision(conn)
            ddl.upgrade_kernel(conn)
            result.kernel_after = ddl.kernel_head()
            if result.kernel_before is None:
                _make_audit_key(runtime, conn)
            if result.kernel_before != result.kernel_after:
                result.plan.migrated(f"kernel tables to revision {result.kernel_after}")
            store.lock_version(conn)
            manifests = runtime.plugins.manifests()
            applied = versions.recorded(conn)
            steps = _due_steps(runtime, manifests, applied)
            migrations.rename_columns(conn, steps, result.plan)
            registry = runtime.build_registry(conn)
            result.schema = ddl.apply_entities(conn, registry)
            _schema_lines(result.schema, result.plan)
            catalog = Catalog.of(registry)
            with runtime.pinned(catalog):
                ctx = WriteContext(Actor.system(), Source.SYSTEM, conn, runtime)
                migrations.change_values(ctx, steps, result.plan)
                declared.sync(ctx, _declarations(manifests), result.plan)
                _record_versions(ctx, runtime.plugins, applied, result.plan)
                _seed(ctx, runtime.plugins, demo_of, result.plan)
            if dry_run:
                raise _RollBack
    except _RollBack:
        return result
    assert catalog is not None
    runtime.install(catalog)
    return result


def _make_audit_key(runtime: MigrationHost, conn: Connection) -> None:
    """A new database's audit log gets its key with its tables, as ``qiao init`` makes them.

    Only here, where the kernel tables are created, and by ``qiao audit
    init-key``: a log that lost its key later is never keyed anew by a write.
    """
    log = runtime.audit_log()
    if log is not None:
        log.create_key(conn)


def _due_steps(
    runtime: MigrationHost, manifests: list[tuple[str, Manifest]], applied: dict[str, str]
) -> list[MigrationStep]:
    steps: list[MigrationStep] = []
    for plugin, manifest in manifests:
        due = migrations.due(
            manifest.migrations, applied.get(plugin), runtime.plugins.version(plugin)
        )
        steps += [step for m in due for step in m.steps]
    return steps


def _declarations(manifests: list[tuple[str, Manifest]]) -> list[declared.Declaration]:
    return [
        declared.Declaration(plugin, entity, values)
        for plugin, manifest in manifests
        for entity, values in manifest.declared_records()
    ]


def _record_versions(
    ctx: WriteContext, plugins: Plugins, applied: dict[str, str], plan: Plan
) -> None:
    now = ctx.now()
    for name in plugins.names:
        version = plugins.version(name)
        before = applied.get(name)
        if before == version:
            continue
        versions.record(ctx.connection, name, version, now)
        if before is not None:
            plan.migrated(f"{name} from {before} to {version}")


def _seed(ctx: WriteContext, plugins: Plugins, names: Iterable[str], plan: Plan) -> None:
    """The demo data of the plugins ``names``, sharing keys, in load order."""
    wanted = list(names)
    if not wanted:
        return
    keys: MutableMapping[str, str] = {}
    for plugin, data in plugins.demo_data(only=wanted):
        count = demo.seed(ctx, data, plugin, keys)
        plan.created(f"{count} demo records", plugin)


def _schema_lines(schema: ddl.SchemaPlan, plan: Plan) -> None:
    for table in schema.create_tables:
        plan.created(f"table {table}")
    for table, column in schema.add_columns:
        plan.created(f"column {table}.{column}")
    for table, column in schema.widen_columns:
        plan.changed(f"column {table}.{column} to TEXT, for its sealed values")
    for table, index in schema.add_indexes:
        if table not in schema.create_tables:
            plan.created(f"index {index} on {table}")
    for table, column in schema.orphan_columns:
        plan.kept(f"column {table}.{column}", "no field declares it")
