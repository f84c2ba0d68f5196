"""Upserting pulled rows into Qiao's records, one savepoint per row.

A row Qiao refuses (a required field empty, a value too long) is skipped and listed in
the sync log with the reason, rather than failing the pull, so one bad master record in
the ERP does not stop every other from arriving.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from qiao.api import Actor, QiaoError, Runtime, Source
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
                    records.upsert(ctx, entity, key, values)
            except QiaoError as error:
                refused.append(refusal(vendor, entity, values, key, str(error), ctx.now()))
                continue
            written += 1
    write_calls(runtime, connector_id, refused)
    return written


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
