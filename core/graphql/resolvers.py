"""Resolvers of the generated root fields.

Reads that strawberry executes (when a query mixes generated and plugin fields)
still go through the SQL compiler, one statement per root field; writes go
through the records service and return the written record compiled the same way,
so a mutation's result has the same shape and formats as a query's.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection
from strawberry.types import Info

from qiao.core.graphql.compiler import ReadCompiler, plain
from qiao.core.graphql.context import RequestContext
from qiao.core.graphql.evaluated import Evaluator
from qiao.core.graphql.strawberry_internals import resolve_info
from qiao.core.graphql.withheld import refuse
from qiao.core.records.context import Source, WriteContext

T = TypeVar("T")


def input_values(obj: Any) -> dict[str, Any]:
    """A mutation input as field values: unset fields left out, explicit nulls kept.

    A JSON field's value (a dict or list) is data and is kept as given: its keys are not
    snake-cased (an ERP's ``FNumber`` stays ``FNumber``) and its nulls stay.
    """
    values = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value.__class__.__name__ == "UnsetType":
            continue
        values[f.name] = value if value is None or isinstance(value, dict | list) else plain(value)
    return values


def _compiler(info: Info, ctx: RequestContext, conn: Connection) -> ReadCompiler:
    raw = resolve_info(info)
    records = ctx.runtime.records
    compiler = ReadCompiler(
        ctx.built,
        conn.dialect,
        raw.fragments,
        raw.variable_values,
        ctx.access,
        records.encryption,
        records.formula_clock(),
        conn,
    )
    compiler.tag_nodes = True  # strawberry resolves the Node interface from the tag
    return compiler


def _run_json(conn: Connection, compiled: Any, ctx: RequestContext) -> Any:
    """The one root field's data; fields the caller may not read raise where they are."""
    row = compiled.run(conn)
    data = json.loads(row[0]) if row[0] is not None else None
    if compiled.evaluated:  # formulas SQL cannot compute exactly (docs/formulas.md)
        clock = ctx.runtime.records.formula_clock()
        data = Evaluator(conn, ctx.built.catalog, clock, ctx.access.row_scope()).fill(data)
    if compiled.sealed:  # encrypted fields: open them (docs/encryption.md)
        data = ctx.runtime.records.encryption.reveal_data(data)
    return refuse(data, compiled.withheld, compiled.keys[0])


def read_root(info: Info, **_: Any) -> Any:
    ctx: RequestContext = info.context
    raw = resolve_info(info)
    with ctx.runtime.db.read() as conn:
        compiler = _compiler(info, ctx, conn)
        compiled = compiler.compile([(raw.path.key, raw.parent_type.name, list(raw.field_nodes))])
        return _run_json(conn, compiled, ctx)


def _written(info: Info, ctx: RequestContext, conn: Connection, entity: str, record_id: str) -> Any:
    raw = resolve_info(info)
    compiled = _compiler(info, ctx, conn).compile_object(
        raw.path.key, entity, record_id, list(raw.field_nodes)
    )
    return _run_json(conn, compiled, ctx)


def _entity(info: Info) -> str:
    ctx: RequestContext = info.context
    return ctx.built.plan.mutations[resolve_info(info).field_name][1]


def _write(info: Info, work: Callable[[WriteContext], T]) -> T:
    """``work`` in the request's transaction, run again if the database ends it to let a
    concurrent write through (:meth:`RecordsService.run`)."""
    ctx: RequestContext = info.context
    return ctx.runtime.records.run(ctx.actor, Source.GRAPHQL, work, ctx.request_id)


def create(info: Info, input: Any) -> Any:
    ctx: RequestContext = info.context
    entity = _entity(info)

    def work(wctx: WriteContext) -> Any:
        record = ctx.runtime.records.create(wctx, entity, input_values(input))
        return _written(info, ctx, wctx.connection, entity, record["id"])

    return _write(info, work)


def upsert(info: Info, key: Any, input: Any) -> Any:
    ctx: RequestContext = info.context
    entity = _entity(info)

    def work(wctx: WriteContext) -> Any:
        record, _ = ctx.runtime.records.upsert(wctx, entity, key.value, input_values(input))
        return _written(info, ctx, wctx.connection, entity, record["id"])

    return _write(info, work)


def update(info: Info, id: str, input: Any, expected_version: int | None = None) -> Any:
    ctx: RequestContext = info.context
    entity = _entity(info)

    def work(wctx: WriteContext) -> Any:
        ctx.runtime.records.update(wctx, entity, id, input_values(input), expected_version)
        return _written(info, ctx, wctx.connection, entity, id)

    return _write(info, work)


def delete(info: Info, id: str) -> str:
    ctx: RequestContext = info.context
    entity = _entity(info)
    _write(info, lambda wctx: ctx.runtime.records.delete(wctx, entity, id))
    return id
