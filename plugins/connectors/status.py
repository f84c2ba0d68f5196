"""A connector's health, read from its record and the sync log.

Last success (the last call that went through), lag (since the last successful sync),
calls and errors in the last hour and the last error: what an operator checks first when
messages stop arriving or ERP data looks stale. Failed jobs themselves, with every
attempt, are in ``qiao jobs`` (handlers ``notify.wecom``, ``notify.dingtalk``,
``connectors.sync``, ``connectors.callback``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from qiao.api import Actor, Runtime
from qiao.plugins.connectors.settings import SECRETS, Connector

SYSTEM = Actor.system()
HOUR = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Status:
    name: str
    vendor: str
    active: bool
    secrets_set: list[str]
    last_success_at: dt.datetime | None
    last_sync_at: dt.datetime | None
    lag_seconds: int | None
    calls_last_hour: int
    errors_last_hour: int
    last_error: str | None


def _calls(runtime: Runtime, conn: Any, connector_id: str, **filters: Any) -> Any:
    return runtime.records.list(
        conn,
        "connector_call",
        filter={"connector_id": {"eq": connector_id}, **filters},
        order_by=[{"field": "at", "direction": "DESC"}],
        first=1,
        with_total=True,
        actor=SYSTEM,
    )


def of(runtime: Runtime, record: dict[str, Any]) -> Status:
    connector = Connector.of(record)
    now = runtime.records.clock()
    since = {"at": {"gte": now - HOUR}}
    with runtime.db.read() as conn:
        ok = _calls(runtime, conn, connector.id, status={"in": ["OK", "PARTIAL"]})
        recent = _calls(runtime, conn, connector.id, **since)
        errors = _calls(runtime, conn, connector.id, status={"eq": "ERROR"}, **since)
        last_error = _calls(runtime, conn, connector.id, status={"eq": "ERROR"})
    synced = record.get("last_sync_at")
    error = last_error.records[0] if last_error.records else None
    return Status(
        name=connector.name,
        vendor=connector.vendor,
        active=connector.active,
        secrets_set=[s for s in SECRETS if s in connector.secrets],
        last_success_at=ok.records[0]["at"] if ok.records else None,
        last_sync_at=synced,
        lag_seconds=int((now - synced).total_seconds()) if synced else None,
        calls_last_hour=recent.total_count or 0,
        errors_last_hour=errors.total_count or 0,
        last_error=(
            f"{error['operation']}: {error['error_code'] or error['error_type']} {error['detail']}"
            if error
            else None
        ),
    )


def all_of(runtime: Runtime, name: str | None = None) -> list[Status]:
    filters = {"name": {"eq": name}} if name else None
    with runtime.db.read() as conn:
        page = runtime.records.list(
            conn,
            "connector",
            filter=filters,
            order_by=[{"field": "name", "direction": "ASC"}],
            first=500,
            actor=SYSTEM,
        )
    return [of(runtime, dict(r)) for r in page.records]
