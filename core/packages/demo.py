"""Seeding demo data: the example records a plugin ships, written through the records service.

The file format, with its ``"@key"`` references and ``lookup`` values, is
:mod:`qiao.core.metadata.demo`'s. Records are written through the records
service, so validation and the write hooks apply to them as to any other write.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from qiao.core.errors import BadUserInput, Conflict, MetadataError, QiaoError
from qiao.core.metadata.demo import DemoData
from qiao.core.records.context import Actor, WriteContext


def is_seeded(ctx: WriteContext, demo: DemoData) -> bool:
    """Whether the first record of ``demo`` is in the database already."""
    first = demo.records[0]
    entity = ctx.records.catalog.entity(first.entity)

    def comparable(name: str) -> bool:  # an encrypted field only through its blind index
        field = entity.field(name)
        return field is None or not field.encrypted or field.searchable is not None

    plain = {
        name: {"eq": value}
        for name, value in first.values.items()
        if isinstance(value, str) and not value.startswith("@") and comparable(name)
    }
    found = ctx.records.list(
        ctx.connection, first.entity, filter=plain, first=1, actor=Actor.system()
    )
    return bool(found.records)


def seed(
    ctx: WriteContext, demo: DemoData, owner: str, keys: MutableMapping[str, str] | None = None
) -> int:
    """Write ``demo``'s records in ``ctx``'s transaction; returns how many were written.

    ``keys`` maps the keys of records seeded so far to their ids and gains
    this file's; pass the same mapping to seed several plugins' demo data that
    refer to each other. A second run is refused with CONFLICT.
    """
    if is_seeded(ctx, demo):
        raise Conflict(f"the {owner} demo data is there already (it can be seeded once)")
    ids = keys if keys is not None else {}
    for number, record in enumerate(demo.records, start=1):
        try:
            values = {name: _resolve(ctx, value, ids) for name, value in record.values.items()}
            created = ctx.records.create(ctx, record.entity, values)
        except QiaoError as exc:
            raise type(exc)(
                f"{owner} demo data, record {number} ({record.entity}): {exc.message}",
                field=exc.field,
            ) from None
        if record.key is not None:
            ids[record.key] = created["id"]
    return len(demo.records)


def _resolve(ctx: WriteContext, value: Any, ids: Mapping[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("@"):
        try:
            return ids[value[1:]]
        except KeyError:
            raise MetadataError(f"{value!r} names no record seeded before it") from None
    if isinstance(value, dict) and set(value) == {"lookup", "where"}:
        return _lookup(ctx, value["lookup"], value["where"])
    return value


def _lookup(ctx: WriteContext, entity: str, where: Mapping[str, Any]) -> str:
    condition = {name: {"eq": v} for name, v in where.items()}
    page = ctx.records.list(ctx.connection, entity, filter=condition, first=2, actor=Actor.system())
    if len(page.records) != 1:
        found = "no" if not page.records else "more than one"
        raise BadUserInput(f"{found} {entity} matches {dict(where)}")
    record_id: str = page.records[0]["id"]
    return record_id
