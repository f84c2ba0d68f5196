"""Upserting pulled rows into Qiao's records, a page at a time.

A row Qiao refuses (a required field empty, a value too long, a relation naming no
record) is skipped and listed in the sync log with the reason, rather than failing the
pull, so one bad record in the ERP does not stop every other from arriving.

A value mapped to ``relation.field`` (``dealer.dealer_code``) names the record the
relation points at by a unique field of it, as an ERP names a dealer by its code: it is
stored as that record's id, and a row whose value names no record is refused. The values
of all the rows of a pull are looked up together, in one query. ERPs write
dates as timestamps (Yonyou's ``vouchdate`` is ``yyyy-MM-dd HH:mm:ss``): a date field
keeps the date part.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from qiao.api import (
    Actor,
    BadUserInput,
    FieldDef,
    FieldType,
    QiaoError,
    Runtime,
    Source,
    UniqueIds,
    WriteContext,
)
from qiao.plugins.connectors.common.calls import CallRecord, payload_hash
from qiao.plugins.connectors.host import write_calls

SYSTEM = Actor.system()


def upsert_all(
    runtime: Runtime,
    connector_id: str,
    vendor: str,
    entity: str,
    key: str,
    rows: Iterable[Mapping[str, Any]],
) -> int:
    """Upsert each row by its external id ``key``; returns how many were written.

    The records the rows' ``relation.field`` values name are looked up before the rows
    are written, one query for all of them, so a row cannot name a record another row
    of the same pull creates. The rows are then written as one batch
    (``Records.upsert_many``): their keys looked up together, the new records created
    together."""
    refused: list[CallRecord] = []
    page = list(rows)
    with runtime.records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
        found = named(runtime, ctx, entity, page)
        ready: list[tuple[Mapping[str, Any], dict[str, Any]]] = []
        for values in page:
            try:
                ready.append((values, resolved(runtime, entity, values, found)))
            except QiaoError as error:
                refused.append(refusal(vendor, entity, values, key, str(error), ctx.now()))
        written = runtime.records.upsert_many(
            ctx, entity, key, [row for _, row in ready], skip_invalid=True
        )
        for row in written.refused:
            values = ready[row.index][0]
            refused.append(refusal(vendor, entity, values, key, str(row.error), ctx.now()))
    write_calls(runtime, connector_id, refused)
    return len(written.records)


def named(
    runtime: Runtime, ctx: WriteContext, entity: str, rows: Sequence[Mapping[str, Any]]
) -> dict[str, UniqueIds | str]:
    """For each ``relation.field`` the rows carry, the ids of the records their values
    name (one lookup of the distinct values, as ``ctx.actor``), or why every row that
    carries it is refused: it names no unique field of a relation."""
    catalog = runtime.records.catalog
    out: dict[str, UniqueIds | str] = {}
    for target in dict.fromkeys(k for row in rows for k in row if "." in k):
        name, _, key = target.partition(".")
        relation = catalog.entity(entity).field(name)
        pointed = catalog.entity(relation.target) if relation and relation.target else None
        field = pointed.field(key) if pointed else None
        if pointed is None or field is None or not (field.unique or field.external_id):
            out[target] = f"{target!r} names no unique field of a relation of {entity}"
            continue
        values = {row[target] for row in rows if row.get(target) is not None}
        out[target] = runtime.records.ids_by_unique(
            ctx.connection, pointed.name, key, values, actor=ctx.actor
        )
    return out


def resolved(
    runtime: Runtime,
    entity: str,
    values: Mapping[str, Any],
    found: Mapping[str, UniqueIds | str],
) -> dict[str, Any]:
    """``values`` with each ``relation.field`` value turned into the id :func:`named` found
    for it; BadUserInput when no record or no unique field does."""
    catalog = runtime.records.catalog
    out = {k: dated(catalog.entity(entity).field(k), v) for k, v in values.items() if "." not in k}
    for target, value in values.items():
        if "." not in target:
            continue
        ids = found[target]
        if isinstance(ids, str):
            raise BadUserInput(ids)
        name = target.partition(".")[0]
        out[name] = ids.id(value, field=name)
    return out


def dated(field: FieldDef | None, value: Any) -> Any:
    """A timestamp's date part for a date field; any other value as it is."""
    if field is not None and field.type is FieldType.DATE and isinstance(value, str):
        return value[:10]
    return value


def refusal(
    vendor: str, entity: str, values: Mapping[str, Any], key: str, reason: str, now: dt.datetime
) -> CallRecord:
    """A sync-log entry for a row Qiao refused: its key and the reason, not its values."""
    return CallRecord(
        vendor=vendor,
        operation=f"upsert {entity}",
        status="error",
        latency_ms=0.0,
        payload_sha256=payload_hash(dict(values)),
        attempt=1,
        at=now.timestamp(),
        error_type="Refused",
        detail=f"{key}={values.get(key)}: {reason}"[:300],
    )
