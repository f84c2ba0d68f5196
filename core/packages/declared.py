"""Records that manifests declare (roles, rules, pipelines, approval processes), kept in step.

A plugin or template ships some definitions as records an administrator then
owns. Each is keyed by its entity and ``name``. Installing creates what does
not exist; upgrading changes what the manifest changed, unless an
administrator changed the record too: then the upgrade stops and names the
conflict, for the administrator to settle. A record the manifest no longer
declares is deleted if nobody changed it, and kept (reported) otherwise; a
record an administrator deleted stays deleted.

To tell who changed what, ``qiao_declared`` keeps, per record, the digest of
the manifest's declaration it was written from and the digest of the record
as it was written. Every write goes through the records service, so
declarations are checked by the same hooks as a record created through the
API.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from qiao.core.errors import Conflict, QiaoError
from qiao.core.packages.plan import Plan
from qiao.core.records.context import Actor, WriteContext
from qiao.core.storage.system import declared as declared_table


@dataclass(frozen=True)
class Declaration:
    """One record a plugin's manifest declares."""

    plugin: str
    entity: str
    values: Mapping[str, Any]

    @property
    def name(self) -> str:
        name: str = self.values["name"]
        return name


def digest(values: Mapping[str, Any], keys: Iterable[str]) -> str:
    """A stable digest of ``values`` restricted to ``keys`` (decimals and dates as text)."""
    chosen = {key: values.get(key) for key in sorted(keys)}
    text = json.dumps(
        chosen, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sync(ctx: WriteContext, declarations: Iterable[Declaration], plan: Plan) -> None:
    """Bring the declared records to the manifests, in ``ctx``'s transaction."""
    declarations = list(declarations)
    known = _known(ctx.connection)
    conflicts: list[str] = []
    for item in declarations:
        _sync_one(ctx, item, known.pop((item.entity, item.name), None), plan, conflicts)
    for (entity, name), row in known.items():
        _withdraw(ctx, entity, name, row, plan)
    if conflicts:
        raise Conflict(
            "an administrator changed what the new version changes too: "
            + "; ".join(conflicts)
            + ". Put back the shipped version or delete the record, then upgrade again"
        )


def _known(conn: Connection) -> dict[tuple[str, str], dict[str, Any]]:
    t = declared_table
    return {(r.entity, r.name): dict(r._mapping) for r in conn.execute(select(t))}


def _current(ctx: WriteContext, entity: str, name: str) -> dict[str, Any] | None:
    page = ctx.records.list(
        ctx.connection, entity, filter={"name": {"eq": name}}, first=1, actor=Actor.system()
    )
    return page.records[0] if page.records else None


def _sync_one(
    ctx: WriteContext,
    item: Declaration,
    row: dict[str, Any] | None,
    plan: Plan,
    conflicts: list[str],
) -> None:
    what = f"{item.entity} {item.name!r}"
    shipped = digest(item.values, item.values)
    current = _current(ctx, item.entity, item.name)
    if row is None:
        if current is None:
            written = _write(ctx, item, None)
            _remember(ctx.connection, item, shipped, digest(written, item.values))
            plan.created(what, item.plugin)
        else:  # there before this record was tracked (by an administrator, or an old install)
            _remember(ctx.connection, item, shipped, digest(current, item.values))
            plan.kept(what, "it exists already")
        return
    if shipped == row["shipped_digest"]:
        return
    if current is None:
        _remember(ctx.connection, item, shipped, row["written_digest"], update_only=True)
        plan.kept(what, "an administrator deleted it")
        return
    if digest(current, item.values) != row["written_digest"]:
        conflicts.append(what)
        return
    written = _write(ctx, item, current)
    _remember(ctx.connection, item, shipped, digest(written, item.values), update_only=True)
    plan.changed(what, item.plugin)


def _write(ctx: WriteContext, item: Declaration, current: dict[str, Any] | None) -> dict[str, Any]:
    values = dict(item.values)
    if ctx.catalog.entity(item.entity).field("source") is not None:
        values["source"] = item.plugin
    try:
        if current is None:
            return ctx.records.create(ctx, item.entity, values)
        return ctx.records.update(ctx, item.entity, current["id"], values)
    except QiaoError as exc:
        raise type(exc)(
            f"plugin {item.plugin!r} declares the {item.entity} {item.name!r}: {exc.message}",
            field=exc.field,
        ) from None


def _withdraw(ctx: WriteContext, entity: str, name: str, row: dict[str, Any], plan: Plan) -> None:
    """A record no manifest declares any more: delete it unless it was changed since."""
    what = f"{entity} {name!r}"
    t = declared_table
    ctx.connection.execute(delete(t).where(t.c.entity == entity, t.c.name == name))
    if entity not in ctx.catalog.registry.entities:
        return
    current = _current(ctx, entity, name)
    if current is None:
        return
    keys = row["keys"] or []
    if digest(current, keys) != row["written_digest"]:
        plan.kept(what, "an administrator changed it")
        return
    ctx.records.delete(ctx, entity, current["id"])
    plan.dropped(what, row["plugin"])


def _remember(
    conn: Connection, item: Declaration, shipped: str, written: str, *, update_only: bool = False
) -> None:
    t = declared_table
    values = {
        "plugin": item.plugin,
        "shipped_digest": shipped,
        "written_digest": written,
        "keys": sorted(item.values),
    }
    if update_only:
        conn.execute(
            update(t).where(t.c.entity == item.entity, t.c.name == item.name).values(**values)
        )
    else:
        conn.execute(insert(t).values(entity=item.entity, name=item.name, **values))
