"""Sync jobs run by the worker: what each vendor brings into Qiao.

A sync is a timer named ``sync`` on the connector record (:func:`request`), so it runs
in a worker with the outbox's retries and dead letters (handler ``connectors.sync``),
survives restarts and runs once however many workers there are. A connector with
``sync_minutes`` is synced again that long after each successful run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from qiao.api import (
    Actor,
    Delivery,
    Event,
    EventHandler,
    Runtime,
    Source,
    WriteContext,
    schedule_timer,
)
from qiao.plugins.connectors import host, settings
from qiao.plugins.connectors.common.errors import ConnectorError
from qiao.plugins.connectors.settings import Connector
from qiao.plugins.connectors.sync import directory, erp, inbox, wecom

SYSTEM = Actor.system()
TIMER = "sync"
HANDLER = "connectors.sync"

#: What a sync of each vendor does; it returns how many records it wrote, by stream.
Sync = Callable[[Runtime, Connector], Mapping[str, int]]
SYNCS: Mapping[str, Sync] = {
    "wecom": wecom.members_and_customers,
    "dingtalk": directory.dingtalk_users,
    "kingdee": erp.kingdee_customers,
    "yonyou": erp.yonyou_customers,
    "sap": erp.sap_customers,
    "imap": inbox.imap_inbox,
}


def request(ctx: WriteContext, connector_id: str, due: dt.datetime | None = None) -> None:
    """Sync the connector at ``due`` (now by default), in the caller's transaction."""
    schedule_timer(ctx.connection, "connector", connector_id, TIMER, due or ctx.now())


def run(delivery: Delivery) -> None:
    runtime = delivery.runtime
    connector = settings.by_id(runtime, delivery.event.record_id)
    sync = SYNCS.get(connector.vendor)
    if not connector.active or sync is None:
        return
    try:
        sync(runtime, connector)
    except ConnectorError as error:
        raise host.outbox_error(error) from error
    records = runtime.records
    with records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
        records.update(ctx, "connector", connector.id, {"last_sync_at": ctx.now()})
        if connector.sync_minutes:
            request(ctx, connector.id, ctx.now() + dt.timedelta(minutes=connector.sync_minutes))


def is_sync(event: Event) -> bool:
    return event.timer == TIMER


def handlers() -> list[EventHandler]:
    return [
        EventHandler(HANDLER, run, entities=("connector",), operations=("timer",), when=is_sync)
    ]
