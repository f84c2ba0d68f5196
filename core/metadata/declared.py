"""Records that manifests declare (rules, and other definitions kept as data), installed once.

A plugin or template ships some definitions as records an administrator then
owns: automation rules, for instance. Each is keyed by its ``name``: installing
never overwrites a record of that name, because an administrator may have
edited it, and their edit wins over the manifest's original. Every record is
written through the records service, so it is checked by the same hooks as one
created through the API, and a bad declaration stops ``qiao migrate`` naming
the plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from qiao.core.errors import Conflict, QiaoError
from qiao.core.records.context import Actor, Source

if TYPE_CHECKING:
    from qiao.core.pluginmanager import Plugins
    from qiao.core.records.service import RecordsService


def install_declared(records: RecordsService, plugins: Plugins) -> list[tuple[str, str]]:
    """Create the declared records that do not exist yet; returns ``(entity, name)`` of each.

    Processes starting together may race to install the same record: the one
    that loses meets the unique name, and its second try finds the record there.
    """
    declared = [
        (plugin, entity, values)
        for plugin, manifest in plugins.manifests()
        for entity, values in manifest.declared_records()
    ]
    if not declared:
        return []
    try:
        return _install(records, declared)
    except Conflict:
        return _install(records, declared)


def _install(
    records: RecordsService, declared: list[tuple[str, str, dict[str, Any]]]
) -> list[tuple[str, str]]:
    created: list[tuple[str, str]] = []
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        existing: dict[str, set[str]] = {}
        for plugin, entity, values in declared:
            if entity not in existing:
                table = records.catalog.table(entity)
                existing[entity] = {n for (n,) in ctx.connection.execute(select(table.c.name))}
            name = values["name"]
            if name in existing[entity]:
                continue
            row = dict(values)
            if records.catalog.entity(entity).field("source") is not None:
                row["source"] = plugin
            try:
                records.create(ctx, entity, row)
            except Conflict:
                raise
            except QiaoError as exc:
                raise type(exc)(
                    f"plugin {plugin!r} declares the {entity} {name!r}: {exc.message}",
                    field=exc.field,
                ) from None
            existing[entity].add(name)
            created.append((entity, name))
    return created
