"""Roles shipped in manifests become ``role`` records once; admins own them after that.

Installing a role never overwrites one of the same name: an administrator may
have edited it, and their edit wins over the template's original.
"""

from __future__ import annotations

from sqlalchemy import select

from qiao.core.pluginmanager import Plugins
from qiao.core.records.context import Actor, Source
from qiao.core.records.service import RecordsService


def install_roles(records: RecordsService, plugins: Plugins) -> list[str]:
    """Create the declared roles that do not exist yet; returns their names."""
    declared = plugins.roles()
    if not declared:
        return []
    roles = records.catalog.table("role")
    created = []
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        existing = {name for (name,) in ctx.connection.execute(select(roles.c.name))}
        for plugin, role in declared:
            if role.name in existing:
                continue
            values = {
                "name": role.name,
                "title": role.title,
                "description": role.description,
                "rights": role.rights.model_dump(mode="json", exclude_defaults=True),
                "source": plugin,
            }
            records.create(ctx, "role", values)
            existing.add(role.name)
            created.append(role.name)
    return created
