"""Upserting pulled rows into Qiao's records, one savepoint per row.

A row Qiao refuses (a required field empty, a value too long, a relation naming no
record) is skipped and listed in the sync log with the reason, rather than failing the
pull, so one bad record in the ERP does not stop every other from arriving.

A value mapped to ``relation.field`` (``dealer.dealer_code``) names the record the
relation points at by a unique field of it, as an ERP names a dealer by its code: it is
stored as that record's id, and a row whose value names no record is refused. ERPs write
dates as timestamps (Yonyou's ``vouchdate`` is ``yyyy-MM-dd HH:mm:ss``): a date field
keeps the date part.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from qiao.api import (
    Actor,
    BadUserInput,
    FieldDef,
    FieldType,
    QiaoError,
    Runtime,
    Source,
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
    """Upsert each row by its external id ``key``; returns how many were written."""
    written = 0
    refused: list[CallRecord] = []
    records = runtime.records
    with records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
        for values in rows:
            try:
                with ctx.connection.begin_nested():
                    records.upsert(ctx, entity, key, resolved(runtime, ctx, entity, values))
            except QiaoError as error:
                refused.append(refusal(vendor, entity, values, key, str(error), ctx.now()))
                continue
            written += 1
    write_calls(runtime, connector_id, refused)
    return written


def resolved(
    runtime: Runtime, ctx: WriteContext, entity: str, values: Mapping[str, Any]
) -> dict[str, Any]:
    """``values`` with each ``relation.field`` value turned into the id of the one record
    whose unique ``field`` has it; BadUserInput when no record or no unique field does."""
    catalog = runtime.records.catalog
    out = {k: dated(catalog.entity(entity).field(k), v) for k, v in values.items() if "." not in k}
    for target, value in values.items():
        if "." not in target:
            continue
        name, _, key = target.partition(".")
        relation = catalog.entity(entity).field(name)
        pointed = catalog.entity(relation.target) if relation and relation.target else None
        field = pointed.field(key) if pointed else None
        if pointed is None or field is None or not (field.unique or field.external_id):
            raise BadUserInput(f"{target!r} names no unique field of a relation of {entity}")
        page = runtime.records.list(
            ctx.connection, pointed.name, filter={key: {"eq": value}}, first=2, actor=ctx.actor
        )
        if len(page.records) != 1:
            raise BadUserInput(f"no {pointed.name} whose {key} is {value!r}", field=name)
        out[name] = page.records[0]["id"]
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
